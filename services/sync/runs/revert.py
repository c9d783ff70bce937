"""RevertSyncRun: undo a SUCCEEDED run from its change journal, as a run of its own (trigger REVERT).

The revert reads EW and the sync's records, works out the undo (``revert_plan``) and, unless the
caller only previews it, lands it the way every run lands: a REVERT run with progress events, one
change set committed all or nothing (ABORTED by the roster when a row changes between the read and
the commit, and then nothing changed), then the sync's mappings and links put back, the revert's own
journal and the SUCCEEDED event in one sync-database transaction. Rows changed since the run (by a
later run or a person) refuse the whole revert with FAILED_PRECONDITION naming them, unless the
caller asks for a partial revert, which undoes the rest and lists them.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from ew.client.errors import AbortedError, RosterError
from ew.client.roster import AsyncRosterClient
from ew.sync.v1 import sync_pb2
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.errors import Aborted, DomainError, FailedPrecondition, NotFound
from services.sync.app import App
from services.sync.planning.ew_roster import read_ew_roster
from services.sync.runs import change_journal, repository
from services.sync.runs.executor import claim, fail, new_worker_id
from services.sync.runs.progress import ProgressReporter
from services.sync.runs.revert_plan import Conflict, RevertPlan, plan_revert
from services.sync.store import links, mappings, plan_records, run_changes
from services.sync.store.mappings import MappingValues
from services.sync.store.models import SyncRun
from services.sync.vocabulary import ChangeSubject, MappingOrigin, SyncPhase, SyncRunState, SyncTrigger

logger = logging.getLogger(__name__)

BATCH = 1000
SHOWN_CONFLICTS = 5


@dataclass(frozen=True)
class RevertOutcome:
    """The REVERT run (None for a preview) and its plan: what is undone, and what is left as it is."""

    run: SyncRun | None
    plan: RevertPlan


def _conflict_error(run_id: str, conflicts: list[Conflict]) -> FailedPrecondition:
    shown = "; ".join(c.describe() for c in conflicts[:SHOWN_CONFLICTS])
    more = f" and {len(conflicts) - SHOWN_CONFLICTS} more" if len(conflicts) > SHOWN_CONFLICTS else ""
    later = sorted({c.later_run_id for c in conflicts if c.later_run_id})
    return FailedPrecondition(
        f"Run {run_id} cannot be reverted as a whole: {len(conflicts)} row(s) it changed were changed "
        f"again since: {shown}{more}. Revert with partial to undo everything else and leave those as "
        "they are.",
        reason="REVERT_CONFLICT",
        metadata={
            "changed": ",".join(c.subject_id for c in conflicts[:50]),
            "later_runs": ",".join(later[:20]),
        },
    )


def _target(session: Session, district_id: str, run_id: str) -> SyncRun:
    run = repository.get_district_run(session, district_id, run_id)
    if run is None:
        raise NotFound(f"Sync run {run_id} does not exist in this district.")
    if run.state is not SyncRunState.SUCCEEDED:
        raise FailedPrecondition(
            f"Sync run {run_id} is {run.state.value}; only a run that SUCCEEDED changed EW and can be "
            "reverted.",
            reason="RUN_NOT_SUCCEEDED",
        )
    if run.trigger is SyncTrigger.REVERT:
        raise FailedPrecondition(
            f"Sync run {run_id} is itself a revert, and teachers it removed cannot be created again with "
            "their ids; run a sync to bring ClassLink's roster back instead.",
            reason="RUN_IS_A_REVERT",
        )
    reverted_by = repository.revert_of(session, run_id)
    if reverted_by is not None:
        raise FailedPrecondition(
            f"Sync run {run_id} was reverted already by run {reverted_by.id}.", reason="RUN_ALREADY_REVERTED"
        )
    session.expunge(run)
    return run


def _summary(plan: RevertPlan, target_id: str) -> str:
    teachers = [u for u in plan.undos if u.entry.subject is ChangeSubject.TEACHER]
    note = f"Reverted run {target_id}: {len(plan.undos)} change(s) undone."
    if plan.conflicts:
        note += f" {len(plan.conflicts)} row(s) changed since were left as they are."
    return plan_records.to_json(sync_pb2.SyncSummary(teachers_updated=len(teachers), notes=[note]))


class Reverts:
    """The RevertSyncRun use case of one sync service."""

    def __init__(self, app: App) -> None:
        self._app = app

    async def revert(
        self,
        *,
        district_id: str,
        run_id: str,
        requested_by: str,
        roster: AsyncRosterClient,
        validate_only: bool,
        partial: bool,
    ) -> RevertOutcome:
        """Preview or land the revert of one run."""
        target = await self._app.transaction(lambda session: _target(session, district_id, run_id))
        plan = await self._plan(district_id, target, roster)
        if validate_only:
            return RevertOutcome(None, plan)
        if plan.conflicts and not partial:
            raise _conflict_error(run_id, plan.conflicts)
        if not plan.undos:
            raise FailedPrecondition(
                f"Sync run {run_id} left nothing that can be undone now.", reason="NOTHING_TO_REVERT"
            )
        run = await self._land(district_id, target, requested_by, roster, plan)
        return RevertOutcome(run, plan)

    async def _plan(self, district_id: str, target: SyncRun, roster: AsyncRosterClient) -> RevertPlan:
        ew = await read_ew_roster(roster, district_id)

        def read(session: Session) -> RevertPlan:
            journal = run_changes.changes_of_run(session, target.id)
            if not journal:
                raise FailedPrecondition(
                    f"Sync run {target.id} has no change journal (it changed nothing, or it ran before runs "
                    "kept one), so there is nothing to revert.",
                    reason="RUN_HAS_NO_JOURNAL",
                )
            later = run_changes.later_runs(
                session, district_id, sorted({c.subject_id for c in journal}), journal[0].time
            )
            records = change_journal.own_records(session, district_id)
            return plan_revert(journal, ew, records, later, f"Revert of sync run {target.id}")

        return await self._app.transaction(read)

    async def _start(self, district_id: str, target: SyncRun, requested_by: str) -> str:
        new_id = str(uuid.uuid4())

        def insert(session: Session) -> None:
            repository.insert_run(
                session,
                run_id=new_id,
                district_id=district_id,
                trigger=SyncTrigger.REVERT,
                requested_by=requested_by,
                approved_run_id=None,
                now=self._app.clock(),
                message=f"Reverting sync run {target.id}",
            )
            repository.mark_revert(session, new_id, target.id)

        try:
            await self._app.transaction(insert)
        except IntegrityError:
            raise Aborted(
                "A sync of this district is running; revert once it has ended.", reason="RUN_ACTIVE"
            ) from None
        return new_id

    async def _land(
        self,
        district_id: str,
        target: SyncRun,
        requested_by: str,
        roster: AsyncRosterClient,
        plan: RevertPlan,
    ) -> SyncRun:
        run_id = await self._start(district_id, target, requested_by)
        worker_id = new_worker_id()
        claimed = await claim(self._app, run_id, worker_id)
        assert claimed is not None
        reporter = ProgressReporter(
            self._app.sessions, self._app.notifier, run_id, worker_id, now=self._app.clock
        )
        reporter.start_heartbeat()
        try:
            reporter.enter(SyncPhase.PLANNING, total=len(plan.undos))
            await self._commit(roster, district_id, run_id, reporter, plan)
            await self._finish(district_id, run_id, target.id, reporter, plan)
        except DomainError as error:
            await fail(self._app, reporter, error.message)
            raise
        finally:
            reporter.stop_heartbeat()
        return await self._app.transaction(lambda session: _detached(session, run_id))

    async def _commit(
        self,
        roster: AsyncRosterClient,
        district_id: str,
        run_id: str,
        reporter: ProgressReporter,
        plan: RevertPlan,
    ) -> None:
        if not plan.changes:
            return
        reporter.enter(SyncPhase.SYNCING_TEACHERS, total=len(plan.changes))
        try:
            change_set = await roster.create_change_set(district_id)
            await self._app.transaction(
                lambda session: repository.set_run_fields(
                    session, run_id, reporter.worker_id, change_set_name=change_set.name
                )
            )
            for start in range(0, len(plan.changes), BATCH):
                await roster.stage_changes(
                    change_set.name, start // BATCH + 1, plan.changes[start : start + BATCH]
                )
                reporter.advance(min(start + BATCH, len(plan.changes)))
            reporter.enter(SyncPhase.COMMITTING)
            await roster.commit_change_set(change_set.name)
        except AbortedError as error:
            raise Aborted(
                f"EW's roster changed while the revert was saved, so nothing was changed: {error.message} "
                "Try the revert again.",
                reason="ROSTER_CHANGED",
            ) from None
        except RosterError as error:
            raise FailedPrecondition(
                f"The roster refused the revert, so nothing was changed: {error.message}",
                reason="REVERT_REFUSED",
            ) from None

    async def _finish(
        self, district_id: str, run_id: str, target_id: str, reporter: ProgressReporter, plan: RevertPlan
    ) -> None:
        now = self._app.clock()

        def record(session: Session) -> None:
            _put_back_records(session, district_id, plan, now)
            run_changes.insert_changes(session, run_id, district_id, [u.entry for u in plan.undos], now)
            reporter.terminal_event(
                session,
                SyncRunState.SUCCEEDED,
                message=f"Sync run {target_id} reverted",
                summary_json=_summary(plan, target_id),
            )

        await self._app.transaction(record)
        reporter.announce()


def _detached(session: Session, run_id: str) -> SyncRun:
    run = repository.get_run(session, run_id)
    assert run is not None
    session.expunge(run)
    return run


def _put_back_records(session: Session, district_id: str, plan: RevertPlan, now: dt.datetime) -> None:
    """The mappings and links the reverted run wrote, as they were before it."""
    gone = sorted(cl for cl, before in plan.mappings.items() if before is None)
    mappings.delete_mappings(session, district_id, gone)
    restored = [
        MappingValues(cl, before["ew_school_id"], MappingOrigin(before["origin"]), before["classlink_name"])
        for cl, before in plan.mappings.items()
        if before is not None
    ]
    if restored:
        mappings.save_mappings(session, district_id, restored, now)
    links.delete_links(session, district_id, sorted(u for u, before in plan.links.items() if before is None))
    kept = {u: before for u, before in plan.links.items() if before is not None}
    if kept:
        links.save_links(session, district_id, kept, now)
