"""Every RPC asks ``services.roster.access.authorize`` before touching data; extra interceptors run first."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from ew.client.errors import PermissionDeniedError
from ew.client.roster import RosterClient
from ew.roster.v1 import roster_pb2 as pb
from ew.roster.v1 import roster_service_pb2 as rpc
from ew.roster.v1 import roster_service_pb2_grpc

from services.common.auth import SERVICE_PLAN, Role
from services.common.devtoken import mint_dev_token
from services.common.errors import PermissionDenied
from services.roster import servicer
from services.roster.access import Action
from tests.support.roster import Roster, refused, roster_with_districts


class MetadataRecorder(grpc.ServerInterceptor):
    """Remembers the metadata of every call it sees."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        self.seen.append({k: str(v) for k, v in handler_call_details.invocation_metadata or ()})
        return continuation(handler_call_details)


@pytest.fixture
def recorder() -> MetadataRecorder:
    return MetadataRecorder()


@pytest.fixture
def roster(database_url: Callable[[str], str], recorder: MetadataRecorder) -> Iterator[Roster]:
    with roster_with_districts(database_url("roster"), interceptors=[recorder]) as running:
        yield running


def test_every_rpc_is_authorised_for_its_district_before_touching_data(
    roster: Roster, monkeypatch: pytest.MonkeyPatch
) -> None:
    school = roster.client.batch_create_schools("d2", ["Elm"])[0]
    teacher = roster.client.batch_upsert_teachers(
        "d2", [pb.TeacherInput(given_name="Ada", family_name="Byron", email="ada@example.org")]
    )[0]
    change_set = roster.client.create_change_set("d2")
    asked: list[tuple[str, Action]] = []

    def deny(district_id: str, action: Action) -> None:
        asked.append((district_id, action))
        raise PermissionDenied(f"The caller may not {action.value} in district {district_id!r}.")

    monkeypatch.setattr(servicer, "authorize", deny)
    missing = f"districts/d2/teachers/{uuid.uuid4()}"
    upsert = pb.Change(
        upsert_teacher=pb.UpsertTeacherChange(
            ref="r", given_name="Ny", family_name="Byron", email="new@example.org"
        )
    )
    calls: list[tuple[str, Any, Action]] = [
        (
            "CreateDistrict",
            rpc.CreateDistrictRequest(district_id="d2", display_name="X"),
            Action.CREATE_DISTRICT,
        ),
        ("GetDistrict", rpc.GetDistrictRequest(name="districts/d2"), Action.READ),
        ("GetSchool", rpc.GetSchoolRequest(name=school.name), Action.READ),
        ("ListSchools", rpc.ListSchoolsRequest(parent="districts/d2"), Action.READ),
        (
            "BatchCreateSchools",
            rpc.BatchCreateSchoolsRequest(parent="districts/d2", schools=[pb.School(display_name="Oak")]),
            Action.WRITE,
        ),
        ("GetTeacher", rpc.GetTeacherRequest(name=missing), Action.READ),
        ("ListTeachers", rpc.ListTeachersRequest(parent="districts/d2"), Action.READ),
        ("ExportDistrictRoster", rpc.ExportDistrictRosterRequest(parent="districts/d2"), Action.READ),
        (
            "BatchUpsertTeachers",
            rpc.BatchUpsertTeachersRequest(
                parent="districts/d2",
                teachers=[pb.TeacherInput(given_name="Bo", family_name="Byron", email="b@example.org")],
            ),
            Action.WRITE,
        ),
        (
            "BatchArchiveTeachers",
            rpc.BatchArchiveTeachersRequest(
                parent="districts/d2", teacher_ids=[teacher.teacher_id], reason="x"
            ),
            Action.WRITE,
        ),
        ("UnarchiveTeacher", rpc.UnarchiveTeacherRequest(name=teacher.name), Action.UNARCHIVE),
        ("CreateChangeSet", rpc.CreateChangeSetRequest(parent="districts/d2"), Action.WRITE),
        ("GetChangeSet", rpc.GetChangeSetRequest(name=change_set.name), Action.READ),
        (
            "StageChanges",
            rpc.StageChangesRequest(name=change_set.name, batch_number=1, changes=[upsert]),
            Action.WRITE,
        ),
        ("CommitChangeSet", rpc.CommitChangeSetRequest(name=change_set.name), Action.WRITE),
        ("AbandonChangeSet", rpc.AbandonChangeSetRequest(name=change_set.name), Action.WRITE),
        ("ListChangeSetResults", rpc.ListChangeSetResultsRequest(parent=change_set.name), Action.READ),
        ("ListAuditEvents", rpc.ListAuditEventsRequest(parent="districts/d2"), Action.READ_AUDIT),
        ("RenameSchool", rpc.RenameSchoolRequest(name=school.name, display_name="Oak Hill"), Action.WRITE),
        ("ArchiveSchool", rpc.ArchiveSchoolRequest(name=school.name), Action.WRITE),
        ("MergeSchools", rpc.MergeSchoolsRequest(name=school.name, into_school=school.name), Action.WRITE),
    ]
    assert {name for name, _, _ in calls} == set(
        rpc.DESCRIPTOR.services_by_name["RosterService"].methods_by_name
    )
    before = roster.snapshot()
    with roster.channel() as channel:
        stub = roster_service_pb2_grpc.RosterServiceStub(channel)
        methods = rpc.DESCRIPTOR.services_by_name["RosterService"].methods_by_name
        for name, request, action in calls:
            with pytest.raises(grpc.RpcError) as info:
                answer = getattr(stub, name)(request)
                if methods[name].server_streaming:
                    list(answer)
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED, name
            assert asked[-1] == ("d2", action), name
    assert len(asked) == len(calls)
    assert roster.snapshot() == before
    monkeypatch.undo()
    assert roster.client.get_change_set(change_set.name).staged == pb.ChangeCounts()


def test_the_metadata_hook_reaches_the_server_on_every_call(
    roster: Roster, recorder: MetadataRecorder
) -> None:
    admin = mint_dev_token(roster.auth, district_id="d1", role=Role.DISTRICT_ADMIN, plan="basic")
    sent = [roster.service_tokens.token(), admin]
    tokens = iter(sent)
    with RosterClient(
        roster.address, metadata=lambda: [("authorization", f"Bearer {next(tokens)}")]
    ) as client:
        client.get_district("d1")
        client.batch_create_schools("d1", ["Elm"])
    assert [seen.get("authorization") for seen in recorder.seen[-2:]] == [f"Bearer {t}" for t in sent]


def test_client_errors_carry_the_status_reason_and_message(
    roster: Roster, monkeypatch: pytest.MonkeyPatch
) -> None:
    def deny(district_id: str, action: Action) -> None:
        raise PermissionDenied("Not your district.", reason="DISTRICT_MISMATCH")

    monkeypatch.setattr(servicer, "authorize", deny)
    with pytest.raises(PermissionDeniedError) as info:
        roster.client.get_district("d1")
    assert (info.value.reason, info.value.message) == ("DISTRICT_MISMATCH", "Not your district.")


def test_a_service_token_for_one_district_creates_no_other(roster: Roster) -> None:
    scoped = mint_dev_token(roster.auth, district_id="d3", role=Role.SERVICE, plan=SERVICE_PLAN)
    with RosterClient(roster.address, metadata=lambda: [("authorization", f"Bearer {scoped}")]) as client:
        message = refused(roster, grpc.StatusCode.PERMISSION_DENIED, client.create_district, "d4", "Four")
        assert "d4" not in message
        assert client.create_district("d3", "Three").name == "districts/d3"
    assert roster.client.get_district("d3").display_name == "Three"
    refused(roster, grpc.StatusCode.NOT_FOUND, roster.client.get_district, "d4")
