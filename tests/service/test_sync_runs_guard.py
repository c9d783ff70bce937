"""The safety guard and failed pulls: nobody is archived unless a complete pull and an admin say so."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from ew.client.errors import RosterError
from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2

from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    # Small pages, so a fault can hit the middle of the teachers pull.
    with sync_stack(
        database_url("roster"),
        database_url("sync"),
        settings={"oneroster_page_size": 20},
        schools=4,
        teachers=80,
    ) as running:
        yield running


def sync(stack: SyncStack, approve_run: str = "") -> tuple[str, list[sync_pb2.SyncEvent]]:
    events = stack.client.sync_rosters(stack.district_id, approve_run=approve_run)
    seen = list(events)
    assert events.run is not None
    return events.run.name, seen


def archived_ids(stack: SyncStack) -> set[str]:
    return {
        t.teacher_id
        for t in stack.roster.client.list_teachers(stack.district_id)
        if t.state == roster_pb2.TEACHER_STATE_ARCHIVED
    }


def test_a_source_that_lost_30_percent_of_its_teachers_needs_review_then_approval_archives_them(
    stack: SyncStack,
) -> None:
    _, first = sync(stack)
    assert first[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, first[-1].message
    teachers = [u for u in stack.sandbox.roster()["users"] if u["role"] == "teacher"]
    leaving = teachers[: len(teachers) * 3 // 10]
    stack.sandbox.mutate([{"op": "remove_user", "sourcedId": u["sourcedId"]} for u in leaving])
    before = stack.roster.snapshot()

    review_name, review = sync(stack)

    last = review[-1]
    assert last.state == sync_pb2.SYNC_RUN_STATE_NEEDS_REVIEW
    assert all(e.percent < 100 for e in review)
    assert stack.roster.snapshot() == before
    run = stack.client.get_run(review_name)
    assert run.guard.needs_review and run.guard.archive_count > run.guard.threshold
    listed = stack.client.list_run_items(
        review_name, kind=sync_pb2.PLAN_ITEM_KIND_ARCHIVE_TEACHER, page_size=500
    )
    to_archive = {item.ew_id for item in listed.items}
    assert len(to_archive) == run.guard.archive_count
    assert {item.classlink_id for item in listed.items} <= {u["sourcedId"] for u in leaving}

    approval_name, approval = sync(stack, approve_run=review_name)

    assert approval[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, approval[-1].message
    assert approval[-1].summary.teachers_archived == len(to_archive)
    assert archived_ids(stack) == to_archive
    approved = stack.client.get_run(approval_name)
    assert approved.trigger == sync_pb2.SYNC_TRIGGER_APPROVAL
    assert approved.approved_run == review_name
    with pytest.raises(RosterError) as twice:
        list(stack.client.sync_rosters(stack.district_id, approve_run=review_name))
    assert twice.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "approved already" in twice.value.message


def test_approving_a_run_that_is_not_in_review_is_refused(stack: SyncStack) -> None:
    name, events = sync(stack)
    assert events[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    runs_before = stack.client.list_runs(stack.district_id).runs

    with pytest.raises(RosterError) as refused:
        list(stack.client.sync_rosters(stack.district_id, approve_run=name))

    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "NEEDS_REVIEW" in refused.value.message
    assert stack.client.list_runs(stack.district_id).runs == runs_before


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(
            {"kind": "status", "status": 500, "times": -1, "skip": 1, "path": "teachers"}, id="5xx-mid-pull"
        ),
        pytest.param(
            {"kind": "total_change", "times": -1, "path": "teachers"}, id="total-changes-every-attempt"
        ),
    ],
)
def test_a_pull_that_fails_midway_fails_the_run_and_archives_nobody(
    stack: SyncStack, fault: dict[str, object]
) -> None:
    _, first = sync(stack)
    assert first[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, first[-1].message
    teachers = [u for u in stack.sandbox.roster()["users"] if u["role"] == "teacher"]
    # Half the district leaves: a sync that believed a partial pull would archive them.
    stack.sandbox.mutate([{"op": "remove_user", "sourcedId": u["sourcedId"]} for u in teachers[::2]])
    stack.sandbox.set_faults([fault])
    before = stack.roster.snapshot()

    name, events = sync(stack)

    last = events[-1]
    assert last.state == sync_pb2.SYNC_RUN_STATE_FAILED
    assert "nobody was archived" in last.message
    run = stack.client.get_run(name)
    assert run.state == sync_pb2.SYNC_RUN_STATE_FAILED and run.error_message == last.message
    assert stack.roster.snapshot() == before
    assert archived_ids(stack) == set()
