"""The running stack every bad-input table shares, and the names their rows point at.

It holds one synced district, a foreign district with its own school and teacher, and change sets
in each state, so the state rows have something to be wrong about. (The OneRoster table adds a
district of its own, connected to its scripted server.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
from ew.roster.v1 import roster_pb2, roster_service_pb2, roster_service_pb2_grpc

from services.common.auth import Role
from tests.support.db_dump import Dump, TableDump
from tests.support.sync_stack import PREMIUM, SyncStack, sync_stack

FOREIGN = "d-foreign"
# The roster's rows, then the sync store's.
Snapshot = tuple[Dump, Dump]
# Refusals are audited by design (sync: "every administrative action, allowed or refused"; roster:
# every unarchive asked for): the audit trails are the one table a refused call may add to.
AUDIT_TABLES = frozenset({"audit_events"})


@dataclass
class World:
    """The stack and the names the rows point at."""

    stack: SyncStack
    roster_channel: grpc.Channel
    sync_channel: grpc.Channel
    teachers_token: str
    school: str
    other_school: str
    teacher: str
    archived_teacher: str
    foreign_school: str
    foreign_teacher: str
    open_change_set: str
    committed_change_set: str
    abandoned_change_set: str
    run: str
    _roster_dump: TableDump
    _sync_dump: TableDump

    @property
    def district(self) -> str:
        return self.stack.district_id

    @property
    def parent(self) -> str:
        return f"districts/{self.stack.district_id}"

    def snapshot(self) -> Snapshot:
        """Every row of both stores but their audit trails."""
        return _without_audit(self._roster_dump.rows()), _without_audit(self._sync_dump.rows())

    def admin(self) -> tuple[tuple[str, str], ...]:
        """The ``authorization`` metadata of the district's administrator."""
        return (("authorization", f"Bearer {self.stack.token()}"),)

    def service(self) -> tuple[tuple[str, str], ...]:
        """The ``authorization`` metadata of the sync service's identity (the roster's usual caller)."""
        return tuple(self.stack.roster.service_tokens.metadata())

    def caller(self, role: Role, *, plan: str = PREMIUM) -> tuple[tuple[str, str], ...]:
        """The ``authorization`` metadata of another caller of the district."""
        return (("authorization", f"Bearer {self.stack.token(role=role, plan=plan)}"),)


def _without_audit(dump: Dump) -> Dump:
    return {name: rows for name, rows in dump.items() if name not in AUDIT_TABLES}


def _change_sets(stack: SyncStack) -> tuple[str, str, str]:
    client = stack.roster.client
    committed = client.create_change_set(stack.district_id, str(uuid.uuid4()))
    client.stage_changes(
        committed.name,
        1,
        [roster_pb2.Change(create_school=roster_pb2.CreateSchoolChange(ref="s1", display_name="Annex"))],
    )
    client.commit_change_set(committed.name)
    abandoned = client.create_change_set(stack.district_id, str(uuid.uuid4()))
    client.abandon_change_set(abandoned.name, "bad-input suite")
    opened = client.create_change_set(stack.district_id, str(uuid.uuid4()))
    return opened.name, committed.name, abandoned.name


@contextmanager
def running_world(roster_url: str, sync_url: str) -> Iterator[World]:
    """Start the stack on these two empty databases, sync its district once and set the scene."""
    with sync_stack(
        roster_url,
        sync_url,
        settings={"oneroster_retry_delay": 0.01},
        schools=3,
        teachers=8,
    ) as stack:
        list(stack.client.sync_rosters(stack.district_id))
        client = stack.roster.client
        client.create_district(FOREIGN, "Foreign District")
        foreign_school = client.batch_create_schools(FOREIGN, ["Foreign High"])[0]
        foreign_teacher = client.batch_upsert_teachers(
            FOREIGN, [roster_pb2.TeacherInput(given_name="Fay", family_name="Far", email="fay@foreign.test")]
        )[0]
        schools = sorted(client.list_schools(stack.district_id), key=lambda s: s.name)
        teachers = sorted(client.list_teachers(stack.district_id), key=lambda t: t.name)
        archived = client.batch_archive_teachers(stack.district_id, [teachers[-1].teacher_id], "left")[0]
        opened, committed, abandoned = _change_sets(stack)
        roster_channel = grpc.insecure_channel(stack.roster.address)
        sync_channel = grpc.insecure_channel(stack.server.target)
        try:
            yield World(
                stack=stack,
                roster_channel=roster_channel,
                sync_channel=sync_channel,
                teachers_token=_teachers_token(stack),
                school=schools[0].name,
                other_school=schools[1].name,
                teacher=teachers[0].name,
                archived_teacher=archived.name,
                foreign_school=foreign_school.name,
                foreign_teacher=foreign_teacher.name,
                open_change_set=opened,
                committed_change_set=committed,
                abandoned_change_set=abandoned,
                run=stack.client.list_runs(stack.district_id).runs[0].name,
                _roster_dump=TableDump(stack.roster.engine),
                _sync_dump=TableDump(stack.app.engine),
            )
        finally:
            roster_channel.close()
            sync_channel.close()


def _teachers_token(stack: SyncStack) -> str:
    """A real ListTeachers page token of the district: foreign to every other list and filter."""
    with stack.roster.channel() as channel:
        stub = roster_service_pb2_grpc.RosterServiceStub(channel)
        page = stub.ListTeachers(
            roster_service_pb2.ListTeachersRequest(parent=f"districts/{stack.district_id}", page_size=1)
        )
    return page.next_page_token
