"""RosterService's district, school and teacher RPCs through real gRPC calls (server on port 0).

Every refused request also proves that nothing changed in the roster.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import grpc
import pytest
from ew.client.errors import FieldViolation, RosterError, from_rpc_error
from ew.roster.v1 import roster_pb2 as pb
from ew.roster.v1 import roster_service_pb2 as rpc
from ew.roster.v1 import roster_service_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support.roster import Roster, refused, roster_with_districts


@pytest.fixture
def roster(database_url: Callable[[str], str]) -> Iterator[Roster]:
    with roster_with_districts(database_url("roster")) as running:
        yield running


@pytest.fixture
def stub(roster: Roster) -> Iterator[roster_service_pb2_grpc.RosterServiceStub]:
    with roster.channel() as channel:
        yield roster_service_pb2_grpc.RosterServiceStub(channel)


def teacher(email: str, *school_ids: str, given: str = "Ada", family: str = "Lovelace") -> pb.TeacherInput:
    return pb.TeacherInput(given_name=given, family_name=family, email=email, school_ids=school_ids)


def test_districts_are_created_once_and_read_back(roster: Roster) -> None:
    district = roster.client.get_district("d1")
    assert (district.name, district.display_name) == ("districts/d1", "District One")
    message = refused(roster, grpc.StatusCode.ALREADY_EXISTS, roster.client.create_district, "d1", "Again")
    assert "'d1' already exists" in message
    refused(roster, grpc.StatusCode.INVALID_ARGUMENT, roster.client.create_district, "bad id!", "X")
    refused(roster, grpc.StatusCode.INVALID_ARGUMENT, roster.client.create_district, "", "X")
    refused(roster, grpc.StatusCode.INVALID_ARGUMENT, roster.client.create_district, "d3", "x" * 10_000)
    refused(roster, grpc.StatusCode.NOT_FOUND, roster.client.get_district, "nope")


def test_malformed_resource_names_name_the_field(roster: Roster, stub: Any) -> None:
    for name in ["", "districts/", "schools/x", "districts/d1/schools/not-a-uuid", "districts/d1/teachers/x"]:
        with pytest.raises(grpc.RpcError) as info:
            stub.GetSchool(rpc.GetSchoolRequest(name=name))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "name" in str(info.value.details())
    with pytest.raises(grpc.RpcError) as info:
        stub.ListTeachers(rpc.ListTeachersRequest(parent="districts/d 1"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "parent" in str(info.value.details())


def test_schools_are_created_atomically_listed_in_pages_and_idempotent(roster: Roster, stub: Any) -> None:
    client = roster.client
    request_id = str(uuid.uuid4())
    created = client.batch_create_schools("d1", ["Elm", "Ash", "Oak", "Birch", "Pine"], request_id)
    assert [s.display_name for s in created] == ["Elm", "Ash", "Oak", "Birch", "Pine"]
    again = client.batch_create_schools("d1", ["Elm", "Ash", "Oak", "Birch", "Pine"], request_id)
    assert [s.school_id for s in again] == [s.school_id for s in created]
    assert client.get_school(created[0].name) == created[0]

    names: list[str] = []
    token = ""
    while True:
        page = stub.ListSchools(rpc.ListSchoolsRequest(parent="districts/d1", page_size=2, page_token=token))
        assert len(page.schools) <= 2 and page.total_size == 5
        names += [s.display_name for s in page.schools]
        token = page.next_page_token
        if not token:
            break
    assert names == ["Ash", "Birch", "Elm", "Oak", "Pine"]
    assert list(client.list_schools("d2")) == []


def test_bad_school_requests_are_refused(roster: Roster, stub: Any) -> None:
    client = roster.client
    school = client.batch_create_schools("d1", ["Elm"])[0]
    refused(roster, grpc.StatusCode.INVALID_ARGUMENT, client.batch_create_schools, "d1", [])
    message = refused(
        roster, grpc.StatusCode.INVALID_ARGUMENT, client.batch_create_schools, "d1", ["S"] * 1001
    )
    assert "at most 1000" in message
    message = refused(
        roster, grpc.StatusCode.INVALID_ARGUMENT, client.batch_create_schools, "d1", ["ok", "x" * 10_000]
    )
    assert "schools[1].display_name" in message
    refused(roster, grpc.StatusCode.INVALID_ARGUMENT, client.batch_create_schools, "d1", ["ok", "  "])
    refused(roster, grpc.StatusCode.INVALID_ARGUMENT, client.batch_create_schools, "d1", ["ok"], "not-a-uuid")
    refused(roster, grpc.StatusCode.NOT_FOUND, client.batch_create_schools, "nope", ["ok"])
    other_district = school.name.replace("districts/d1", "districts/d2")
    message = refused(roster, grpc.StatusCode.NOT_FOUND, client.get_school, other_district)
    assert "not found in district 'd2'" in message
    refused(roster, grpc.StatusCode.NOT_FOUND, client.get_school, f"districts/d1/schools/{uuid.uuid4()}")
    with pytest.raises(grpc.RpcError) as info:
        stub.ListSchools(rpc.ListSchoolsRequest(parent="districts/d1", page_size=-1))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_size" in str(info.value.details())


def test_huge_page_sizes_are_coerced_to_the_maximum(roster: Roster, stub: Any) -> None:
    roster.client.batch_create_schools("d1", [f"S{n:04d}" for n in range(1000)])
    roster.client.batch_create_schools("d1", ["S1000"])
    page = stub.ListSchools(rpc.ListSchoolsRequest(parent="districts/d1", page_size=2**31 - 1))
    assert len(page.schools) == 1000 and page.next_page_token
    rest = stub.ListSchools(rpc.ListSchoolsRequest(parent="districts/d1", page_token=page.next_page_token))
    assert [s.display_name for s in rest.schools] == ["S1000"] and not rest.next_page_token


def test_forged_or_foreign_page_tokens_are_refused(roster: Roster, stub: Any) -> None:
    roster.client.batch_create_schools("d1", ["A", "B", "C"])
    roster.client.batch_create_schools("d2", ["X", "Y"])
    token = stub.ListSchools(rpc.ListSchoolsRequest(parent="districts/d1", page_size=1)).next_page_token
    body, mac = token.split(".")
    forged = [
        "garbage",
        "a.b.c",
        f"{body[:-2]}AA.{mac}",
        f"{body}.{mac[:-2]}AA",
        "eyJxIjpbInNjaG9vbHMiLCJkMSJdLCJjIjpbIkEiLCJ4Il19.AAAA",
    ]
    for bad in forged:
        with pytest.raises(grpc.RpcError) as info:
            stub.ListSchools(rpc.ListSchoolsRequest(parent="districts/d1", page_token=bad))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in str(
            info.value.details()
        )
    with pytest.raises(grpc.RpcError) as info:
        stub.ListSchools(rpc.ListSchoolsRequest(parent="districts/d2", page_token=token))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "different query" in str(
        info.value.details()
    )
    with pytest.raises(grpc.RpcError) as info:
        stub.ListTeachers(rpc.ListTeachersRequest(parent="districts/d1", page_token=token))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_teachers_upsert_by_trimmed_casefolded_email(roster: Roster) -> None:
    client = roster.client
    elm, ash = client.batch_create_schools("d1", ["Elm", "Ash"])
    first = client.batch_upsert_teachers("d1", [teacher(" Ada@Example.org ", elm.school_id)])[0]
    assert (first.email, list(first.school_ids), first.revision) == ("Ada@Example.org", [elm.school_id], 1)
    assert first.state == pb.TEACHER_STATE_ACTIVE

    same = client.batch_upsert_teachers("d1", [teacher("ada@example.org ", elm.school_id)])[0]
    assert same.teacher_id == first.teacher_id
    assert (same.email, same.revision) == ("ada@example.org", 2)
    unchanged = client.batch_upsert_teachers("d1", [teacher("ada@example.org", elm.school_id)])[0]
    assert unchanged.revision == 2 and unchanged.update_time == same.update_time

    moved = client.batch_upsert_teachers("d1", [teacher("ADA@example.org", ash.school_id, elm.school_id)])[0]
    assert sorted(moved.school_ids) == sorted([elm.school_id, ash.school_id]) and moved.revision == 3
    assert client.get_teacher(moved.name) == moved
    assert [t.teacher_id for t in client.list_teachers("d1")] == [first.teacher_id]
    assert list(client.list_teachers("d2")) == []


def test_teacher_listing_filters_and_pages(roster: Roster, stub: Any) -> None:
    client = roster.client
    elm, ash = client.batch_create_schools("d1", ["Elm", "Ash"])
    stored = client.batch_upsert_teachers(
        "d1", [teacher(f"t{n}@example.org", elm.school_id if n % 2 else ash.school_id) for n in range(7)]
    )
    client.batch_archive_teachers("d1", [stored[0].teacher_id], "Left the district")
    assert [t.email for t in client.list_teachers("d1", school_id=elm.school_id)] == [
        "t1@example.org",
        "t3@example.org",
        "t5@example.org",
    ]
    archived = list(client.list_teachers("d1", state=pb.TEACHER_STATE_ARCHIVED))
    assert [t.email for t in archived] == ["t0@example.org"]
    assert archived[0].archive_reason == "Left the district" and archived[0].HasField("archive_time")
    assert len(list(client.list_teachers("d1", state=pb.TEACHER_STATE_ACTIVE))) == 6
    assert [t.email for t in client.list_teachers("d1", email=" T4@EXAMPLE.org")] == ["t4@example.org"]

    seen: list[str] = []
    token = ""
    while True:
        request = rpc.ListTeachersRequest(
            parent="districts/d1", page_size=3, page_token=token, school_id=ash.school_id
        )
        page = stub.ListTeachers(request)
        assert page.total_size == 4
        seen += [t.email for t in page.teachers]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["t0@example.org", "t2@example.org", "t4@example.org", "t6@example.org"]
    first_page = stub.ListTeachers(rpc.ListTeachersRequest(parent="districts/d1", page_size=3))
    with pytest.raises(grpc.RpcError) as info:
        stub.ListTeachers(
            rpc.ListTeachersRequest(
                parent="districts/d1", page_token=first_page.next_page_token, school_id=elm.school_id
            )
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "different query" in str(
        info.value.details()
    )
    refused(
        roster,
        grpc.StatusCode.NOT_FOUND,
        lambda: list(client.list_teachers("d1", school_id=str(uuid.uuid4()))),
    )


def test_bad_teacher_upserts_are_refused(roster: Roster) -> None:
    client = roster.client
    elm = client.batch_create_schools("d1", ["Elm"])[0]
    foreign = client.batch_create_schools("d2", ["Far"])[0]
    client.batch_upsert_teachers("d1", [teacher("kept@example.org", elm.school_id)])

    message = refused(
        roster,
        grpc.StatusCode.INVALID_ARGUMENT,
        client.batch_upsert_teachers,
        "d1",
        [teacher("a@example.org"), teacher("b@example.org"), teacher(" A@EXAMPLE.ORG")],
    )
    assert "teachers[2].email" in message and "teachers[0].email" in message
    message = refused(
        roster,
        grpc.StatusCode.INVALID_ARGUMENT,
        client.batch_upsert_teachers,
        "d1",
        [teacher("not-an-email")],
    )
    assert "teachers[0].email" in message and "not a valid email" in message
    refused(roster, grpc.StatusCode.INVALID_ARGUMENT, client.batch_upsert_teachers, "d1", [teacher("")])
    message = refused(
        roster,
        grpc.StatusCode.INVALID_ARGUMENT,
        client.batch_upsert_teachers,
        "d1",
        [teacher("a@example.org", given="x" * 10_000)],
    )
    assert "teachers[0].given_name" in message and "at most 200" in message
    refused(
        roster,
        grpc.StatusCode.INVALID_ARGUMENT,
        client.batch_upsert_teachers,
        "d1",
        [teacher(f"t{n}@example.org") for n in range(1001)],
    )
    refused(roster, grpc.StatusCode.INVALID_ARGUMENT, client.batch_upsert_teachers, "d1", [])
    message = refused(
        roster,
        grpc.StatusCode.NOT_FOUND,
        client.batch_upsert_teachers,
        "d1",
        [teacher("kept@example.org"), teacher("new@example.org", foreign.school_id)],
    )
    assert foreign.school_id in message and "not found in district 'd1'" in message
    refused(
        roster,
        grpc.StatusCode.INVALID_ARGUMENT,
        client.batch_upsert_teachers,
        "d1",
        [teacher("a@example.org", "elm")],
    )
    refused(
        roster, grpc.StatusCode.NOT_FOUND, client.batch_upsert_teachers, "nope", [teacher("a@example.org")]
    )


def test_upsert_request_id_returns_the_first_result(roster: Roster) -> None:
    request_id = str(uuid.uuid4())
    first = roster.client.batch_upsert_teachers("d1", [teacher("a@example.org")], request_id)
    again = roster.client.batch_upsert_teachers("d1", [teacher("a@example.org", given="Changed")], request_id)
    assert again == first
    assert [t.given_name for t in roster.client.list_teachers("d1")] == ["Ada"]


def test_archive_and_unarchive(roster: Roster) -> None:
    client = roster.client
    ada, bob = client.batch_upsert_teachers("d1", [teacher("ada@example.org"), teacher("bob@example.org")])
    message = refused(roster, grpc.StatusCode.FAILED_PRECONDITION, client.unarchive_teacher, ada.name)
    assert "is active" in message
    archived = client.batch_archive_teachers("d1", [ada.teacher_id, bob.teacher_id], "No longer in ClassLink")
    assert {t.state for t in archived} == {pb.TEACHER_STATE_ARCHIVED}
    assert {t.revision for t in archived} == {2}
    refused(
        roster,
        grpc.StatusCode.FAILED_PRECONDITION,
        client.batch_archive_teachers,
        "d1",
        [ada.teacher_id],
        "again",
    )
    back = client.unarchive_teacher(ada.name)
    assert (
        back.state == pb.TEACHER_STATE_ACTIVE
        and back.archive_reason == ""
        and not back.HasField("archive_time")
    )

    refused(
        roster, grpc.StatusCode.NOT_FOUND, client.batch_archive_teachers, "d1", [str(uuid.uuid4())], "gone"
    )
    refused(roster, grpc.StatusCode.NOT_FOUND, client.batch_archive_teachers, "d2", [ada.teacher_id], "gone")
    refused(roster, grpc.StatusCode.INVALID_ARGUMENT, client.batch_archive_teachers, "d1", ["nope"], "gone")
    refused(
        roster, grpc.StatusCode.INVALID_ARGUMENT, client.batch_archive_teachers, "d1", [ada.teacher_id], ""
    )
    refused(
        roster,
        grpc.StatusCode.INVALID_ARGUMENT,
        client.batch_archive_teachers,
        "d1",
        [ada.teacher_id, ada.teacher_id],
        "twice",
    )
    refused(roster, grpc.StatusCode.NOT_FOUND, client.unarchive_teacher, bob.name.replace("/d1/", "/d2/"))
    refused(roster, grpc.StatusCode.NOT_FOUND, client.get_teacher, ada.name.replace("/d1/", "/d2/"))


# NUL, other C0 controls, DEL and C1 controls (U+0085 NEXT LINE, U+009F).
CONTROLS = ["\x00", "\x07", "\n", "\x1f", "\x7f", "\x85", "\x9f"]


def violated_fields(roster: Roster, call: Callable[..., Any], *args: Any) -> list[str]:
    """The fields an INVALID_ARGUMENT names, after proving that the call changed nothing."""
    before = roster.snapshot()
    with pytest.raises(RosterError) as info:
        call(*args)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT, info.value.message
    assert roster.snapshot() == before
    return [v.field for v in info.value.violations]


def test_names_and_emails_with_control_characters_are_refused_on_every_write(roster: Roster) -> None:
    client = roster.client
    elm = client.batch_create_schools("d1", ["Elm"])[0]
    for char in CONTROLS:
        assert violated_fields(roster, client.create_district, "d3", f"North{char}") == ["display_name"]
        assert violated_fields(roster, client.batch_create_schools, "d1", ["Oak", f"A{char}sh"]) == [
            "schools[1].display_name"
        ]
        bad = [
            teacher("a@example.org", elm.school_id, given=f"A{char}da"),
            teacher("b@example.org", family=f"{char}Byron"),
            teacher(f"c{char}@example.org"),
            teacher(f"d@exa{char}mple.org"),
        ]
        assert violated_fields(roster, client.batch_upsert_teachers, "d1", bad) == [
            "teachers[0].given_name",
            "teachers[1].family_name",
            "teachers[2].email",
            "teachers[3].email",
        ]
    message = refused(
        roster, grpc.StatusCode.INVALID_ARGUMENT, client.batch_create_schools, "d1", ["Elm\x00 Annex"]
    )
    assert "control character U+0000 at position 3" in message
    assert [s.display_name for s in client.list_schools("d1")] == ["Elm"]


def test_blank_names_are_refused_and_never_blank_an_existing_teacher(roster: Roster) -> None:
    client = roster.client
    ada = client.batch_upsert_teachers("d1", [teacher("ada@example.org")])[0]
    for given, family in [("", "Lovelace"), ("Ada", ""), (" \t ", "Lovelace"), ("Ada", "\u3000")]:
        fields = violated_fields(
            roster,
            client.batch_upsert_teachers,
            "d1",
            [teacher("ada@example.org", given=given, family=family), teacher("new@example.org")],
        )
        assert fields == ["teachers[0].given_name" if not given.strip() else "teachers[0].family_name"]
    assert violated_fields(roster, client.create_district, "d3", "   ") == ["display_name"]
    assert client.get_teacher(ada.name) == ada


def test_a_batch_with_many_violations_fits_in_the_clients_metadata_limit(roster: Roster, stub: Any) -> None:
    """1,000 bad names: the status lists 20 and says how many more, well under 8 KB of metadata."""
    teachers = [teacher(f"t{n}@example.org", given="x" * 5000) for n in range(1000)]
    before = roster.snapshot()
    with pytest.raises(grpc.RpcError) as info:
        stub.BatchUpsertTeachers(rpc.BatchUpsertTeachersRequest(parent="districts/d1", teachers=teachers))
    assert roster.snapshot() == before
    error: Any = info.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = dict(error.trailing_metadata())["grpc-status-details-bin"]
    # On the wire: the binary header base64-encoded, plus the message in grpc-message.
    assert len(base64.b64encode(details)) + len(quote(error.details())) < 8 * 1024
    client_error = from_rpc_error(error)
    assert len(client_error.violations) == 21
    assert client_error.violations[0] == FieldViolation(
        "teachers[0].given_name", "is 5000 characters long; at most 200 are allowed"
    )
    assert client_error.violations[19].field == "teachers[19].given_name"
    assert client_error.violations[20] == FieldViolation("", "and 980 more")
    assert "teachers[0].given_name" in client_error.message and "and 997 more" in client_error.message


def test_undecodable_requests_are_invalid_arguments_without_internals(roster: Roster) -> None:
    valid = rpc.CreateDistrictRequest(district_id="d3", display_name="Three").SerializeToString()
    bad_utf8 = rpc.CreateDistrictRequest(district_id="d3").SerializeToString()[:-2] + b"\xff\xfe"
    before = roster.snapshot()
    with roster.channel() as channel:
        create: grpc.UnaryUnaryMultiCallable[bytes, rpc.CreateDistrictResponse] = channel.unary_unary(
            "/ew.roster.v1.RosterService/CreateDistrict",
            request_serializer=None,
            response_deserializer=rpc.CreateDistrictResponse.FromString,
        )
        for raw in [bad_utf8, valid[:-1]]:
            with pytest.raises(grpc.RpcError) as info:
                create(raw, timeout=60)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            message = str(info.value.details())
            assert message.startswith("The request could not be decoded: ")
            assert "DecodeError" not in message and "class" not in message
            assert roster.snapshot() == before
        assert create(valid, timeout=60).district.display_name == "Three"


def test_health_and_reflection(roster: Roster) -> None:
    with roster.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        response = health.Check(health_pb2.HealthCheckRequest(service="ew.roster.v1.RosterService"))
        assert response.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        services = {s.name for reply in replies for s in reply.list_services_response.service}
        assert "ew.roster.v1.RosterService" in services
