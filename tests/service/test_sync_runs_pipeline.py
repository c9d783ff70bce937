"""The sync's overlapped pipeline: EW is read while ClassLink is pulled, progress moves page by page.

EW's roster is exported while ClassLink's pages download; whatever fails, nothing reaches EW unless
the whole change set commits. Against a slowed sandbox the progress stream must show the percent
moving at least every two seconds and never going back, judged by the events' own timestamps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from ew.sync.v1 import sync_pb2

from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(180)

PAGE = 20
TEACHERS = 200
LONGEST_STILL_SECONDS = 2.0


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with sync_stack(
        database_url("roster"),
        database_url("sync"),
        # A 500 is retried: the last page keeps failing, quickly, until the retry budget is spent.
        settings={"oneroster_page_size": PAGE, "oneroster_retry_delay": 0.01},
        schools=8,
        teachers=TEACHERS,
    ) as running:
        yield running


def test_a_classlink_failure_on_the_last_page_leaves_ew_unchanged_though_ew_was_read(
    stack: SyncStack,
) -> None:
    first = list(stack.client.sync_rosters(stack.district_id))[-1]
    assert first.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, first.message
    teachers = [u for u in stack.sandbox.roster()["users"] if u["role"] == "teacher"]
    # The district changed: a sync that finished would archive these and rename the rest's school.
    stack.sandbox.mutate([{"op": "remove_user", "sourcedId": u["sourcedId"]} for u in teachers[:15]])
    pages = -(-len(teachers[15:]) // PAGE)
    stack.sandbox.set_faults(
        [{"kind": "status", "status": 500, "times": -1, "skip": pages - 1, "path": "teachers"}]
    )
    before, staged_before = stack.roster.snapshot(), stack.roster.staged_rows()

    last = list(stack.client.sync_rosters(stack.district_id))[-1]

    assert last.state == sync_pb2.SYNC_RUN_STATE_FAILED
    assert "Nothing was changed" in last.message
    assert [fault["skip"] for fault in stack.sandbox.pending_faults()] == [0], "the last page was never asked"
    assert stack.roster.snapshot() == before
    assert stack.roster.staged_rows() == staged_before


@pytest.fixture
def slow_stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    # 3,000 teachers in 30 pages of 100 (the slow-server profile's cap), 0.3 s a page, two at once.
    with sync_stack(
        database_url("roster"),
        database_url("sync"),
        settings={"oneroster_concurrency": 2},
        schools=60,
        teachers=3000,
        page_cap=100,
        faults=[{"kind": "slow", "delay": 0.3, "times": -1, "path": "teachers"}],
    ) as running:
        yield running


def test_the_percent_of_a_slowed_large_sync_moves_every_two_seconds_and_never_goes_down(
    slow_stack: SyncStack,
) -> None:
    events = list(slow_stack.client.sync_rosters(slow_stack.district_id))

    assert events[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, events[-1].message
    percents = [e.percent for e in events]
    assert percents == sorted(percents)
    changes = [events[0]] + [
        e for before, e in zip(events, events[1:], strict=False) if e.percent != before.percent
    ]
    stills = [
        (later.time.ToDatetime() - earlier.time.ToDatetime()).total_seconds()
        for earlier, later in zip(changes, changes[1:], strict=False)
    ]
    longest = max(stills)
    where = changes[stills.index(longest)]
    assert longest <= LONGEST_STILL_SECONDS, (
        f"the percent stood at {where.percent} for {longest:.1f} s in {sync_pb2.SyncPhase.Name(where.phase)}"
    )
    reading = [e.percent for e in events if e.phase == sync_pb2.SYNC_PHASE_READING_TEACHERS]
    assert len(set(reading)) > 5, f"the teacher read showed only {sorted(set(reading))}"
