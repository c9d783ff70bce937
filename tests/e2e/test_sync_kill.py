"""SIGKILL the process executing a run in the middle of its teacher phase, then start it again.

The run must end FAILED with a reason (never RUNNING forever), EW's roster must be exactly as
before (the change set never committed), and a new sync must converge.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ew.client.roster import RosterClient
from ew.sync.v1 import sync_pb2

from services.oneroster_sandbox.truth import active_schools, ew_teachers, syncable_teachers
from services.sync.runs.recovery import WORKER_DIED
from tests.support.deployment import Deployment

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def roster_state(roster: RosterClient, district_id: str) -> tuple[list[str], dict[str, object]]:
    schools = sorted(s.school_id for s in roster.list_schools(district_id))
    return schools, dict(ew_teachers(roster.list_teachers(district_id)))


def test_killing_the_executing_process_mid_run_fails_the_run_and_changes_nothing(
    deploy: Callable[..., Deployment],
) -> None:
    # Enough teachers that staging them takes several batches after the phase starts.
    d = deploy(seed=5, schools=30, teachers=6000)
    d.connect()
    before = roster_state(d.roster, d.district_id)

    events = d.sync.sync_rosters(d.district_id)
    for event in events:
        assert event.state != sync_pb2.SYNC_RUN_STATE_SUCCEEDED, "the run ended before the teacher phase"
        if event.phase == sync_pb2.SYNC_PHASE_SYNCING_TEACHERS:
            d.executor.kill()
            break
    assert events.run is not None
    run_name = events.run.name
    events.close()
    d.restart_executor()

    finished = list(d.sync.watch_run(run_name, after_sequence=events.last_sequence))

    assert finished[-1].state == sync_pb2.SYNC_RUN_STATE_FAILED
    run = d.sync.get_run(run_name)
    assert run.state == sync_pb2.SYNC_RUN_STATE_FAILED
    assert run.error_message == WORKER_DIED
    assert roster_state(d.roster, d.district_id) == before

    again = d.sync.sync_rosters(d.district_id)
    last = list(again)[-1]
    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
    truth = d.sandbox.roster()
    assert last.summary.teachers_added == len(syncable_teachers(truth))
    assert last.summary.schools_created == len(active_schools(truth))
    active = {key for key, row in ew_teachers(d.roster.list_teachers(d.district_id)).items() if row.active}
    assert len(active) == len(syncable_teachers(truth))
