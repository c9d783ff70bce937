"""ClassLink misbehaving mid-pull: each run retries to a full sync, or fails having changed nothing.

A fault the retry policy absorbs (429 with ``Retry-After``, 5xx bursts, timeouts, resets, a cut
body) must end SUCCEEDED and fully synced; one that would hand the planner an incomplete roster (a
page that drops rows) must end FAILED with EW as before — never a mass archive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from ew.sync.v1 import sync_pb2

from tests.faults.conftest import Launch
from tests.faults.scenario import DISTRICT, SYNC_ENV, connect_and_sync, ended, follow, prepare, settle
from tests.support.deployment import Deployment
from tests.support.roster_snapshot import BEFORE, SYNCED

pytestmark = pytest.mark.timeout(150)

TEACHERS = "teachers"
READ_TIMEOUT = {"EW_SYNC_ONEROSTER_READ_TIMEOUT": "2"}


@pytest.fixture(scope="module")
def deployment(launch: Launch) -> Deployment:
    """One synced district for the module's cases (each case changes ClassLink again first)."""
    return connect_and_sync(launch(sync_env=SYNC_ENV | READ_TIMEOUT, **DISTRICT))


def test_a_429_storm_is_waited_out_as_retry_after_asks(
    deployment: Deployment, record: Callable[[str, float, str, str], None]
) -> None:
    before = prepare(deployment)
    storm = {"kind": "status", "status": 429, "retry_after": "1", "times": 3, "path": TEACHERS}
    deployment.sandbox.set_faults([storm])

    messages: list[str] = []
    events, started = follow(deployment, lambda event: messages.append(event.message))

    run = ended(deployment, events, started)
    assert "ClassLink asked us to wait 1 s" in messages
    assert run.seconds >= 1.0  # at least one whole Retry-After was waited
    assert deployment.sandbox.pending_faults()[0]["times"] == 0
    assert settle(deployment, run, before, record) == SYNCED


BURSTS: list[Any] = [
    pytest.param(
        [
            {"kind": "status", "status": status, "times": 1, "path": TEACHERS}
            for status in (500, 502, 503, 500)
        ],
        id="5xx_burst",
    ),
    pytest.param(
        [{"kind": "slow", "delay": 5, "times": 2, "path": TEACHERS}],
        id="read_timeouts",
    ),
    pytest.param([{"kind": "reset", "times": 3, "path": TEACHERS}], id="connection_resets"),
    pytest.param([{"kind": "truncate", "times": 2, "path": TEACHERS}], id="truncated_body"),
]


@pytest.mark.parametrize("faults", BURSTS)
def test_transient_faults_are_retried_to_a_full_sync(
    deployment: Deployment, record: Callable[[str, float, str, str], None], faults: list[dict[str, Any]]
) -> None:
    before = prepare(deployment)
    deployment.sandbox.set_faults(faults)

    events, started = follow(deployment)

    run = ended(deployment, events, started)
    assert all(fault["times"] == 0 for fault in deployment.sandbox.pending_faults()), "a fault never hit"
    assert run.event.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, run.event.message
    assert settle(deployment, run, before, record) == SYNCED


def test_a_total_that_changes_mid_pull_never_lands_half_a_roster(
    deployment: Deployment, record: Callable[[str, float, str, str], None]
) -> None:
    before = prepare(deployment)
    deployment.sandbox.set_faults([{"kind": "total_change", "skip": 2, "times": 1, "path": TEACHERS}])

    events, started = follow(deployment)

    assert deployment.sandbox.pending_faults()[0]["times"] == 0
    settle(deployment, ended(deployment, events, started), before, record)


def test_a_page_that_silently_drops_rows_fails_the_run_and_archives_nobody(
    deployment: Deployment, record: Callable[[str, float, str, str], None]
) -> None:
    before = prepare(deployment)
    deployment.sandbox.set_faults(
        [{"kind": "short_page", "drop": 5, "skip": 1, "times": -1, "path": TEACHERS}]
    )

    events, started = follow(deployment)

    run = ended(deployment, events, started)
    assert run.event.state == sync_pb2.SYNC_RUN_STATE_FAILED
    assert "nobody was archived" in run.event.message
    assert settle(deployment, run, before, record) == BEFORE


def test_pages_capped_below_the_asked_size_without_totals_or_links_sync_everyone(
    launch: Launch, record: Callable[[str, float, str, str], None]
) -> None:
    # A server of its own: the cap and the missing totals are how it always answers.
    deployment = connect_and_sync(
        launch(sync_env=SYNC_ENV, page_cap=20, omit_total=True, omit_links=True, **DISTRICT)
    )
    before = prepare(deployment)

    events, started = follow(deployment)

    run = ended(deployment, events, started)
    assert run.event.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, run.event.message
    assert settle(deployment, run, before, record) == SYNCED
