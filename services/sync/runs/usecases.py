"""Run use cases behind the run RPCs: start or attach, cancel, watch, get, list (no gRPC here).

``Runs`` is built once with the App, like every use-case class of the service. Database work is
synchronous SQLAlchemy, so it goes through ``App.transaction`` (a thread per transaction); the
serving loop never blocks on the database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.errors import (
    Aborted,
    FailedPrecondition,
    NotFound,
    Unavailable,
    bad_field,
)
from services.common.pagetokens import SyncPageTokens
from services.sync.app import App
from services.sync.runs import repository
from services.sync.runs.progress import phase_messages
from services.sync.runs.repository import TERMINAL_STATES, UNCANCELLABLE_PHASES, EventValues, RunLost
from services.sync.runs.tasks import enqueue_run
from services.sync.setup.preview import job_expired
from services.sync.store import plans
from services.sync.store.models import Connection, PlanItem, SyncRun, SyncRunEvent
from services.sync.vocabulary import PlanItemKind, SyncPhase, SyncRunState, SyncTrigger

logger = logging.getLogger(__name__)

WATCH_SAFETY_TIMEOUT_SECONDS = 5.0
"""A watcher re-reads the store at least this often, even if a wake-up got lost."""

RUNS_TOKEN_KIND = "syncRuns"
RUNS_RESTART_HINT = "omit page_token to list from the newest run"
ITEMS_TOKEN_KIND = "syncRunItems"
ITEMS_RESTART_HINT = "omit page_token to list from the first item"

CANCELLED_BEFORE_START = "Cancelled by an administrator before it started; nothing was changed."
CANCELLED_IN_REVIEW = "Cancelled by an administrator while waiting for review; nothing was changed."
TOO_LATE_TO_CANCEL = (
    "Sync run {run_id}: too late to cancel; the sync is saving its changes, all in one step. "
    "Watch it to see how it ends."
)
CHANGED_WHILE_CANCELLING = "Sync run {run_id} changed while cancelling; try again."

QUEUE_UNAVAILABLE = (
    "The sync could not be queued because the job queue is unavailable; nothing was changed. "
    "Try again in a minute."
)


@dataclass(frozen=True)
class StartedRun:
    """The run a SyncRosters call streams, and whether it was already running."""

    run: SyncRun
    attached: bool


def _read(session: Session, run_id: str) -> SyncRun:
    run = repository.get_run(session, run_id)
    if run is None:
        raise NotFound(f"Sync run {run_id} does not exist.")
    session.expunge(run)
    return run


def _check_approval(session: Session, district_id: str, approve_run_id: str) -> None:
    # Locked: a concurrent cancel of the reviewed run waits for this approval, or this for it.
    reviewed = repository.lock_district_run(session, district_id, approve_run_id)
    if reviewed is None:
        raise NotFound(
            f"Sync run {approve_run_id} does not exist in this district; "
            "approve_run must name a run of this district that needs review."
        )
    if reviewed.state is not SyncRunState.NEEDS_REVIEW:
        raise FailedPrecondition(
            f"Sync run {approve_run_id} is {reviewed.state.value}, not waiting for review; "
            "only a run that stopped in NEEDS_REVIEW can be approved.",
            reason="RUN_NOT_IN_REVIEW",
        )
    approval = repository.approval_of(session, approve_run_id)
    if approval is not None and approval.state not in (SyncRunState.QUEUED, SyncRunState.RUNNING):
        raise FailedPrecondition(
            f"Sync run {approve_run_id} was approved already (run {approval.id} is "
            f"{approval.state.value}); start a new sync to review the district again.",
            reason="RUN_ALREADY_APPROVED",
        )


def create_or_attach(
    session: Session,
    *,
    district_id: str,
    requested_by: str,
    approve_run_id: str | None,
    trigger: SyncTrigger,
    now: dt.datetime,
) -> StartedRun:
    """The one way a run starts: create the district's QUEUED run, or find its active one.

    Every trigger goes through here (an administrator's sync or approval, Force Sync Now, the
    AutoSync scheduler, a preview job); the caller queues a created run with ``queue`` once this
    transaction commits. A preview job (trigger PREVIEW) attaches only to the district's active
    preview job, and a sync only to its active sync: the two never wait for each other.
    """
    if session.get(Connection, district_id) is None:
        raise FailedPrecondition(
            "ClassLink is not connected for this district; connect it before syncing.",
            reason="NOT_CONNECTED",
        )
    if approve_run_id is not None:
        _check_approval(session, district_id, approve_run_id)
    find_active = repository.active_preview if trigger is SyncTrigger.PREVIEW else repository.active_run
    active = find_active(session, district_id)
    if active is None:
        run_id = str(uuid.uuid4())
        try:
            with session.begin_nested():
                repository.insert_run(
                    session,
                    run_id=run_id,
                    district_id=district_id,
                    trigger=SyncTrigger.APPROVAL if approve_run_id else trigger,
                    requested_by=requested_by,
                    approved_run_id=approve_run_id,
                    now=now,
                    message=phase_messages(trigger)[SyncPhase.QUEUED],
                )
        except IntegrityError:
            # Another request created the district's run between our read and insert.
            active = find_active(session, district_id)
            if active is None:
                raise
        else:
            return StartedRun(run=_detached(session, run_id), attached=False)
    if approve_run_id is not None and active.approved_run_id != approve_run_id:
        raise Aborted(
            f"A sync of this district is already running (run {active.id}); "
            "approve the reviewed run again once it has ended.",
            reason="RUN_ACTIVE",
        )
    return StartedRun(run=_detached(session, active.id), attached=True)


def _detached(session: Session, run_id: str) -> SyncRun:
    run = repository.get_run(session, run_id)
    assert run is not None
    session.flush()
    session.refresh(run)
    session.expunge(run)
    return run


def _changed_while_cancelling(run_id: str) -> Aborted:
    return Aborted(CHANGED_WHILE_CANCELLING.format(run_id=run_id), reason="RUN_CHANGED")


def _cancel_waiting(session: Session, run: SyncRun, now: dt.datetime) -> None:
    """End a QUEUED or NEEDS_REVIEW run CANCELLED."""
    if run.state is SyncRunState.NEEDS_REVIEW:
        approval = repository.approval_of(session, run.id)
        if approval is not None and approval.state in (SyncRunState.QUEUED, SyncRunState.RUNNING):
            raise FailedPrecondition(
                f"Sync run {run.id} was approved and run {approval.id} is applying it; "
                f"cancel run {approval.id} instead.",
                reason="RUN_APPROVAL_ACTIVE",
            )
        if approval is not None:
            raise FailedPrecondition(
                f"Sync run {run.id} was approved already (run {approval.id} is {approval.state.value}); "
                "there is nothing left to cancel.",
                reason="RUN_ALREADY_APPROVED",
            )
    message = CANCELLED_BEFORE_START if run.state is SyncRunState.QUEUED else CANCELLED_IN_REVIEW
    try:
        repository.append_event_in_state(
            session,
            run.id,
            EventValues(state=SyncRunState.CANCELLED, phase=run.phase, percent=run.percent, message=message),
            now,
            run.state,
        )
    except RunLost:
        raise _changed_while_cancelling(run.id) from None


def _cancel(session: Session, district_id: str, run_id: str, now: dt.datetime) -> None:
    """Cancel the run, or say why it cannot be cancelled.

    A QUEUED or NEEDS_REVIEW run ends CANCELLED now; a RUNNING run before its commit is asked to
    stop (its worker ends it CANCELLED at the next checkpoint). The run's row is locked first, so
    nothing changes it between this read and the write (and a concurrent approval of a reviewed run
    is either seen and refused here, or refused itself). The writes stay fenced on the state read;
    should one still be refused, the caller gets ABORTED.
    """
    run = repository.lock_district_run(session, district_id, run_id)
    if run is None:
        raise NotFound(f"Sync run {run_id} does not exist.")
    if run.state in (SyncRunState.QUEUED, SyncRunState.NEEDS_REVIEW):
        _cancel_waiting(session, run, now)
        return
    if run.state is SyncRunState.RUNNING:
        if run.phase in UNCANCELLABLE_PHASES:
            raise FailedPrecondition(TOO_LATE_TO_CANCEL.format(run_id=run_id), reason="RUN_COMMITTING")
        if not repository.request_cancel(session, run_id):
            raise _changed_while_cancelling(run_id)
        return
    raise FailedPrecondition(
        f"Sync run {run_id} has already ended ({run.state.value}); only a queued, running or "
        "review-waiting run can be cancelled.",
        reason="RUN_ENDED",
    )


def _events(session: Session, run_id: str, after: int) -> tuple[Sequence[SyncRunEvent], SyncRunState, int]:
    run = repository.get_run(session, run_id)
    if run is None:
        raise NotFound(f"Sync run {run_id} does not exist.")
    events = repository.events_after(session, run_id, after)
    session.expunge_all()
    return events, run.state, run.last_sequence


def _list(
    session: Session,
    district_id: str,
    limit: int,
    before: tuple[dt.datetime, str] | None,
) -> Sequence[SyncRun]:
    runs = repository.list_runs(session, district_id, limit=limit, before=before)
    session.expunge_all()
    return runs


def _items(
    session: Session,
    district_id: str,
    run_id: str,
    kind: PlanItemKind | None,
    after_position: int,
    limit: int,
    now: dt.datetime,
) -> Sequence[PlanItem]:
    run = repository.get_district_run(session, district_id, run_id)
    if run is None:
        raise NotFound(f"Sync run {run_id} does not exist.")
    if run.trigger is SyncTrigger.PREVIEW and run.state is SyncRunState.PREVIEWED:
        # A preview job's plan is paged until it expires, like any preview.
        plan = plans.get_plan(session, district_id, run.plan_id) if run.plan_id else None
        if plan is None or plan.expire_time is None or plan.expire_time <= now:
            raise job_expired(run_id)
    if run.plan_id is None:
        return []
    page = plans.list_items(session, run.plan_id, after_position=after_position, limit=limit, kind=kind)
    session.expunge_all()
    return page


async def queue(app: App, run_id: str, enqueue: Callable[[str], None]) -> None:
    """Send a created run to the workers; when the queue refuses it, the run ends FAILED (UNAVAILABLE)."""
    try:
        await asyncio.to_thread(enqueue, run_id)
    except Exception as error:
        logger.exception("could not queue sync run %s", run_id)
        if await app.transaction(
            lambda session: repository.fail_queued(session, run_id, QUEUE_UNAVAILABLE, app.clock())
        ):
            app.notifier.notify(run_id)
        raise Unavailable(QUEUE_UNAVAILABLE) from error


class Runs:
    """The run use cases of one sync service: start or attach, cancel, watch, get and list."""

    def __init__(
        self, app: App, tokens: SyncPageTokens, *, enqueue: Callable[[str], None] = enqueue_run
    ) -> None:
        self._app = app
        self._tokens = tokens
        self._enqueue = enqueue

    async def start(
        self,
        *,
        district_id: str,
        requested_by: str,
        approve_run_id: str | None,
        trigger: SyncTrigger = SyncTrigger.MANUAL,
    ) -> StartedRun:
        """Create the district's run and queue it, or attach to the run it already has."""
        started = await self._app.transaction(
            lambda session: create_or_attach(
                session,
                district_id=district_id,
                requested_by=requested_by,
                approve_run_id=approve_run_id,
                trigger=trigger,
                now=self._app.clock(),
            )
        )
        if not started.attached:
            await queue(self._app, started.run.id, self._enqueue)
        return started

    async def cancel(self, district_id: str, run_id: str) -> SyncRun:
        """Cancel the district's run (see ``_cancel``) and return it as it now is."""
        await self._app.transaction(lambda session: _cancel(session, district_id, run_id, self._app.clock()))
        self._app.notifier.notify(run_id)
        return await self._app.read(lambda session: _read(session, run_id))

    async def watch(
        self, run_id: str, after_sequence: int, *, safety_timeout: float = WATCH_SAFETY_TIMEOUT_SECONDS
    ) -> AsyncIterator[SyncRunEvent]:
        """The run's events after ``after_sequence``: persisted ones, then live ones until it ends.

        Subscribes before reading, so an event persisted between a read and the wait still wakes it.
        """
        async with self._app.notifier.subscribe(run_id) as subscription:
            last = after_sequence
            while True:
                events, state, last_sequence = await self._app.read(
                    functools.partial(_events, run_id=run_id, after=last)
                )
                for event in events:
                    yield event
                    last = event.sequence
                    if event.state in TERMINAL_STATES:
                        return
                if not events and state in TERMINAL_STATES and last >= last_sequence:
                    return
                if len(events) < 500:
                    await subscription.wait(safety_timeout)

    async def get(self, district_id: str, run_id: str) -> SyncRun:
        """The district's run, or NOT_FOUND (also for another district's run)."""
        run = await self._app.read(lambda session: _read(session, run_id))
        if run.district_id != district_id:
            raise NotFound(f"Sync run {run_id} does not exist.")
        return run

    async def list(
        self, district_id: str, *, page_size: int, page_token: str
    ) -> tuple[Sequence[SyncRun], str]:
        """One page of the district's runs, newest first, and the next page's token ("" at the end)."""
        before: tuple[dt.datetime, str] | None = None
        if page_token:
            time, run_id = self._tokens.decode(
                RUNS_TOKEN_KIND, district_id, page_token, restart_hint=RUNS_RESTART_HINT, types=[str, str]
            )
            try:
                before = (dt.datetime.fromisoformat(time), run_id)
            except (TypeError, ValueError):
                raise bad_field("page_token", f"not a page token of this list; {RUNS_RESTART_HINT}") from None
        runs = await self._app.read(lambda session: _list(session, district_id, page_size + 1, before))
        if len(runs) <= page_size:
            return runs, ""
        page = runs[:page_size]
        last = page[-1]
        return page, self._tokens.encode(
            RUNS_TOKEN_KIND, district_id, [last.create_time.isoformat(), last.id]
        )

    async def list_items(
        self,
        district_id: str,
        run_id: str,
        *,
        kind: PlanItemKind | None,
        page_size: int,
        page_token: str,
    ) -> tuple[Sequence[PlanItem], str]:
        """One page of the run's journal (changes and skips), in plan order; "" token at the end."""
        token_scope = [run_id, kind.value if kind else ""]
        after = -1
        if page_token:
            value = self._tokens.decode(
                ITEMS_TOKEN_KIND,
                district_id,
                page_token,
                restart_hint=ITEMS_RESTART_HINT,
                types=[str, str, int],
            )
            if value[:2] != token_scope:
                raise bad_field(
                    "page_token",
                    "not a page token of this run and kind; " + ITEMS_RESTART_HINT,
                )
            after = value[2]
        now = self._app.clock()
        page = await self._app.read(
            lambda session: _items(session, district_id, run_id, kind, after, page_size + 1, now)
        )
        if len(page) <= page_size:
            return page, ""
        page = page[:page_size]
        return page, self._tokens.encode(ITEMS_TOKEN_KIND, district_id, [*token_scope, page[-1].position])
