"""Recovery of runs whose worker died: never "running" forever, never half-recorded.

A RUNNING run whose heartbeat is older than ``run_stale_seconds`` lost its worker (killed, out of
memory, machine gone). Its fate depends on its change set, recorded before the commit:

- committed → the roster has every change; finish the bookkeeping from ``ListChangeSetResults``
  (idempotent) and mark the run SUCCEEDED with the summary its plan stored;
- anything else → abandon the change set if still open and mark the run FAILED; nothing changed.

A run whose roster service stopped answering during the commit (``commit_interrupted``) gets a
verdict naming that cause instead of a dead worker. Ended runs whose abandon failed
(``abandon_pending``) have their change set abandoned on each pass until the roster answers, so it
does not stay open (holding its staged rows) until its TTL.

Every verdict is fenced on the heartbeat still being stale, so a slow worker that beats again
keeps its run, and a worker that lost its run finds its next write refused. QUEUED runs whose
message was lost (a stub broker's queue dies with its process) are sent again at startup; a
duplicate delivery is a no-op claim.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ew.client.errors import FailedPreconditionError, NotFoundError, RosterError
from ew.client.roster import AsyncRosterClient
from ew.roster.v1 import roster_pb2
from sqlalchemy.orm import Session

from services.sync.metrics import count_finished_run
from services.sync.runs import bookkeeping, journal, repository
from services.sync.runs.repository import EventValues, RunLost
from services.sync.setup.audit_trail import prune_audit
from services.sync.store import connections, links, run_changes
from services.sync.store.models import SyncRun
from services.sync.vocabulary import SyncPhase, SyncRunState

if TYPE_CHECKING:
    from services.sync.app import App

logger = logging.getLogger(__name__)

WORKER_DIED = (
    "The sync stopped unexpectedly (its worker died) before its changes were saved; "
    "nothing was changed. Run it again."
)
RECOVERED = "Sync complete (finished by recovery after its worker stopped)"
ROSTER_LOST_NOT_SAVED = (
    "The roster service stopped answering while saving the sync; EW's roster was not changed. "
    "Run the sync again."
)
ROSTER_LOST_SAVED = (
    "Sync complete: the roster service stopped answering while saving the sync, but the changes were saved."
)
CANCELLED = (
    "Cancelled by an administrator; its worker stopped before anything was saved. Nothing was changed."
)
QUEUED_RESEND_FACTOR = 5


def _stale_cutoff(app: App) -> dt.datetime:
    return app.clock() - dt.timedelta(seconds=app.settings.run_stale_seconds)


def _fail(session: Session, run: SyncRun, cutoff: dt.datetime, now: dt.datetime) -> None:
    """FAILED, or CANCELLED when an administrator had cancelled it (it had not committed)."""
    message = ROSTER_LOST_NOT_SAVED if run.commit_interrupted else WORKER_DIED
    values = EventValues.failed(run.phase, run.percent, message)
    if run.cancel_requested:
        values = EventValues(
            state=SyncRunState.CANCELLED, phase=run.phase, percent=run.percent, message=CANCELLED
        )
    repository.append_recovery_event(session, run.id, values, now, cutoff)


def _succeed(
    session: Session, run: SyncRun, outcome: bookkeeping.CommitOutcome, cutoff: dt.datetime, now: dt.datetime
) -> None:
    names = journal.created_school_names(session, run.plan_id) if run.plan_id else {}
    # A journal the worker left half-written cannot be completed (it needs the roster the worker
    # read): a recovered run has none, so a revert never undoes part of a run.
    run_changes.delete_changes(session, run.id)
    bookkeeping.save_school_mappings(
        session, run.district_id, outcome, created_school_names=names, auto_mappings={}, now=now
    )
    connections.record_success(session, run.district_id, now)
    repository.append_recovery_event(
        session,
        run.id,
        EventValues(
            state=SyncRunState.SUCCEEDED,
            phase=SyncPhase.DONE,
            percent=100,
            message=ROSTER_LOST_SAVED if run.commit_interrupted else RECOVERED,
            summary_json=run.summary_json,
        ),
        now,
        cutoff,
    )


async def _record_links(
    app: App, run: SyncRun, outcome: bookkeeping.CommitOutcome, cutoff: dt.datetime
) -> None:
    """Complete the links of a committed run, chunk by chunk, while the run is still stale."""
    current = await app.read(lambda session: links.list_links(session, run.district_id))
    target = bookkeeping.teacher_links(outcome, {}, {})
    writes = links.link_writes(current, run.district_id, target, app.clock())
    await bookkeeping.write_links(
        app, run.district_id, writes, fence=lambda session: repository.check_stale(session, run.id, cutoff)
    )


async def reconcile(app: App, roster: AsyncRosterClient, run: SyncRun, cutoff: dt.datetime) -> None:
    """Settle one stale RUNNING run from its change set's state."""
    if run.change_set_name:
        try:
            change_set = await roster.get_change_set(run.change_set_name)
        except NotFoundError:
            change_set = None
        if change_set is not None and change_set.state == roster_pb2.CHANGE_SET_STATE_COMMITTED:
            outcome = await bookkeeping.read_outcome(roster, run.change_set_name)
            await _record_links(app, run, outcome, cutoff)
            await app.transaction(lambda session: _succeed(session, run, outcome, cutoff, app.clock()))
            await count_finished_run(app, run.id)
            logger.info("run %s: committed before its worker died; bookkeeping finished", run.id)
            return
        if change_set is not None and change_set.state == roster_pb2.CHANGE_SET_STATE_OPEN:
            await roster.abandon_change_set(run.change_set_name, "the sync's worker died")
    await app.transaction(lambda session: _fail(session, run, cutoff, app.clock()))
    await count_finished_run(app, run.id)
    logger.info("run %s: its worker died; marked FAILED", run.id)


async def abandon_pending(app: App, roster: AsyncRosterClient, run: SyncRun) -> None:
    """Abandon the change set an ended run could not abandon; settled once it is not open."""
    assert run.change_set_name is not None
    try:
        await roster.abandon_change_set(run.change_set_name, "the sync failed; its abandon is retried")
        logger.info("run %s: change set %s abandoned by recovery", run.id, run.change_set_name)
    except (NotFoundError, FailedPreconditionError):
        # Gone (purged) or committed: either way it is not open, and a retry cannot change that.
        logger.warning(
            "run %s: change set %s cannot be abandoned", run.id, run.change_set_name, exc_info=True
        )
    await app.transaction(lambda session: repository.abandon_settled(session, run.id))


def _work(
    session: Session, cutoff: dt.datetime, queued_before: dt.datetime
) -> tuple[list[SyncRun], list[SyncRun], list[str]]:
    """Stale RUNNING runs, ended runs with an abandon pending, and the ids of QUEUED runs to re-send."""
    stale = list(repository.stale_running_runs(session, cutoff))
    unabandoned = list(repository.pending_abandons(session))
    queued = [run.id for run in repository.queued_runs(session, queued_before)]
    session.expunge_all()
    return stale, unabandoned, queued


async def recover(app: App, requeue: Callable[[str], None], *, requeue_all_queued: bool = False) -> None:
    """One recovery pass: settle stale runs, retry failed abandons, re-send QUEUED runs that waited.

    A QUEUED run is re-sent once it has waited ``QUEUED_RESEND_FACTOR`` stale timeouts (a lost
    message must not block its district for ever; a duplicate is a no-op claim), and every QUEUED
    run with ``requeue_all_queued``: at the start of a process using the stub broker, whose queue
    died with the previous process.
    """
    cutoff = _stale_cutoff(app)
    now = app.clock()
    queued_before = (
        now
        if requeue_all_queued
        else now - dt.timedelta(seconds=app.settings.run_stale_seconds * QUEUED_RESEND_FACTOR)
    )
    stale, unabandoned, queued = await app.transaction(lambda session: _work(session, cutoff, queued_before))
    if stale or unabandoned:
        roster = app.new_roster_client()
        try:
            for run in stale:
                try:
                    await reconcile(app, roster, run, cutoff)
                except RunLost:
                    logger.info("run %s beat again or was settled elsewhere", run.id)
                except RosterError:
                    # The roster service is needed to learn the commit's outcome; next pass.
                    logger.warning("run %s: could not reach the roster service", run.id, exc_info=True)
            for run in unabandoned:
                try:
                    await abandon_pending(app, roster, run)
                except RosterError:
                    logger.warning("run %s: the abandon failed again; next pass", run.id, exc_info=True)
        finally:
            await roster.close()
    for run_id in queued:
        logger.info("run %s is still queued; sending it again", run_id)
        await asyncio.to_thread(requeue, run_id)


async def recovery_loop(app: App, requeue: Callable[[str], None]) -> None:
    """Recover at every ``recovery_interval_seconds`` until cancelled."""
    while True:
        # A periodic timer, not synchronisation: stale runs appear whenever a worker dies.
        await asyncio.sleep(app.settings.recovery_interval_seconds)
        try:
            await recover(app, requeue)
            await prune_audit(app)
        except Exception:
            logger.exception("sync run recovery pass failed")
