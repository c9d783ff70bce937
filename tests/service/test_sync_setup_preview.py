"""PreviewSync through real gRPC calls: the planner's output over the sandbox roster, stored and paged."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2, sync_service_pb2, sync_service_pb2_grpc

from services.sync.store.models import Plan, SchoolMapping, TeacherLink
from tests.conftest import DatabaseFactory
from tests.support.sandbox import SandboxHandle, start_sandbox
from tests.support.sync_stack import DISTRICT, SyncStack, sync_stack

PARENT = f"districts/{DISTRICT}"
KIND_NAMES = {
    sync_pb2.PLAN_ITEM_KIND_CREATE_SCHOOL: "schools_created",
    sync_pb2.PLAN_ITEM_KIND_ADD_TEACHER: "teachers_added",
    sync_pb2.PLAN_ITEM_KIND_UPDATE_TEACHER: "teachers_updated",
    sync_pb2.PLAN_ITEM_KIND_ARCHIVE_TEACHER: "teachers_archived",
    sync_pb2.PLAN_ITEM_KIND_REACTIVATE_TEACHER: "teachers_reactivated",
}


def details(error: grpc.RpcError) -> str:
    """The status message of a failed call."""
    return error.details() or ""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with start_sandbox(tenants=1, schools=3, teachers=14) as handle:
        school = next(org["sourcedId"] for org in handle.roster()["orgs"] if org["type"] == "school")
        handle.mutate(
            [
                {"op": "add_teacher", "givenName": "No", "familyName": "Email", "orgs": [school]},
                {
                    "op": "add_teacher",
                    "givenName": "Twin",
                    "familyName": "One",
                    "email": "twin@x.test",
                    "orgs": [school],
                },
                {
                    "op": "add_teacher",
                    "givenName": "Twin",
                    "familyName": "Two",
                    "email": "TWIN@x.test",
                    "orgs": [school],
                },
            ]
        )
        yield handle


def active_teacher_rows(sandbox: SandboxHandle) -> list[dict[str, Any]]:
    return [
        user
        for user in sandbox.roster()["users"]
        if user["role"] == "teacher" and user["status"] == "active" and user.get("enabledUser", True)
    ]


class Preview:
    """PreviewSync as the district's administrator, with an EW district set up for a known plan."""

    def __init__(self, stack: SyncStack, channel: grpc.Channel) -> None:
        self.stack = stack
        self.stub = sync_service_pb2_grpc.SyncServiceStub(channel)
        first = next(
            u for u in active_teacher_rows(stack.sandbox) if u.get("email") and "twin" not in u["email"]
        )
        self.renamed = first
        stack.roster.client.batch_upsert_teachers(
            DISTRICT,
            [
                roster_pb2.TeacherInput(
                    given_name="Old", family_name=first["familyName"], email=first["email"]
                ),
                roster_pb2.TeacherInput(given_name="Gone", family_name="Teacher", email="gone@x.test"),
            ],
        )

    def call(self, **fields: Any) -> sync_service_pb2.PreviewSyncResponse:
        token = self.stack.token()
        response: sync_service_pb2.PreviewSyncResponse = self.stub.PreviewSync(
            sync_service_pb2.PreviewSyncRequest(parent=PARENT, **fields),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=60,
        )
        return response

    def fails(self, **fields: Any) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as raised:
            self.call(**fields)
        return raised.value

    def all_items(
        self, **fields: Any
    ) -> tuple[list[sync_service_pb2.PreviewSyncResponse], list[sync_pb2.PlanItem]]:
        pages = [self.call(**fields)]
        while pages[-1].next_page_token:
            pages.append(self.call(page_token=pages[-1].next_page_token, **fields))
        return pages, [item for page in pages for item in page.items]


@pytest.fixture
def preview(sandbox: SandboxHandle, database_url: DatabaseFactory) -> Iterator[Preview]:
    with sync_stack(database_url("roster"), database_url("sync"), sandbox=sandbox) as stack:
        channel = grpc.insecure_channel(stack.server.target)
        try:
            yield Preview(stack, channel)
        finally:
            channel.close()


def test_preview_counts_match_its_pages_and_describe_the_changes(
    preview: Preview, sandbox: SandboxHandle
) -> None:
    before = preview.stack.roster.snapshot()

    pages, items = preview.all_items(page_size=4)

    summary = pages[0].summary
    assert all(page.summary == summary and page.guard == pages[0].guard for page in pages)
    assert all(len(page.items) == 4 for page in pages[:-1]) and len(pages) > 2
    kinds = Counter(item.kind for item in items)
    for kind, field in KIND_NAMES.items():
        assert kinds[kind] == getattr(summary, field)
    skipped = {s.reason: s.count for s in summary.skipped}
    assert kinds[sync_pb2.PLAN_ITEM_KIND_SKIP] == sum(skipped.values())
    skips = {
        (item.display_name, item.skip_reason) for item in items if item.kind == sync_pb2.PLAN_ITEM_KIND_SKIP
    }
    assert {
        ("No Email", sync_pb2.SKIP_REASON_MISSING_EMAIL),
        ("Twin One", sync_pb2.SKIP_REASON_DUPLICATE_EMAIL),
        ("Twin Two", sync_pb2.SKIP_REASON_DUPLICATE_EMAIL),
    } <= skips
    schools = [
        org for org in sandbox.roster()["orgs"] if org["type"] == "school" and org["status"] == "active"
    ]
    assert summary.schools_created == len(schools)
    assert summary.teachers_added + summary.teachers_updated + sum(skipped.values()) == len(
        active_teacher_rows(sandbox)
    )
    update = next(item for item in items if item.kind == sync_pb2.PLAN_ITEM_KIND_UPDATE_TEACHER)
    assert update.email == preview.renamed["email"]
    assert [(c.field, c.old_value, c.new_value) for c in update.field_changes] == [
        ("given_name", "Old", preview.renamed["givenName"])
    ]
    archive = next(item for item in items if item.kind == sync_pb2.PLAN_ITEM_KIND_ARCHIVE_TEACHER)
    assert (archive.email, summary.teachers_archived) == ("gone@x.test", 1)
    assert archive.reason
    assert not pages[0].guard.needs_review and pages[0].guard.active_count == 2
    assert preview.stack.roster.snapshot() == before
    with preview.stack.app.sessions() as session:
        assert session.query(SchoolMapping).count() == session.query(TeacherLink).count() == 0


def test_a_kind_filter_pages_only_that_kind(preview: Preview) -> None:
    pages, items = preview.all_items(page_size=1, kind=sync_pb2.PLAN_ITEM_KIND_SKIP)

    assert len(pages) == len(items) == sum(s.count for s in pages[0].summary.skipped) >= 3
    assert {item.kind for item in items} == {sync_pb2.PLAN_ITEM_KIND_SKIP}
    assert all(item.skip_reason != sync_pb2.SKIP_REASON_UNSPECIFIED and item.reason for item in items)
    error = preview.fails(page_token=pages[0].next_page_token, kind=sync_pb2.PLAN_ITEM_KIND_ADD_TEACHER)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_page_token_continues_the_same_plan_without_reading_classlink_again(
    preview: Preview, sandbox: SandboxHandle
) -> None:
    first = preview.call(page_size=2)
    school = next(org["sourcedId"] for org in sandbox.roster()["orgs"] if org["type"] == "school")
    added = sandbox.mutate(
        [
            {
                "op": "add_teacher",
                "givenName": "Late",
                "familyName": "Comer",
                "email": "late@x.test",
                "orgs": [school],
            }
        ]
    )
    try:
        second = preview.call(page_size=2, page_token=first.next_page_token)
        fresh = preview.call(page_size=2)
    finally:
        sandbox.mutate([{"op": "remove_user", "sourcedId": added[0]["sourcedId"]}])

    assert second.summary == first.summary and second.read_time == first.read_time
    assert fresh.summary.teachers_added == first.summary.teachers_added + 1


def test_forged_foreign_and_expired_tokens_say_start_again(preview: Preview) -> None:
    first = preview.call(page_size=1)
    for token in ("forged", first.next_page_token[:-3] + "abc"):
        error = preview.fails(page_token=token)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "start the preview again" in details(error)
    started = preview.stack.app.clock()
    preview.stack.app.clock = lambda: started + dt.timedelta(hours=2)

    error = preview.fails(page_size=1, page_token=first.next_page_token)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "start the preview again" in details(error)


def test_a_failed_pull_is_reported_and_stores_no_plan(preview: Preview, sandbox: SandboxHandle) -> None:
    sandbox.set_faults([{"kind": "status", "status": 401, "times": -1, "path": "teachers"}])
    try:
        error = preview.fails()
    finally:
        sandbox.clear_faults()

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "ClassLink rejected the client id or secret" in details(error)
    with preview.stack.app.sessions() as session:
        assert session.query(Plan).count() == 0


def test_preview_needs_a_connection(sandbox: SandboxHandle, database_url: DatabaseFactory) -> None:
    with sync_stack(database_url("roster"), database_url("sync"), sandbox=sandbox, connect=False) as stack:
        channel = grpc.insecure_channel(stack.server.target)
        try:
            error = Preview(stack, channel).fails()
        finally:
            channel.close()

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "Connect ClassLink first" in details(error)
