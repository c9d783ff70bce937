"""School mapping through real gRPC calls: ClassLink schools from the sandbox, EW ones from RosterService."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from ew.sync.v1 import sync_pb2, sync_service_pb2, sync_service_pb2_grpc

from services.common.auth import Role
from services.sync.store.models import SchoolMapping
from services.sync.vocabulary import MappingOrigin
from tests.conftest import DatabaseFactory
from tests.support.sandbox import SandboxHandle, start_sandbox
from tests.support.sync_stack import DISTRICT, SyncStack, sync_stack

PARENT = f"districts/{DISTRICT}"
OTHER_DISTRICT = "d-neighbour"
# ClassLink side: the generated schools are renamed, two are added and one is closed.
CLASSLINK = {
    "cl-lincoln": "Lincoln Elementary School",
    "cl-washington": "Washington Middle",
    "cl-roosevelt": "Roosevelt High School",
    "cl-jefferson": "Jefferson Academy",
}
CLOSED = ("cl-closed", "Lincoln Elementary School Annex")
EW = [
    "LINCOLN elementary school",
    "Washington Middle School",
    "Roosevelt Elementary",
    "Roosevelt High",
    "Adams Academy",
]


def details(error: grpc.RpcError) -> str:
    """The status message of a failed call."""
    return error.details() or ""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with start_sandbox(tenants=1, schools=3, teachers=4) as handle:
        generated = [org["sourcedId"] for org in handle.roster()["orgs"] if org["type"] == "school"]
        handle.mutate(
            [{"op": "remove_school", "sourcedId": school_id} for school_id in generated]
            + [
                {"op": "add_school", "sourcedId": cl, "name": name}
                for cl, name in [*CLASSLINK.items(), CLOSED]
            ]
            + [{"op": "update_school", "sourcedId": CLOSED[0], "set": {"status": "tobedeleted"}}]
        )
        yield handle


class Screen:
    """The mapping RPCs as the district's administrator, with the EW school ids by name."""

    def __init__(self, stack: SyncStack, channel: grpc.Channel) -> None:
        self.stack = stack
        self.stub = sync_service_pb2_grpc.SyncServiceStub(channel)
        created = stack.roster.client.batch_create_schools(DISTRICT, EW)
        self.ew = {school.display_name: school.school_id for school in created}
        stack.roster.client.create_district(OTHER_DISTRICT, "Neighbour District")
        self.foreign_school = stack.roster.client.batch_create_schools(OTHER_DISTRICT, ["Jefferson Academy"])[
            0
        ]

    def call(self, method: str, request: Any) -> Any:
        token = self.stack.token(role=Role.DISTRICT_ADMIN)
        return getattr(self.stub, method)(
            request, metadata=(("authorization", f"Bearer {token}"),), timeout=60
        )

    def fails(self, method: str, request: Any) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as raised:
            self.call(method, request)
        return raised.value

    def get(self, page_size: int = 0, page_token: str = "") -> sync_service_pb2.ListSchoolMappingsResponse:
        response: sync_service_pb2.ListSchoolMappingsResponse = self.call(
            "ListSchoolMappings",
            sync_service_pb2.ListSchoolMappingsRequest(
                parent=PARENT, page_size=page_size, page_token=page_token
            ),
        )
        return response

    def entries(self) -> dict[str, sync_pb2.SchoolMapping]:
        return {entry.classlink_school_id: entry for entry in self.get().school_mappings}

    def map(self, *pairs: tuple[str, str]) -> sync_service_pb2.MapSchoolsResponse:
        response: sync_service_pb2.MapSchoolsResponse = self.call("MapSchools", self.map_request(*pairs))
        return response

    def map_request(self, *pairs: tuple[str, str]) -> sync_service_pb2.MapSchoolsRequest:
        return sync_service_pb2.MapSchoolsRequest(
            parent=PARENT,
            pairs=[sync_pb2.SchoolPair(classlink_school_id=cl, ew_school_id=ew) for cl, ew in pairs],
        )

    def stored(self) -> dict[str, tuple[str | None, MappingOrigin]]:
        with self.stack.app.sessions() as session:
            return {m.classlink_school_id: (m.ew_school_id, m.origin) for m in session.query(SchoolMapping)}


def valid(screen: Screen) -> tuple[str, str]:
    """A pair that is fine on its own: a bad pair next to it must keep it from being stored."""
    return ("cl-roosevelt", screen.ew["Roosevelt High"])


@pytest.fixture
def screen(sandbox: SandboxHandle, database_url: DatabaseFactory) -> Iterator[Screen]:
    with sync_stack(database_url("roster"), database_url("sync"), sandbox=sandbox) as stack:
        channel = grpc.insecure_channel(stack.server.target)
        try:
            yield Screen(stack, channel)
        finally:
            channel.close()


def test_the_screen_auto_maps_identical_names_suggests_the_rest_and_writes_nothing(screen: Screen) -> None:
    response = screen.get()

    assert [entry.classlink_school_name for entry in response.school_mappings] == sorted(CLASSLINK.values())
    assert (response.total_size, response.mapped_count) == (4, 1)
    entries = {entry.classlink_school_id: entry for entry in response.school_mappings}
    lincoln = entries["cl-lincoln"]
    assert (lincoln.origin, lincoln.ew_school_id) == (
        sync_pb2.MAPPING_ORIGIN_AUTO,
        screen.ew["LINCOLN elementary school"],
    )
    assert not lincoln.suggestions
    washington = entries["cl-washington"]
    assert washington.origin == sync_pb2.MAPPING_ORIGIN_NONE and not washington.ew_school_id
    assert washington.suggestions[0].ew_school_name == "Washington Middle School"
    roosevelt = [s.ew_school_name for s in entries["cl-roosevelt"].suggestions]
    assert roosevelt[:2] == ["Roosevelt High", "Roosevelt Elementary"]
    scores = [s.score for s in entries["cl-roosevelt"].suggestions]
    assert scores == sorted(scores, reverse=True) and all(0 < score <= 100 for score in scores)
    assert all(
        s.ew_school_id != screen.ew["LINCOLN elementary school"]
        for e in entries.values()
        for s in e.suggestions
    )
    assert [school.ew_school_name for school in response.ew_only_schools] == sorted(
        set(EW) - {"LINCOLN elementary school"}, key=str.casefold
    )
    assert screen.stored() == {}


def test_pages_follow_name_order_and_tokens_are_checked(screen: Screen) -> None:
    first = screen.get(page_size=3)
    second = screen.get(page_size=3, page_token=first.next_page_token)

    assert len(first.school_mappings) == 3 and first.next_page_token
    assert [e.classlink_school_name for e in [*first.school_mappings, *second.school_mappings]] == sorted(
        CLASSLINK.values()
    )
    assert second.next_page_token == "" and not second.ew_only_schools and second.total_size == 4
    for token in (first.next_page_token[:-2] + "xx", "bm90LWEtdG9rZW4"):
        error = screen.fails(
            "ListSchoolMappings", sync_service_pb2.ListSchoolMappingsRequest(parent=PARENT, page_token=token)
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "first page" in details(error)


def test_manual_mapping_and_unmapping_an_automatic_one_which_then_stays_unmapped(screen: Screen) -> None:
    mapped = screen.map(("cl-washington", screen.ew["Washington Middle School"])).school_mappings

    assert [(e.classlink_school_id, e.origin, e.ew_school_name) for e in mapped] == [
        ("cl-washington", sync_pb2.MAPPING_ORIGIN_MANUAL, "Washington Middle School")
    ]
    unmapped = screen.call(
        "UnmapSchool", sync_service_pb2.UnmapSchoolRequest(name=f"{PARENT}/schoolMappings/cl-lincoln")
    ).school_mapping
    assert unmapped.origin == sync_pb2.MAPPING_ORIGIN_NONE and not unmapped.ew_school_id
    assert unmapped.suggestions[0].ew_school_name == "LINCOLN elementary school"

    entries = screen.entries()
    assert entries["cl-washington"].origin == sync_pb2.MAPPING_ORIGIN_MANUAL
    assert entries["cl-lincoln"].origin == sync_pb2.MAPPING_ORIGIN_NONE
    assert entries["cl-lincoln"].suggestions[0].ew_school_name == "LINCOLN elementary school"
    assert screen.stored() == {
        "cl-washington": (screen.ew["Washington Middle School"], MappingOrigin.MANUAL),
        "cl-lincoln": (None, MappingOrigin.UNMAPPED),
    }


@pytest.mark.parametrize(
    ("pairs", "code", "words"),
    [
        (
            lambda s: [valid(s), ("cl-unknown", s.ew["Adams Academy"])],
            grpc.StatusCode.NOT_FOUND,
            "not in the district's ClassLink",
        ),
        (
            lambda s: [valid(s), (CLOSED[0], s.ew["Adams Academy"])],
            grpc.StatusCode.NOT_FOUND,
            "not in the district's ClassLink",
        ),
        (
            lambda s: [valid(s), ("cl-jefferson", str(uuid.uuid4()))],
            grpc.StatusCode.NOT_FOUND,
            "is not a school of district",
        ),
        (
            lambda s: [valid(s), ("cl-jefferson", s.foreign_school.school_id)],
            grpc.StatusCode.NOT_FOUND,
            "is not a school of",
        ),
        (
            lambda s: [valid(s), ("cl-jefferson", s.ew["LINCOLN elementary school"])],
            grpc.StatusCode.FAILED_PRECONDITION,
            "already mapped to ClassLink school Lincoln Elementary School",
        ),
        (
            lambda s: [
                valid(s),
                ("cl-jefferson", s.ew["Adams Academy"]),
                ("cl-jefferson", s.ew["Roosevelt Elementary"]),
            ],
            grpc.StatusCode.INVALID_ARGUMENT,
            "appears twice",
        ),
        (
            lambda s: [
                valid(s),
                ("cl-jefferson", s.ew["Adams Academy"]),
                ("cl-washington", s.ew["Adams Academy"]),
            ],
            grpc.StatusCode.INVALID_ARGUMENT,
            "appears twice",
        ),
        (lambda s: [], grpc.StatusCode.INVALID_ARGUMENT, "at least one"),
    ],
)
def test_bad_pairs_are_refused_and_nothing_is_mapped(
    screen: Screen, pairs: Any, code: grpc.StatusCode, words: str
) -> None:
    error = screen.fails("MapSchools", screen.map_request(*pairs(screen)))

    assert error.code() == code
    assert words in details(error)
    assert screen.stored() == {}


def test_a_request_may_swap_ew_schools_between_its_classlink_schools(screen: Screen) -> None:
    screen.map(
        ("cl-washington", screen.ew["Washington Middle School"]), ("cl-jefferson", screen.ew["Adams Academy"])
    )

    screen.map(
        ("cl-washington", screen.ew["Adams Academy"]), ("cl-jefferson", screen.ew["Washington Middle School"])
    )

    assert screen.stored() == {
        "cl-washington": (screen.ew["Adams Academy"], MappingOrigin.MANUAL),
        "cl-jefferson": (screen.ew["Washington Middle School"], MappingOrigin.MANUAL),
    }


def test_a_school_the_sync_created_is_remapped_not_unmapped(screen: Screen) -> None:
    created = screen.stack.roster.client.batch_create_schools(DISTRICT, ["Jefferson Academy"])[0]
    now = dt.datetime.now(dt.UTC)
    with screen.stack.app.sessions.begin() as session:
        session.add(
            SchoolMapping(
                id=str(uuid.uuid4()),
                district_id=DISTRICT,
                classlink_school_id="cl-jefferson",
                ew_school_id=created.school_id,
                origin=MappingOrigin.CREATED,
                classlink_name="Jefferson Academy",
                create_time=now,
                update_time=now,
            )
        )
    assert screen.entries()["cl-jefferson"].origin == sync_pb2.MAPPING_ORIGIN_CREATED

    error = screen.fails(
        "UnmapSchool", sync_service_pb2.UnmapSchoolRequest(name=f"{PARENT}/schoolMappings/cl-jefferson")
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "Map the ClassLink school to another EW school instead" in details(error)

    screen.map(("cl-jefferson", screen.ew["Adams Academy"]))
    assert screen.stored()["cl-jefferson"] == (screen.ew["Adams Academy"], MappingOrigin.MANUAL)


def test_unmapping_an_unknown_school_is_not_found(screen: Screen) -> None:
    error = screen.fails(
        "UnmapSchool", sync_service_pb2.UnmapSchoolRequest(name=f"{PARENT}/schoolMappings/nope")
    )

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert screen.stored() == {}


def test_mapping_needs_a_connection(sandbox: SandboxHandle, database_url: DatabaseFactory) -> None:
    with sync_stack(database_url("roster"), database_url("sync"), sandbox=sandbox, connect=False) as stack:
        channel = grpc.insecure_channel(stack.server.target)
        try:
            error_screen = Screen(stack, channel)
            error = error_screen.fails(
                "ListSchoolMappings", sync_service_pb2.ListSchoolMappingsRequest(parent=PARENT)
            )
        finally:
            channel.close()
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "Connect ClassLink first" in details(error)


def test_a_school_renamed_in_classlink_keeps_its_mapping(screen: Screen, sandbox: SandboxHandle) -> None:
    screen.map(("cl-washington", screen.ew["Washington Middle School"]))
    sandbox.mutate(
        [{"op": "update_school", "sourcedId": "cl-washington", "set": {"name": "G. Washington MS"}}]
    )
    try:
        entry = screen.entries()["cl-washington"]
    finally:
        sandbox.mutate(
            [
                {
                    "op": "update_school",
                    "sourcedId": "cl-washington",
                    "set": {"name": CLASSLINK["cl-washington"]},
                }
            ]
        )

    assert (entry.classlink_school_name, entry.origin, entry.ew_school_name) == (
        "G. Washington MS",
        sync_pb2.MAPPING_ORIGIN_MANUAL,
        "Washington Middle School",
    )
