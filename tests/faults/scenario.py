"""One fault case, start to end: a synced district, a ClassLink change, the faulty run, the verdict.

``prepare`` syncs a small district once, then changes it in ClassLink (a new school with a teacher,
hires, leavers, renamed teachers), so the faulty run has schools to create, teachers to add, update
and archive: half of it landing is visible, and so is a teacher archived by mistake. ``settle``
takes the roster after the run and requires it to be exactly as before or fully synced — matching
the run's state — then lifts the faults and requires one more sync to converge.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ew.client.sync import RunEvents
from ew.sync.v1 import sync_pb2

from services.oneroster_sandbox.truth import active_schools, syncable_teachers
from tests.support.deployment import Deployment
from tests.support.roster_snapshot import BEFORE, SYNCED, RosterSnapshot, snapshot, verdict

# A few hundred teachers read in pages of 50, two at a time: several pages to break, seconds to sync.
DISTRICT = {"seed": 11, "schools": 8, "teachers": 300}
SYNC_ENV = {"EW_SYNC_ONEROSTER_PAGE_SIZE": "50", "EW_SYNC_ONEROSTER_CONCURRENCY": "2"}

SUCCEEDED = sync_pb2.SYNC_RUN_STATE_SUCCEEDED
_rounds = itertools.count(1)
STAGING_PHASES = (
    sync_pb2.SYNC_PHASE_CREATING_SCHOOLS,
    sync_pb2.SYNC_PHASE_SYNCING_TEACHERS,
    sync_pb2.SYNC_PHASE_ARCHIVING,
)


@dataclass(frozen=True)
class Ended:
    """How a run ended: its name, terminal event, and seconds from its start to that event."""

    run: str
    event: sync_pb2.SyncEvent
    seconds: float

    @property
    def state(self) -> str:
        """The terminal state's short name (SUCCEEDED, FAILED, ...)."""
        return sync_pb2.SyncRunState.Name(self.event.state).removeprefix("SYNC_RUN_STATE_")


def last_event(events: Iterable[sync_pb2.SyncEvent]) -> sync_pb2.SyncEvent:
    """The terminal event of a stream followed to its end."""
    seen = list(events)
    assert seen, "the run's stream ended without an event"
    return seen[-1]


def change_classlink(deployment: Deployment) -> None:
    """Change the district in ClassLink so the next sync creates, adds, updates and archives."""
    truth = deployment.sandbox.roster()
    teachers = syncable_teachers(truth)
    school = active_schools(truth)[0]["sourcedId"]
    round_ = next(_rounds)
    new_school = f"org-faults-{round_}"
    ops: list[dict[str, object]] = [
        {"op": "add_school", "name": f"Fault Line Academy {round_}", "sourcedId": new_school}
    ]
    ops += [{"op": "remove_user", "sourcedId": t["sourcedId"]} for t in teachers[:3]]
    ops += [
        {"op": "update_user", "sourcedId": t["sourcedId"], "set": {"familyName": t["familyName"] + "-Moved"}}
        for t in teachers[3:6]
    ]
    ops += [
        {
            "op": "add_teacher",
            "givenName": "New",
            "familyName": f"Hire{round_}x{number}",
            "email": f"new.hire{round_}.{number}@faults.example.org",
            "orgs": [school if number else new_school],
        }
        for number in range(3)
    ]
    deployment.sandbox.mutate(ops)


def connect_and_sync(deployment: Deployment) -> Deployment:
    """Connect the deployment's district and sync it once (a fixture's first step)."""
    deployment.connect()
    first = last_event(deployment.sync.sync_rosters(deployment.district_id))
    assert first.state == SUCCEEDED, first.message
    return deployment


def prepare(deployment: Deployment) -> RosterSnapshot:
    """Change ClassLink (of a synced district); the roster as it is before the faulty run."""
    change_classlink(deployment)
    return snapshot(deployment.roster, deployment.district_id)


def follow(
    deployment: Deployment, on_event: Callable[[sync_pb2.SyncEvent], None] | None = None
) -> tuple[RunEvents, float]:
    """Start a sync; call ``on_event`` with each event until the run ends. The stream and its start."""
    started = time.monotonic()
    events = deployment.sync.sync_rosters(deployment.district_id)
    for event in events:
        if on_event is not None:
            on_event(event)
    return events, started


def ended(deployment: Deployment, events: RunEvents, started: float) -> Ended:
    """The run of a stream followed to its terminal event."""
    assert events.last_event is not None and events.run_name
    assert events.last_event.state in (
        sync_pb2.SYNC_RUN_STATE_SUCCEEDED,
        sync_pb2.SYNC_RUN_STATE_FAILED,
        sync_pb2.SYNC_RUN_STATE_CANCELLED,
        sync_pb2.SYNC_RUN_STATE_NEEDS_REVIEW,
    ), events.last_event
    return Ended(events.run_name, events.last_event, time.monotonic() - started)


def watch_to_end(deployment: Deployment, run: str, after_sequence: int, started: float) -> Ended:
    """Follow ``run`` from ``after_sequence`` to its terminal event."""
    events = deployment.sync.watch_run(run, after_sequence=after_sequence)
    last_event(events)
    return ended(deployment, events, started)


def converge(deployment: Deployment, before: RosterSnapshot) -> None:
    """With the faults lifted, one more sync succeeds and leaves the roster fully synced."""
    deployment.sandbox.clear_faults()
    again = last_event(deployment.sync.sync_rosters(deployment.district_id))
    assert again.state == SUCCEEDED, again.message
    after = snapshot(deployment.roster, deployment.district_id)
    assert verdict(after, before, deployment.sandbox.roster()) == SYNCED


def settle(
    deployment: Deployment,
    run: Ended,
    before: RosterSnapshot,
    record: Callable[[str, float, str, str], None],
) -> str:
    """Judge the roster after ``run`` (before or synced, as its state says), record, converge."""
    after = snapshot(deployment.roster, deployment.district_id)
    found = verdict(after, before, deployment.sandbox.roster())
    message = run.event.message or deployment.sync.get_run(run.run).error_message
    record(run.state, run.seconds, found, message)
    assert found == (SYNCED if run.event.state == SUCCEEDED else BEFORE), (run.state, message)
    converge(deployment, before)
    return found
