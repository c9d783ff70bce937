"""EW changing under a running sync: the change set is refused, the run plans again once and lands."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2

from services.sync.planning.emails import email_key
from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with sync_stack(database_url("roster"), database_url("sync"), schools=4, teachers=40) as running:
        yield running


def test_a_teacher_archived_by_hand_during_the_sync_makes_it_plan_again(stack: SyncStack) -> None:
    first = list(stack.client.sync_rosters(stack.district_id))[-1]
    assert first.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    teacher = next(u for u in stack.sandbox.roster()["users"] if u["role"] == "teacher" and u["email"])
    ew_teacher = next(
        t
        for t in stack.roster.client.list_teachers(stack.district_id)
        if email_key(t.email) == email_key(teacher["email"])
    )
    stack.sandbox.mutate([{"op": "remove_user", "sourcedId": teacher["sourcedId"]}])
    # Slow pages: EW is read at the start, ClassLink takes a while, and an admin acts meanwhile.
    stack.sandbox.set_faults(
        [
            {"kind": "slow", "delay": 0.5, "times": 1, "path": "schools"},
            {"kind": "slow", "delay": 1.5, "times": 1, "path": "teachers"},
        ]
    )
    events = stack.client.sync_rosters(stack.district_id)
    seen = []
    for event in events:
        seen.append(event)
        if event.phase == sync_pb2.SYNC_PHASE_READING_TEACHERS:
            break
    # The run planned from an EW where this teacher was active; an admin archives them first.
    stack.roster.client.batch_archive_teachers(stack.district_id, [ew_teacher.teacher_id], "left in June")
    seen += list(events)

    last = seen[-1]
    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
    staged = min(e.sequence for e in seen if e.phase == sync_pb2.SYNC_PHASE_ARCHIVING)
    assert any(e.phase == sync_pb2.SYNC_PHASE_PLANNING and e.sequence > staged for e in seen), (
        "the run did not plan again after the change set was refused"
    )
    assert [e.percent for e in seen] == sorted(e.percent for e in seen)
    assert last.summary.teachers_archived == 0
    archived = stack.roster.client.get_teacher(ew_teacher.name)
    assert archived.state == roster_pb2.TEACHER_STATE_ARCHIVED
    assert archived.archive_reason == "left in June"
