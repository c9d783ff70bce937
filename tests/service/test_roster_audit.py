"""The roster's audit trail: unarchives, archives and change-set commits people ask for, refused ones too."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import grpc
import pytest
from ew.client.errors import RosterError
from ew.client.roster import RosterClient
from ew.roster.v1 import roster_pb2 as pb

from services.common.auth import Role
from services.common.devtoken import mint_dev_token
from tests.support.roster import Roster, roster_with_districts


@pytest.fixture
def roster(database_url: Callable[[str], str]) -> Iterator[Roster]:
    with roster_with_districts(database_url("roster")) as running:
        yield running


def person(roster: Roster, subject: str, role: Role = Role.DISTRICT_ADMIN) -> RosterClient:
    token = mint_dev_token(roster.auth, district_id="d1", role=role, plan="district_premium", subject=subject)
    return RosterClient(roster.address, metadata=lambda: [("authorization", f"Bearer {token}")])


def test_people_s_unarchives_archives_and_school_fixes_are_audited_the_sync_service_s_writes_are_not(
    roster: Roster,
) -> None:
    service = roster.client
    oak, copy = service.batch_create_schools("d1", ["Oak", "Oak copy"])
    ada = service.batch_upsert_teachers(
        "d1", [pb.TeacherInput(given_name="Ada", family_name="Byron", email="ada@example.org")]
    )[0]
    service.batch_archive_teachers("d1", [ada.teacher_id], "No longer in ClassLink")
    assert list(service.list_audit_events("d1")) == []

    second = dt.timedelta(seconds=1)
    with person(roster, "teacher@example.org", Role.TEACHER) as teacher:
        with pytest.raises(RosterError) as refused:
            teacher.unarchive_teacher(ada.name)
        assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
    with person(roster, "rivera@example.org") as admin:
        roster.clock.advance(second)
        admin.unarchive_teacher(ada.name)
        roster.clock.advance(second)
        admin.batch_archive_teachers("d1", [ada.teacher_id], "Left in March")
        change_set = admin.create_change_set("d1")
        merge = pb.MergeSchoolChange(school_id=copy.school_id, into_school_id=oak.school_id)
        admin.stage_changes(change_set.name, 1, [pb.Change(merge_school=merge)])
        roster.clock.advance(second)
        admin.commit_change_set(change_set.name)
        events = list(admin.list_audit_events("d1"))

    assert [(e.actor, e.action, e.outcome) for e in events] == [
        ("rivera@example.org", pb.AUDIT_ACTION_COMMIT_CHANGE_SET, "OK"),
        ("rivera@example.org", pb.AUDIT_ACTION_ARCHIVE_TEACHERS, "OK"),
        ("rivera@example.org", pb.AUDIT_ACTION_UNARCHIVE_TEACHER, "OK"),
        ("teacher@example.org", pb.AUDIT_ACTION_UNARCHIVE_TEACHER, "PERMISSION_DENIED"),
    ]
    assert events[0].target == f"{change_set.name}: 1 schools merged"
    assert "Left in March" in events[1].target and events[2].target == ada.name
    assert events[3].message
