"""Sync runs through the real stack: sandbox over HTTP, roster server, sync server, client library."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from ew.client.roster import RosterClient
from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2

from services.oneroster_sandbox.truth import syncable_teachers
from services.sync.planning.emails import email_key
from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with sync_stack(database_url("roster"), database_url("sync"), schools=6, teachers=80) as running:
        yield running


def active_teachers(roster: RosterClient, district_id: str) -> dict[str, roster_pb2.Teacher]:
    return {
        email_key(t.email): t
        for t in roster.list_teachers(district_id)
        if t.state == roster_pb2.TEACHER_STATE_ACTIVE
    }


def test_sync_streams_monotonic_progress_to_100_with_summary_and_lands_the_roster(stack: SyncStack) -> None:
    events = stack.client.sync_rosters(stack.district_id)
    seen = list(events)

    assert events.run is not None and events.run.name.startswith(f"districts/{stack.district_id}/syncRuns/")
    assert [e.sequence for e in seen] == list(range(1, len(seen) + 1))
    percents = [e.percent for e in seen]
    assert percents == sorted(percents)
    assert all(p < 100 for p in percents[:-1])
    last = seen[-1]
    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
    assert last.percent == 100 and last.phase == sync_pb2.SYNC_PHASE_DONE
    phases = [e.phase for e in seen]
    for phase in (
        sync_pb2.SYNC_PHASE_CONNECTING,
        sync_pb2.SYNC_PHASE_READING_TEACHERS,
        sync_pb2.SYNC_PHASE_PLANNING,
        sync_pb2.SYNC_PHASE_SYNCING_TEACHERS,
        sync_pb2.SYNC_PHASE_COMMITTING,
    ):
        assert phase in phases
    assert any(e.message == "Data from ClassLink is syncing" for e in seen)

    summary = last.summary
    assert summary.teachers_added > 0 and summary.schools_created > 0
    landed = active_teachers(stack.roster.client, stack.district_id)
    assert len(landed) == summary.teachers_added
    assert set(landed) == {email_key(u["email"]) for u in syncable_teachers(stack.sandbox.roster())}

    run = stack.client.get_run(events.run.name)
    assert run.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    assert run.percent == 100 and run.last_sequence == last.sequence
    assert run.summary == summary
    assert run.trigger == sync_pb2.SYNC_TRIGGER_MANUAL
    assert run.start_time.ToDatetime() <= run.end_time.ToDatetime()
    connection = stack.client.get_connection(stack.district_id)
    assert connection.HasField("last_success_time")


def test_a_second_identical_sync_reports_zero_changes_and_writes_nothing(stack: SyncStack) -> None:
    first = list(stack.client.sync_rosters(stack.district_id))[-1]
    assert first.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, first.message
    before = stack.roster.snapshot()

    second = list(stack.client.sync_rosters(stack.district_id))[-1]

    assert second.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, second.message
    summary = second.summary
    assert (
        summary.schools_created,
        summary.teachers_added,
        summary.teachers_updated,
        summary.teachers_archived,
        summary.teachers_reactivated,
    ) == (0, 0, 0, 0, 0)
    assert summary.teachers_unchanged == first.summary.teachers_added
    assert stack.roster.snapshot() == before


def test_run_history_lists_newest_first_with_items_paged(stack: SyncStack) -> None:
    first = stack.client.sync_rosters(stack.district_id)
    list(first)
    second = stack.client.sync_rosters(stack.district_id)
    list(second)
    assert first.run is not None and second.run is not None

    page1 = stack.client.list_runs(stack.district_id, page_size=1)
    page2 = stack.client.list_runs(stack.district_id, page_size=1, page_token=page1.next_page_token)
    assert [r.name for r in page1.runs] == [second.run.name]
    assert [r.name for r in page2.runs] == [first.run.name]
    assert page2.next_page_token == ""

    added = first.last_event.summary.teachers_added  # type: ignore[union-attr]
    names: list[str] = []
    token = ""
    while True:
        page = stack.client.list_run_items(
            first.run.name, page_size=7, page_token=token, kind=sync_pb2.PLAN_ITEM_KIND_ADD_TEACHER
        )
        names += [item.display_name for item in page.items]
        assert all(item.kind == sync_pb2.PLAN_ITEM_KIND_ADD_TEACHER for item in page.items)
        token = page.next_page_token
        if not token:
            break
    assert len(names) == added
    skipped = stack.client.list_run_items(first.run.name, kind=sync_pb2.PLAN_ITEM_KIND_SKIP, page_size=500)
    assert all(item.skip_reason != sync_pb2.SKIP_REASON_UNSPECIFIED for item in skipped.items)
