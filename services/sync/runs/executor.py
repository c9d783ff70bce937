"""One sync run, end to end, in the worker that claimed it.

connecting → reading schools → reading teachers (both advance page by page; EW's roster is
exported meanwhile, one snapshot in one stream) → planning → (guard: NEEDS_REVIEW stops here,
before any roster write) → one change set: create schools, upsert/reactivate teachers, archive →
record the change set's name → commit → bookkeeping (mappings, then links and the change journal
in short chunked transactions) → one small transaction: run SUCCEEDED with its summary, the
connection's last success, the final event.

All or nothing: every failure before the commit abandons the change set and marks the run FAILED
with a message an administrator can act on; EW is unchanged. A cancelled run (``RunCancelled``,
raised at the reporter's next checkpoint: any progress write before the commit, or, while ClassLink
is being read, the heartbeat's) abandons its change set the same way and ends CANCELLED. An abandon
the roster service did not answer is recorded on the run (``abandon_pending``) and retried by
recovery. A commit refused because EW's roster changed meanwhile (at staging or commit) is re-planned
once against the fresh roster. When a commit's outcome cannot be learned, or its
bookkeeping cannot be written, the run is left RUNNING with its change set recorded, and recovery
settles it from the change set's state once the heartbeat has gone stale; when the roster service
stopped answering, the run says so meanwhile and is marked ``commit_interrupted`` so recovery's
verdict names the cause. The plan (the run's journal) is written while the batches are staged, and
always before the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ew.client.errors import (
    AbortedError,
    DeadlineExceededError,
    FailedPreconditionError,
    NotFoundError,
    RosterError,
    UnavailableError,
)
from ew.client.roster import AsyncRosterClient
from ew.roster.v1 import roster_pb2
from sqlalchemy.orm import Session

from services.common.errors import DomainError
from services.common.logs import log_context
from services.sync.api.plan_messages import guard_message, summary_message
from services.sync.metrics import count_finished_run
from services.sync.oneroster import Roster, ServerConfig
from services.sync.oneroster.errors import OneRosterError, wait_seconds
from services.sync.planning import ew_roster, planner, source_roster
from services.sync.planning.sync_state import sync_state
from services.sync.runs import bookkeeping, change_journal, journal, repository
from services.sync.runs.progress import ProgressReporter
from services.sync.runs.repository import RunCancelled, RunLost
from services.sync.setup.oneroster_adapter import oneroster_failure, server_config
from services.sync.store import connections, links, plan_records, plans, run_changes
from services.sync.store.models import SyncRun
from services.sync.vocabulary import PlanPurpose, SyncPhase, SyncRunState

if TYPE_CHECKING:
    from services.sync.app import App

logger = logging.getLogger(__name__)
Item = TypeVar("Item")

BATCH_SIZE = 1000
STAGE_CONCURRENCY = 4
MAX_PLAN_ATTEMPTS = 2
PULL_CHECK_SECONDS = 0.25
"""How often a ClassLink pull in flight looks whether the heartbeat found its run cancelled."""

ROSTER_CHANGED = "EW's roster changed while syncing; run the sync again."
ROSTER_UNAVAILABLE = (
    "EW's roster service could not be reached; nothing was changed. Run the sync again in a few minutes."
)
NOT_CONNECTED = (
    "ClassLink is no longer connected for this district; nothing was changed. "
    "Connect ClassLink again, then run the sync."
)
INTERNAL_FAILURE = (
    "The sync failed unexpectedly; nothing was changed. "
    "Run it again, and contact support if it keeps failing."
)
COMMIT_REFUSED = (
    "EW's roster service refused the changes ({reason}); nothing was changed. Run the sync again."
)
ROSTER_STOPPED_ANSWERING = (
    "The roster service stopped answering while saving the sync; "
    "whether the changes were saved is settled once it answers again."
)
SUCCEEDED_MESSAGE = "Sync complete"
RECORDING_MESSAGE = "Saved in EW; recording what changed"
READING_EW_MESSAGE = "Reading Education Walkthrough's teachers and schools"
CANCELLED_MESSAGE = "Cancelled by an administrator before anything was saved; nothing was changed."
REVIEW_MESSAGE = "Stopped before archiving: {guard} Nothing was changed."


class RunFailed(Exception):
    """The run cannot go on; ``message`` tells the administrator what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _RosterChanged(Exception):
    """The roster refused the change set because EW changed after it was read."""


class CommitUnknown(Exception):
    """The change set may have committed, but the run could not record it; recovery settles it."""


class _ReadCount:
    """The latest count of a read running in the background, passed on once someone follows it."""

    def __init__(self) -> None:
        self.done = 0
        self.total = 0
        self._follower: Callable[[int, int], None] | None = None

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        if self._follower is not None:
            self._follower(done, total)

    def follow(self, follower: Callable[[int, int], None]) -> None:
        """Pass every count from now on, starting with the latest, to ``follower``."""
        self._follower = follower
        follower(self.done, self.total)


def new_worker_id() -> str:
    """A token naming this execution (host, process, random), used to fence its writes."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _summary_json(plan: planner.Plan) -> str:
    return plan_records.to_json(summary_message(plan.summary))


def _school_ref(ref: planner.SchoolRef) -> roster_pb2.SchoolRef:
    if ref.school_id:
        return roster_pb2.SchoolRef(school_id=ref.school_id)
    return roster_pb2.SchoolRef(school_ref=ref.create_ref)


def _upsert(upsert: planner.TeacherUpsert, *, reactivate: bool = False) -> roster_pb2.Change:
    return roster_pb2.Change(
        upsert_teacher=roster_pb2.UpsertTeacherChange(
            ref=upsert.classlink_id,
            teacher_id=upsert.ew_teacher_id or "",
            given_name=upsert.given_name,
            family_name=upsert.family_name,
            email=upsert.email,
            schools=[_school_ref(ref) for ref in upsert.schools],
            reactivate=reactivate,
        )
    )


def _create_school(create: planner.SchoolCreate) -> roster_pb2.Change:
    return roster_pb2.Change(
        create_school=roster_pb2.CreateSchoolChange(ref=create.classlink_id, display_name=create.name)
    )


def _teacher_change(item: tuple[planner.TeacherUpsert, bool]) -> roster_pb2.Change:
    upsert, reactivate = item
    return _upsert(upsert, reactivate=reactivate)


def _archive(archive: planner.TeacherArchive) -> roster_pb2.Change:
    return roster_pb2.Change(
        archive_teacher=roster_pb2.ArchiveTeacherChange(
            teacher_id=archive.ew_teacher_id, reason=archive.reason
        )
    )


@dataclass(frozen=True)
class _StagePhase(Generic[Item]):
    """One phase of the change set: the plan's items and how one becomes a change.

    Changes are built a batch at a time, when the batch is sent: the protobuf messages of a whole
    100,000-teacher change set never sit in memory at once.
    """

    phase: SyncPhase
    items: Sequence[Item]
    change: Callable[[Item], roster_pb2.Change]

    def batches(self) -> Iterator[Sequence[Item]]:
        """The items in batches of ``BATCH_SIZE``, in plan order."""
        for start in range(0, len(self.items), BATCH_SIZE):
            yield self.items[start : start + BATCH_SIZE]


def _stage_phases(plan: planner.Plan) -> tuple[_StagePhase[Any], ...]:
    """Schools first, since teachers name the schools staged before them."""
    teachers = [(upsert, False) for upsert in (*plan.adds, *plan.updates)]
    # A returning teacher may also have changed: one upsert reactivates and updates them.
    teachers += [(upsert, True) for upsert in plan.reactivations]
    return (
        _StagePhase(SyncPhase.CREATING_SCHOOLS, plan.school_creates, _create_school),
        _StagePhase(SyncPhase.SYNCING_TEACHERS, teachers, _teacher_change),
        _StagePhase(SyncPhase.ARCHIVING, plan.archives, _archive),
    )


class _PageCounter:
    """Moves the reading phases page by page: rows read of the collection's ``X-Total-Count``.

    Without a total the end is unknown, so the phase is shown one page short of done: it still
    advances with every page and reaches its end only when the read does.
    """

    COUNTED = {"schools": SyncPhase.READING_SCHOOLS, "teachers": SyncPhase.READING_TEACHERS}

    def __init__(self, reporter: ProgressReporter) -> None:
        self._reporter = reporter
        self._read: dict[str, int] = {}

    def read(self, collection: str, rows: int, total: int | None) -> None:
        """The client's ``on_page``: count the page if it belongs to the phase being read."""
        if collection not in self.COUNTED:
            return
        done = self._read.get(collection, 0) + rows
        self._read[collection] = done
        if self._reporter.phase is self.COUNTED[collection]:
            self._reporter.advance(done, total if total is not None else done + max(rows, 1))


class RunExecution:
    """Executes one claimed run; ``run`` and ``reporter`` belong to this worker."""

    def __init__(self, app: App, run: SyncRun, reporter: ProgressReporter) -> None:
        self.app = app
        self.run = run
        self.reporter = reporter
        self.district_id = run.district_id
        self._ew_count = _ReadCount()

    async def execute(self) -> None:
        """Run every phase; raises RunFailed, RunLost or CommitUnknown when it cannot finish."""
        self.reporter.enter(SyncPhase.CONNECTING)
        connection = await self.app.transaction(
            lambda session: connections.get_connection(session, self.district_id)
        )
        if connection is None:
            raise RunFailed(NOT_CONNECTED)
        config = server_config(self.app, connection)
        roster = self.app.new_roster_client()
        try:
            # EW's side is read while ClassLink is pulled: both wait on other servers.
            ew_read = self._start_ew_read(roster)
            try:
                pulled = await self._pull(config)
                # Turning ClassLink's rows into the planner's input is planning's first step.
                self.reporter.enter(SyncPhase.PLANNING)
                source = source_roster.to_source_roster(pulled)
            except BaseException:
                ew_read.cancel()
                with contextlib.suppress(BaseException):
                    await ew_read
                raise
            await self._apply(roster, source, ew_read)
        except DomainError as error:
            # ew_roster's words for a roster service that cannot serve the district.
            raise RunFailed(f"{error.message} Nothing was changed.") from error
        finally:
            await roster.close()

    async def _pull(self, config: ServerConfig) -> Roster:
        """``_read_classlink``, abandoned as soon as the heartbeat finds the run cancelled (or lost).

        A long pull writes no progress between its phases, so without this a cancel would wait for
        the whole pull; the heartbeat reads the cancel within a second and this sees it within
        ``PULL_CHECK_SECONDS`` more. The abandoned HTTP requests are cancelled with the task.
        """
        pulling = asyncio.create_task(self._read_classlink(config))
        try:
            while not pulling.done():
                await asyncio.wait({pulling}, timeout=PULL_CHECK_SECONDS)
                if not pulling.done():
                    self.reporter.check()
        finally:
            if not pulling.done():
                pulling.cancel()
                with contextlib.suppress(BaseException):
                    await pulling
        return pulling.result()

    async def _read_classlink(self, config: ServerConfig) -> Roster:
        """The complete roster, or RunFailed: an incomplete pull never reaches the planner.

        Staff accounts are read alongside the teachers; a ``Retry-After`` wait shows as the message.
        """

        def waiting(seconds: float) -> None:
            self.reporter.tell(f"ClassLink asked us to wait {wait_seconds(seconds)} s")

        pages = _PageCounter(self.reporter)
        try:
            async with self.app.oneroster_client(config, on_wait=waiting, on_page=pages.read) as client:
                self.reporter.enter(SyncPhase.READING_SCHOOLS)
                schools = await client.list_schools()
                self.reporter.enter(SyncPhase.READING_TEACHERS)
                teachers, staff = await client.list_teachers_and_staff()
        except OneRosterError as error:
            message = oneroster_failure(error, config.server_url).message
            raise RunFailed(f"{message} Nothing was changed and nobody was archived.") from error
        self.reporter.advance(len(teachers.records), len(teachers.records))
        return Roster(
            schools=schools.records,
            teachers=teachers.records,
            staff=staff.records,
            problems=schools.problems + teachers.problems + staff.problems,
        )

    async def _apply(
        self,
        roster: AsyncRosterClient,
        source: planner.SourceRoster,
        ew_read: asyncio.Task[planner.EwRoster],
    ) -> None:
        approved = await self._approval()
        for attempt in range(MAX_PLAN_ATTEMPTS):
            if attempt:
                # The first attempt entered planning before ClassLink's rows were converted.
                self.reporter.enter(SyncPhase.PLANNING)
            # A re-plan reads EW again: the first commit failed because EW changed.
            ew = await self._wait_for_ew(ew_read if attempt == 0 else self._start_ew_read(roster))
            plan = await self._plan(source, ew, approved)
            if plan.guard.needs_review:
                await self._store_plan(plan)
                await self._finish_review(plan)
                return
            # The journal is written while the batches travel; it must be stored before the commit.
            stored = asyncio.ensure_future(self._store_plan(plan))
            try:
                outcome = await self._land(roster, plan, attempt, stored)
            except _RosterChanged:
                if attempt + 1 < MAX_PLAN_ATTEMPTS:
                    logger.info("run %s: EW changed during the sync; planning again", self.run.id)
                    continue
                raise RunFailed(ROSTER_CHANGED) from None
            try:
                await self._finish_success(plan, source, ew, outcome)
            except RunLost:
                raise
            except Exception as error:
                # EW has the changes: the run must not claim otherwise. Recovery, which finds the
                # change set committed, writes the bookkeeping once the heartbeat has gone stale.
                logger.exception("run %s: committed, but its bookkeeping failed", self.run.id)
                raise CommitUnknown(self.run.id) from error
            return

    def _start_ew_read(self, roster: AsyncRosterClient) -> asyncio.Task[planner.EwRoster]:
        """Read EW's roster in the background, counting the teachers that arrived."""
        self._ew_count = _ReadCount()
        return asyncio.create_task(ew_roster.read_ew_roster(roster, self.district_id, self._ew_count))

    async def _wait_for_ew(self, ew_read: asyncio.Task[planner.EwRoster]) -> planner.EwRoster:
        """EW's roster; while it still arrives the bar counts its teachers through half of planning."""
        if not ew_read.done():
            self.reporter.count_from_here(message=READING_EW_MESSAGE, share=0.5)
            self._ew_count.follow(self.reporter.note)
        return await ew_read

    async def _approval(self) -> planner.Approval | None:
        approved_run_id = self.run.approved_run_id
        if approved_run_id is None:
            return None
        return await self.app.transaction(lambda session: journal.approval(session, approved_run_id))

    async def _plan(
        self,
        source: planner.SourceRoster,
        ew: planner.EwRoster,
        approved: planner.Approval | None,
    ) -> planner.Plan:
        state = await self.app.transaction(
            lambda session: sync_state(session, self.district_id, self.app.settings, approved)
        )
        self.reporter.count_from_here(message=self.reporter.phase_message(SyncPhase.PLANNING))
        plan = planner.plan_sync(source, ew, state, self.reporter.note)
        self.reporter.advance(1, 1)
        return plan

    async def _store_plan(self, plan: planner.Plan) -> None:
        """Persist the plan as the run's journal: before review stops, and before the commit (recovery).

        Its rows go in chunks, each a short transaction fenced to this worker, so SQLite's single
        writer is never held for seconds while progress events wait. The run points at the plan only
        in the last transaction: a plan a run points at is complete, and one a stopped worker left
        unfinished is purged by the district's next run.
        """
        plan_id = str(uuid.uuid4())
        now = self.app.clock()

        def header(session: Session) -> None:
            self._fence(session)
            plans.purge_unreferenced_run_plans(session, self.district_id)
            plan_records.save_plan_header(
                session,
                plan,
                plan_id=plan_id,
                district_id=self.district_id,
                purpose=PlanPurpose.RUN,
                now=now,
                read_time=now,
                expire_time=None,
            )

        await self.app.transaction(header)
        stored = await bookkeeping.write_in_chunks(
            self.app,
            plan_records.item_values(plan),
            lambda session, chunk, first: plans.insert_items(session, plan_id, chunk, first_position=first),
            fence=self._fence,
        )

        def point_the_run_at_it(session: Session) -> None:
            plans.set_item_count(session, plan_id, stored)
            repository.set_run_fields(
                session,
                self.run.id,
                self.reporter.worker_id,
                plan_id=plan_id,
                summary_json=_summary_json(plan),
                guard_json=plan_records.to_json(guard_message(plan.guard)),
            )

        await self.app.transaction(point_the_run_at_it)

    async def _land(
        self,
        roster: AsyncRosterClient,
        plan: planner.Plan,
        attempt: int,
        stored: asyncio.Future[None],
    ) -> bookkeeping.CommitOutcome:
        """Stage and commit the plan's change set; ``stored`` is the journal being written."""
        try:
            return await self._stage_and_commit(roster, plan, attempt, stored)
        finally:
            # Never leave the journal's thread behind, whatever happened to the change set; its own
            # error (if any) was raised by ``await stored`` or is superseded by the one in flight.
            await asyncio.wait([stored])
            if not stored.cancelled():
                stored.exception()

    async def _stage_and_commit(
        self,
        roster: AsyncRosterClient,
        plan: planner.Plan,
        attempt: int,
        stored: asyncio.Future[None],
    ) -> bookkeeping.CommitOutcome:
        if not plan.has_changes:
            await stored
            # The bookkeeping is this run's save: past here, cancelling is too late.
            self.reporter.enter(SyncPhase.COMMITTING)
            return bookkeeping.CommitOutcome()
        request_id = str(uuid.uuid5(uuid.UUID(self.run.id), f"attempt-{attempt}"))
        try:
            change_set = await roster.create_change_set(self.district_id, request_id=request_id)
        except (UnavailableError, DeadlineExceededError) as error:
            raise RunFailed(ROSTER_UNAVAILABLE) from error
        name = change_set.name
        await self._record_change_set(name)
        try:
            await self._stage(roster, name, plan)
            await stored
            self.reporter.enter(SyncPhase.COMMITTING)
            self.reporter.check()
        except BaseException:
            await self._abandon(roster, name, "the sync stopped before committing")
            raise
        return await self._commit(roster, name)

    async def _record_change_set(self, name: str) -> None:
        await self.app.transaction(
            lambda session: repository.set_run_fields(
                session, self.run.id, self.reporter.worker_id, change_set_name=name
            )
        )

    async def _stage(self, roster: AsyncRosterClient, name: str, plan: planner.Plan) -> None:
        """Stage every batch, phase by phase."""
        numbers = itertools.count(1)
        for phase in _stage_phases(plan):
            self.reporter.enter(phase.phase, total=len(phase.items))
            batches = [(next(numbers), batch) for batch in phase.batches()]
            await self._stage_phase(roster, name, batches, phase.change)

    async def _stage_phase(
        self,
        roster: AsyncRosterClient,
        name: str,
        batches: Sequence[tuple[int, Sequence[Item]]],
        change: Callable[[Item], roster_pb2.Change],
    ) -> None:
        """A few batches in flight at once: the roster validates one while the next travels."""
        in_flight = asyncio.Semaphore(STAGE_CONCURRENCY)
        done = 0

        async def stage(number: int, batch: Sequence[Item]) -> None:
            nonlocal done
            async with in_flight:
                try:
                    await roster.stage_changes(name, number, [change(item) for item in batch])
                except (AbortedError, FailedPreconditionError, NotFoundError) as error:
                    logger.info("run %s: staging refused: %s", self.run.id, error.message)
                    raise _RosterChanged() from error
                except (UnavailableError, DeadlineExceededError) as error:
                    raise RunFailed(ROSTER_UNAVAILABLE) from error
            done += len(batch)
            self.reporter.advance(done)

        try:
            async with asyncio.TaskGroup() as group:
                for number, batch in batches:
                    group.create_task(stage(number, batch))
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None

    async def _abandon(self, roster: AsyncRosterClient, name: str, reason: str) -> None:
        try:
            await roster.abandon_change_set(name, reason)
        except RosterError:
            # Nothing it staged can land without a commit, but an open change set holds the
            # roster's staged rows until its TTL: recovery retries the abandon.
            logger.warning("run %s: could not abandon %s; recovery retries", self.run.id, name, exc_info=True)
            with contextlib.suppress(RunLost):
                # A run recovery already settled had its change set abandoned by recovery.
                await self.app.transaction(
                    lambda session: repository.set_run_fields(
                        session, self.run.id, self.reporter.worker_id, abandon_pending=True
                    )
                )

    async def _commit(self, roster: AsyncRosterClient, name: str) -> bookkeeping.CommitOutcome:
        started = time.perf_counter()
        try:
            await roster.commit_change_set(name, timeout=self.app.settings.roster_deadline * 20)
            logger.info("run %s: committed %s in %.1f s", self.run.id, name, time.perf_counter() - started)
        except AbortedError as error:
            logger.info("run %s: commit refused: %s", self.run.id, error.message)
            raise _RosterChanged() from error
        except RosterError as error:
            # Any other failure may have happened after the commit itself: ask before telling the
            # administrator that nothing changed.
            state = await self._change_set_state(roster, name)
            if state is None:
                await self._roster_stopped_answering()
                raise CommitUnknown(name) from error
            if state != roster_pb2.CHANGE_SET_STATE_COMMITTED:
                await self._abandon(roster, name, "the commit failed")
                if isinstance(error, UnavailableError | DeadlineExceededError):
                    raise RunFailed(ROSTER_UNAVAILABLE) from error
                raise RunFailed(COMMIT_REFUSED.format(reason=error.message)) from error
        # Saved: the bar moves on from here while the results are read back and recorded.
        self.reporter.count_from_here(message=RECORDING_MESSAGE)
        try:
            return await bookkeeping.read_outcome(roster, name)
        except RosterError as error:
            await self._roster_stopped_answering()
            raise CommitUnknown(name) from error

    async def _roster_stopped_answering(self) -> None:
        """Leave the run to recovery, saying why: the roster service is gone mid-commit.

        The heartbeat stops first, so the run goes stale and recovery settles it from the change
        set's state once the roster answers again; the event tells watchers what they wait for.
        """
        self.reporter.stop_heartbeat()
        await self.app.transaction(
            lambda session: repository.set_run_fields(
                session, self.run.id, self.reporter.worker_id, commit_interrupted=True
            )
        )
        self.reporter.enter(SyncPhase.COMMITTING, message=ROSTER_STOPPED_ANSWERING)

    async def _change_set_state(
        self, roster: AsyncRosterClient, name: str
    ) -> roster_pb2.ChangeSetState.ValueType | None:
        for delay in (0.5, 1.0, 2.0, 4.0):
            try:
                return (await roster.get_change_set(name)).state
            except RosterError:
                # Back-off between attempts to learn the outcome, not synchronisation.
                await asyncio.sleep(delay)
        return None

    async def _finish_review(self, plan: planner.Plan) -> None:
        self.reporter.stop_heartbeat()
        await self.app.transaction(
            lambda session: self.reporter.terminal_event(
                session,
                SyncRunState.NEEDS_REVIEW,
                message=REVIEW_MESSAGE.format(guard=plan.guard.message),
                summary_json=_summary_json(plan),
            )
        )
        self.reporter.announce()

    def _fence(self, session: Session) -> None:
        """Refuse a bookkeeping chunk (``RunLost``) once this worker lost the run; else it beat now."""
        repository.set_run_fields(
            session, self.run.id, self.reporter.worker_id, heartbeat_time=self.app.clock()
        )

    async def _finish_success(
        self,
        plan: planner.Plan,
        source: planner.SourceRoster,
        ew: planner.EwRoster,
        outcome: bookkeeping.CommitOutcome,
    ) -> None:
        # The heartbeat goes on while the bookkeeping is written (it is fenced: once the run is
        # SUCCEEDED its next beat is refused), so a long bookkeeping never looks like a dead worker.
        # Links and journal go in short chunked transactions, each fenced to this worker, so SQLite's
        # write lock is never held for long; the run succeeds in one last small transaction. A
        # worker that stops midway leaves the run to recovery, which completes the links and drops
        # the partial journal.
        started = time.perf_counter()
        names = {school.sourced_id: school.name for school in source.schools}
        now = self.app.clock()
        records_before = await self.app.read(
            lambda session: change_journal.own_records(session, self.district_id)
        )
        target = bookkeeping.teacher_links(
            outcome,
            dict(plan.new_links),
            {
                upsert.classlink_id: upsert.classlink_ids
                for upsert in (*plan.adds, *plan.updates, *plan.reactivations)
                if len(upsert.classlink_ids) > 1
            },
        )
        writes = links.link_writes(records_before.links, self.district_id, target, now)
        applied = change_journal.applied_entries(plan, ew, outcome)
        # Every link written is journaled once: the journal's size is known up to a few mappings.
        total = len(writes) + len(applied) + len(writes)
        # The rows from here on are counted: they move the bar through what is left of it.
        self.reporter.count_from_here(total)

        def mappings(session: Session) -> None:
            self._fence(session)
            bookkeeping.save_school_mappings(
                session,
                self.district_id,
                outcome,
                created_school_names={c.classlink_id: c.name for c in plan.school_creates},
                auto_mappings={
                    classlink_id: (school_id, names.get(classlink_id, ""))
                    for classlink_id, school_id in plan.new_auto_mappings
                },
                now=now,
            )

        await self.app.transaction(mappings)
        await bookkeeping.write_links(
            self.app,
            self.district_id,
            writes,
            fence=self._fence,
            on_rows=lambda done: self.reporter.advance(done, total),
        )
        records_after = await self.app.read(
            lambda session: change_journal.own_records(session, self.district_id)
        )
        entries = applied + change_journal.record_entries(records_before, records_after)
        total = len(writes) + len(entries)
        await bookkeeping.write_in_chunks(
            self.app,
            entries,
            lambda session, chunk, first: run_changes.insert_changes(
                session, self.run.id, self.district_id, chunk, now, first_position=first
            ),
            fence=self._fence,
            on_rows=lambda done: self.reporter.advance(len(writes) + done, total),
        )

        def succeed(session: Session) -> None:
            connections.record_success(session, self.district_id, now)
            self.reporter.terminal_event(
                session,
                SyncRunState.SUCCEEDED,
                message=SUCCEEDED_MESSAGE,
                summary_json=_summary_json(plan),
            )

        await self.app.transaction(succeed)
        self.reporter.announce()
        self.reporter.stop_heartbeat()
        logger.info("run %s: bookkeeping written in %.1f s", self.run.id, time.perf_counter() - started)


async def claim(app: App, run_id: str, worker_id: str) -> SyncRun | None:
    """Take a QUEUED run for this worker; None when someone else has it (duplicate delivery)."""

    def take(session: Session) -> SyncRun | None:
        if not repository.claim(session, run_id, worker_id, app.clock()):
            return None
        run = repository.get_run(session, run_id)
        assert run is not None
        session.refresh(run)
        return run

    return await app.transaction(take)


async def fail(app: App, reporter: ProgressReporter, message: str) -> None:
    """Mark the run FAILED with ``message`` (fenced: a run recovery settled stays as it is)."""
    reporter.stop_heartbeat()
    await app.transaction(
        lambda session: reporter.terminal_event(
            session, SyncRunState.FAILED, message=message, summary_json=None, error_message=message
        )
    )
    reporter.announce()


ExecutionFactory = Callable[["App", SyncRun, ProgressReporter], RunExecution]
"""Builds the execution of a claimed run (``services.sync.runs.preview_job.execution_for`` tells
preview jobs from syncs)."""


async def execute_run(app: App, run_id: str, execution: ExecutionFactory = RunExecution) -> None:
    """Claim and execute one run; every outcome ends in a terminal state or with recovery.

    Every log line the run writes (in this task, the tasks and threads it starts) carries its
    ``run_id`` and ``district``.
    """
    with log_context(run_id=run_id):
        worker_id = new_worker_id()
        run = await claim(app, run_id, worker_id)
        if run is None:
            logger.info("run %s is not queued any more; nothing to do", run_id)
            return
        with log_context(district=run.district_id):
            await _execute_claimed(app, run, worker_id, execution)


async def _execute_claimed(app: App, run: SyncRun, worker_id: str, execution: ExecutionFactory) -> None:
    run_id = run.id
    reporter = ProgressReporter(
        app.sessions, app.notifier, run_id, worker_id, trigger=run.trigger, now=app.clock
    )
    reporter.start_heartbeat()
    try:
        await execution(app, run, reporter).execute()
    except RunFailed as failure:
        logger.info("run %s failed: %s", run_id, failure.message)
        await _fail_quietly(app, reporter, failure.message)
    except RunCancelled:
        logger.info("run %s was cancelled; its change set was abandoned", run_id)
        await _end_cancelled(app, reporter)
    except RunLost:
        logger.warning("run %s was settled by recovery while this worker ran it", run_id)
    except CommitUnknown:
        logger.warning("run %s: commit outcome unknown; recovery will settle it", run_id)
    except Exception:
        logger.exception("run %s failed unexpectedly", run_id)
        await _fail_quietly(app, reporter, INTERNAL_FAILURE)
    finally:
        reporter.stop_heartbeat()
    await count_finished_run(app, run_id)


async def _end_cancelled(app: App, reporter: ProgressReporter) -> None:
    """End a cancelled run CANCELLED (fenced: a run recovery settled stays as it is)."""
    reporter.stop_heartbeat()
    try:
        await app.transaction(
            lambda session: reporter.terminal_event(
                session, SyncRunState.CANCELLED, message=CANCELLED_MESSAGE, summary_json=None
            )
        )
    except RunLost:
        logger.warning("run %s was settled elsewhere before it could be cancelled", reporter.run_id)
        return
    reporter.announce()


async def _fail_quietly(app: App, reporter: ProgressReporter, message: str) -> None:
    try:
        await fail(app, reporter, message)
    except RunLost:
        logger.warning("run %s was settled elsewhere before it could be failed", reporter.run_id)
