"""SQL for sync runs and their events. Every function takes the caller's session; none commits.

Fencing: a worker claims a run by writing its own ``worker_id`` token; every later write of that
worker names the token and the RUNNING state (``append_worker_event``), so a worker that recovery
gave up on (stale heartbeat) finds its writes refused (``RunLost``) instead of overwriting the
verdict. Recovery's verdict is fenced on the heartbeat still being stale
(``append_recovery_event``); a cancel or a queue failure on the run still being in the state it
read (``append_event_in_state``). All three share ``_append``: one conditional update that checks
the fence and takes the next sequence number.

Cancellation: ``request_cancel`` sets ``cancel_requested`` on a RUNNING run only while its phase is
not COMMITTING, and the worker's event that enters COMMITTING (or ends the run in NEEDS_REVIEW) is
fenced on ``cancel_requested`` being unset. Both are conditional updates of the one row, so exactly
one wins: the run commits, or it is cancelled (``RunCancelled``), never both.

Every event that ends a sync run also enqueues its webhook event (``services.sync.store.outbox``) in
the same transaction, so the EW product hears of every ended run. Preview jobs (trigger PREVIEW)
change nothing and send none.

Preview jobs are runs outside the one-active-run rule: ``active_run`` and ``latest_run_state`` see
sync runs only, and ``active_preview`` the district's one active preview job.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from services.sync.store import outbox
from services.sync.store.models import Connection, SyncRun, SyncRunEvent
from services.sync.vocabulary import SyncPhase, SyncRunState, SyncTrigger, WebhookEventType

ACTIVE_STATES = (SyncRunState.QUEUED, SyncRunState.RUNNING)
TERMINAL_STATES = (
    SyncRunState.NEEDS_REVIEW,
    SyncRunState.SUCCEEDED,
    SyncRunState.FAILED,
    SyncRunState.CANCELLED,
    SyncRunState.PREVIEWED,
)
# The phases from which nothing may cancel a run: its commit has started (or it has ended).
UNCANCELLABLE_PHASES = (SyncPhase.COMMITTING, SyncPhase.DONE)

WEBHOOK_EVENTS = {
    SyncRunState.NEEDS_REVIEW: WebhookEventType.SYNC_RUN_NEEDS_REVIEW,
    SyncRunState.SUCCEEDED: WebhookEventType.SYNC_RUN_SUCCEEDED,
    SyncRunState.FAILED: WebhookEventType.SYNC_RUN_FAILED,
    SyncRunState.CANCELLED: WebhookEventType.SYNC_RUN_CANCELLED,
}


class RunLost(Exception):
    """The run is no longer this worker's (recovered as stale, or finished by someone else)."""


class RunCancelled(Exception):
    """An administrator cancelled the run before its commit: the worker stops and ends it CANCELLED."""


@dataclass(frozen=True)
class EventValues:
    """What one progress event says."""

    state: SyncRunState
    phase: SyncPhase
    percent: int
    done: int = 0
    total: int = 0
    message: str = ""
    summary_json: str | None = None
    error_message: str | None = None

    @classmethod
    def failed(cls, phase: SyncPhase, percent: int, message: str) -> EventValues:
        """The event that ends a run FAILED where it stood, ``message`` saying why."""
        return cls(
            state=SyncRunState.FAILED, phase=phase, percent=percent, message=message, error_message=message
        )


def insert_run(
    session: Session,
    *,
    run_id: str,
    district_id: str,
    trigger: SyncTrigger,
    requested_by: str,
    approved_run_id: str | None,
    now: dt.datetime,
    message: str,
) -> SyncRun:
    """Insert a QUEUED run and its first event; the active-run index rejects a second one."""
    run = SyncRun(
        id=run_id,
        district_id=district_id,
        trigger=trigger,
        state=SyncRunState.QUEUED,
        phase=SyncPhase.QUEUED,
        percent=0,
        approved_run_id=approved_run_id,
        requested_by=requested_by,
        attempt=0,
        create_time=now,
        last_sequence=1,
    )
    session.add(run)
    session.add(
        SyncRunEvent(
            run_id=run_id,
            sequence=1,
            time=now,
            state=SyncRunState.QUEUED,
            phase=SyncPhase.QUEUED,
            percent=0,
            done=0,
            total=0,
            message=message,
        )
    )
    session.flush()
    return run


def get_run(session: Session, run_id: str) -> SyncRun | None:
    """The run with this id, any district."""
    return session.get(SyncRun, run_id)


def get_district_run(session: Session, district_id: str, run_id: str) -> SyncRun | None:
    """The run when it belongs to the district (another district's run does not exist for it)."""
    run = session.get(SyncRun, run_id)
    if run is None or run.district_id != district_id:
        return None
    return run


def lock_district_run(session: Session, district_id: str, run_id: str) -> SyncRun | None:
    """The district's run, read fresh with its row locked until the transaction ends.

    Approving a reviewed run and cancelling it both start here, so on PostgreSQL (READ COMMITTED)
    one waits for the other and then sees what it committed: a cancel after an approval finds the
    approval run, an approval after a cancel finds the run CANCELLED. SQLite needs no lock (every
    transaction begins IMMEDIATE, one writer at a time).
    """
    return session.scalars(
        select(SyncRun)
        .where(SyncRun.id == run_id, SyncRun.district_id == district_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def active_run(session: Session, district_id: str) -> SyncRun | None:
    """The district's QUEUED or RUNNING sync run (never a preview job), if any."""
    return session.scalars(
        select(SyncRun).where(
            SyncRun.district_id == district_id,
            SyncRun.state.in_(ACTIVE_STATES),
            SyncRun.trigger != SyncTrigger.PREVIEW,
        )
    ).first()


def active_preview(session: Session, district_id: str) -> SyncRun | None:
    """The district's QUEUED or RUNNING preview job, if any."""
    return session.scalars(
        select(SyncRun).where(
            SyncRun.district_id == district_id,
            SyncRun.state.in_(ACTIVE_STATES),
            SyncRun.trigger == SyncTrigger.PREVIEW,
        )
    ).first()


def has_succeeded(session: Session, district_id: str) -> bool:
    """True when the district has had at least one successful sync."""
    return bool(
        session.scalar(
            select(
                exists().where(SyncRun.district_id == district_id, SyncRun.state == SyncRunState.SUCCEEDED)
            )
        )
    )


def latest_run_state(session: Session, district_id: str) -> SyncRunState | None:
    """The state of the district's newest sync run (preview jobs left out), if it has one."""
    return session.scalars(
        select(SyncRun.state)
        .where(SyncRun.district_id == district_id, SyncRun.trigger != SyncTrigger.PREVIEW)
        .order_by(SyncRun.create_time.desc(), SyncRun.id.desc())
        .limit(1)
    ).first()


def active_auto_runs(session: Session, server_url: str) -> int:
    """How many AUTO runs are queued or running for districts on this ClassLink server."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(SyncRun)
            .join(Connection, Connection.district_id == SyncRun.district_id)
            .where(
                Connection.server_url == server_url,
                SyncRun.trigger == SyncTrigger.AUTO,
                SyncRun.state.in_(ACTIVE_STATES),
            )
        )
        or 0
    )


def mark_revert(session: Session, run_id: str, reverted_run_id: str) -> None:
    """Record which run a REVERT run reverts."""
    session.execute(update(SyncRun).where(SyncRun.id == run_id).values(reverted_run_id=reverted_run_id))


def revert_of(session: Session, reverted_run_id: str) -> SyncRun | None:
    """A run that reverted (or is reverting) ``reverted_run_id`` and did not fail."""
    return session.scalars(
        select(SyncRun).where(
            SyncRun.reverted_run_id == reverted_run_id, SyncRun.state != SyncRunState.FAILED
        )
    ).first()


def approval_of(session: Session, reviewed_run_id: str) -> SyncRun | None:
    """A run that approved ``reviewed_run_id`` and did not fail or get cancelled (active or done)."""
    return session.scalars(
        select(SyncRun).where(
            SyncRun.approved_run_id == reviewed_run_id,
            SyncRun.state.not_in((SyncRunState.FAILED, SyncRunState.CANCELLED)),
        )
    ).first()


def claim(session: Session, run_id: str, worker_id: str, now: dt.datetime) -> bool:
    """QUEUED → RUNNING for this worker; False when the run is not QUEUED (duplicate delivery)."""
    claimed = session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id, SyncRun.state == SyncRunState.QUEUED)
        .values(
            state=SyncRunState.RUNNING,
            worker_id=worker_id,
            attempt=SyncRun.attempt + 1,
            start_time=func.coalesce(SyncRun.start_time, now),
            heartbeat_time=now,
        )
        .returning(SyncRun.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    return claimed is not None


def _passes_point_of_no_return(values: EventValues) -> bool:
    """The event starts the commit, stops the run for review or ends a preview job with its plan.

    A cancelled run must not write it.
    """
    return values.state in (SyncRunState.NEEDS_REVIEW, SyncRunState.PREVIEWED) or (
        values.state is SyncRunState.RUNNING and values.phase is SyncPhase.COMMITTING
    )


def _refusal(session: Session, run_id: str, worker_id: str) -> Exception:
    """Why a worker's fenced write was refused: its run was cancelled, or it is lost."""
    cancelled = session.scalar(
        select(SyncRun.cancel_requested).where(
            SyncRun.id == run_id, SyncRun.worker_id == worker_id, SyncRun.state == SyncRunState.RUNNING
        )
    )
    return RunCancelled(run_id) if cancelled else RunLost(run_id)


def append_worker_event(
    session: Session, run_id: str, values: EventValues, now: dt.datetime, worker_id: str
) -> int:
    """Append a worker's event: fenced to that worker's RUNNING run (see ``_append``).

    The event that starts the commit or stops for review is also fenced to a run nobody cancelled
    (see the module's words on cancellation). ``RunCancelled`` when that fence refuses because of a
    cancel, ``RunLost`` otherwise.
    """
    conditions = [SyncRun.worker_id == worker_id, SyncRun.state == SyncRunState.RUNNING]
    if _passes_point_of_no_return(values):
        conditions.append(SyncRun.cancel_requested.is_(False))
    sequence = _append(session, run_id, values, now, conditions)
    if sequence is None:
        raise _refusal(session, run_id, worker_id)
    return sequence


def append_recovery_event(
    session: Session, run_id: str, values: EventValues, now: dt.datetime, stale_before: dt.datetime
) -> int:
    """Append recovery's verdict; ``RunLost`` when refused.

    Fenced to a RUNNING run whose heartbeat is still older than ``stale_before``: a worker that beat
    meanwhile keeps its run.
    """
    conditions = [
        SyncRun.state == SyncRunState.RUNNING,
        or_(SyncRun.heartbeat_time.is_(None), SyncRun.heartbeat_time < stale_before),
    ]
    sequence = _append(session, run_id, values, now, conditions)
    if sequence is None:
        raise RunLost(run_id)
    return sequence


def check_stale(session: Session, run_id: str, stale_before: dt.datetime) -> None:
    """Recovery's fence for a write before its verdict: ``RunLost`` unless the run is still stale."""
    stale = session.scalar(
        select(SyncRun.id).where(
            SyncRun.id == run_id,
            SyncRun.state == SyncRunState.RUNNING,
            or_(SyncRun.heartbeat_time.is_(None), SyncRun.heartbeat_time < stale_before),
        )
    )
    if stale is None:
        raise RunLost(run_id)


def append_event_in_state(
    session: Session, run_id: str, values: EventValues, now: dt.datetime, state: SyncRunState
) -> int:
    """Append an event to a run still in ``state`` (a cancel, a queue failure); ``RunLost`` when not."""
    sequence = _append(session, run_id, values, now, [SyncRun.state == state])
    if sequence is None:
        raise RunLost(run_id)
    return sequence


def _append(
    session: Session, run_id: str, values: EventValues, now: dt.datetime, fence: list[ColumnElement[bool]]
) -> int | None:
    """Append the run's next event (gapless sequence) and mirror it on the run row; None if fenced out.

    One ``UPDATE … WHERE <fence> RETURNING last_sequence`` both checks the fence and takes the next
    sequence number, so two writers can never both pass a fence nor share a sequence. An event that
    ends the run enqueues its webhook event in the same transaction.
    """
    row_values: dict[str, object] = {
        "last_sequence": SyncRun.last_sequence + 1,
        "state": values.state,
        "phase": values.phase,
        "percent": values.percent,
        "heartbeat_time": now,
    }
    if values.state in TERMINAL_STATES:
        row_values["end_time"] = now
        if values.summary_json is not None:
            row_values["summary_json"] = values.summary_json
    if values.error_message is not None:
        row_values["error_message"] = values.error_message
    row = session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id, *fence)
        .values(row_values)
        .returning(SyncRun.last_sequence, SyncRun.district_id, SyncRun.trigger)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        return None
    sequence, district_id, trigger = row
    if values.state in TERMINAL_STATES and trigger != SyncTrigger.PREVIEW:
        _enqueue_webhook(session, run_id, district_id, SyncTrigger(trigger), values, now)
    session.add(
        SyncRunEvent(
            run_id=run_id,
            sequence=sequence,
            time=now,
            state=values.state,
            phase=values.phase,
            percent=values.percent,
            done=values.done,
            total=values.total,
            message=values.message,
            summary_json=values.summary_json,
        )
    )
    session.flush()
    return int(sequence)


def _enqueue_webhook(
    session: Session,
    run_id: str,
    district_id: str,
    trigger: SyncTrigger,
    values: EventValues,
    now: dt.datetime,
) -> None:
    data: dict[str, object] = {
        "run": f"districts/{district_id}/syncRuns/{run_id}",
        "run_id": run_id,
        "state": values.state.value,
        "trigger": trigger.value,
        "message": values.message,
        "error_message": values.error_message or "",
        "summary": json.loads(values.summary_json) if values.summary_json else None,
    }
    outbox.enqueue(session, district_id, WEBHOOK_EVENTS[values.state], data, now=now)


def fail_queued(session: Session, run_id: str, message: str, now: dt.datetime) -> bool:
    """End a QUEUED run FAILED with ``message``; False when it is not QUEUED (any more)."""
    run = get_run(session, run_id)
    if run is None:
        return False
    try:
        append_event_in_state(
            session, run_id, EventValues.failed(run.phase, run.percent, message), now, SyncRunState.QUEUED
        )
    except RunLost:
        return False
    return True


def request_cancel(session: Session, run_id: str) -> bool:
    """Ask a RUNNING run to stop at its next checkpoint; False once its commit has started.

    Conditional on the phase not being COMMITTING: see the module's words on cancellation.
    """
    requested = session.execute(
        update(SyncRun)
        .where(
            SyncRun.id == run_id,
            SyncRun.state == SyncRunState.RUNNING,
            SyncRun.phase.not_in(UNCANCELLABLE_PHASES),
        )
        .values(cancel_requested=True)
        .returning(SyncRun.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    return requested is not None


def cancel_requested(session: Session, run_id: str) -> bool:
    """Whether an administrator asked the run to cancel."""
    return bool(session.scalar(select(SyncRun.cancel_requested).where(SyncRun.id == run_id)))


def set_run_fields(session: Session, run_id: str, worker_id: str | None, **values: object) -> None:
    """Update columns of an active run (fenced to ``worker_id`` when given)."""
    conditions = [SyncRun.id == run_id, SyncRun.state.in_(ACTIVE_STATES)]
    if worker_id is not None:
        conditions.append(SyncRun.worker_id == worker_id)
    updated = session.execute(
        update(SyncRun)
        .where(*conditions)
        .values(values)
        .returning(SyncRun.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if updated is None:
        raise RunLost(run_id)


def events_after(
    session: Session, run_id: str, after_sequence: int, limit: int = 500
) -> Sequence[SyncRunEvent]:
    """The run's events with a greater sequence, in order."""
    return session.scalars(
        select(SyncRunEvent)
        .where(SyncRunEvent.run_id == run_id, SyncRunEvent.sequence > after_sequence)
        .order_by(SyncRunEvent.sequence)
        .limit(limit)
    ).all()


def list_runs(
    session: Session,
    district_id: str,
    *,
    limit: int,
    before: tuple[dt.datetime, str] | None,
) -> Sequence[SyncRun]:
    """The district's runs, newest first, strictly after the keyset ``before`` (create_time, id)."""
    query = select(SyncRun).where(SyncRun.district_id == district_id)
    if before is not None:
        time, run_id = before
        query = query.where(
            or_(
                SyncRun.create_time < time,
                and_(SyncRun.create_time == time, SyncRun.id < run_id),
            )
        )
    return session.scalars(query.order_by(SyncRun.create_time.desc(), SyncRun.id.desc()).limit(limit)).all()


def stale_running_runs(session: Session, heartbeat_before: dt.datetime) -> Sequence[SyncRun]:
    """RUNNING runs whose worker has not beaten since ``heartbeat_before``."""
    return session.scalars(
        select(SyncRun).where(
            SyncRun.state == SyncRunState.RUNNING,
            or_(SyncRun.heartbeat_time.is_(None), SyncRun.heartbeat_time < heartbeat_before),
        )
    ).all()


def queued_runs(session: Session, created_before: dt.datetime) -> Sequence[SyncRun]:
    """QUEUED runs created before ``created_before``."""
    return session.scalars(
        select(SyncRun).where(SyncRun.state == SyncRunState.QUEUED, SyncRun.create_time < created_before)
    ).all()


def pending_abandons(session: Session) -> Sequence[SyncRun]:
    """Ended runs whose change set may still be open: abandoning it failed at the time."""
    return session.scalars(
        select(SyncRun).where(
            SyncRun.abandon_pending.is_(True),
            SyncRun.state.in_(TERMINAL_STATES),
            SyncRun.change_set_name.is_not(None),
        )
    ).all()


def abandon_settled(session: Session, run_id: str) -> None:
    """The run's change set is no longer open: nothing is left to abandon."""
    session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id)
        .values(abandon_pending=False)
        .execution_options(synchronize_session=False)
    )
