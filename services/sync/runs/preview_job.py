"""A preview job: a run (trigger PREVIEW) that reads and plans exactly like a sync, then stores the plan.

Up to the plan it is ``RunExecution``: the same connection check, ClassLink pull (with its progress,
``Retry-After`` messages and cancel checks), EW read, sync state and planner, so its plan and guard
verdict are the ones a sync started now would apply. Instead of staging, it stores the plan as a
PREVIEW (paged by PreviewSync and ListSyncRunItems until ``EW_SYNC_PREVIEW_TTL`` after it ended) and
ends PREVIEWED in the same transaction. It opens no change set and writes nothing else: no roster
change, no mapping, link or last success, no change journal and no webhook; PREVIEWED is not a
successful sync (AutoSync still waits for one). A cancel before that transaction ends it CANCELLED
(the PREVIEWED event is fenced on the cancel, like the commit).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING

from ew.client.roster import AsyncRosterClient
from sqlalchemy.orm import Session

from services.sync.api.plan_messages import guard_message, summary_message
from services.sync.planning import planner
from services.sync.runs import repository
from services.sync.runs.executor import READING_EW_MESSAGE, RunExecution
from services.sync.runs.progress import ProgressReporter
from services.sync.store import plan_records, plans
from services.sync.store.models import SyncRun
from services.sync.vocabulary import PlanPurpose, SyncPhase, SyncRunState, SyncTrigger

if TYPE_CHECKING:
    from services.sync.app import App

logger = logging.getLogger(__name__)

PREVIEWED_MESSAGE = "Preview ready: nothing was changed. Page it with PreviewSync or ListSyncRunItems."


class PreviewExecution(RunExecution):
    """A claimed preview job: a sync's reads and plan, then the stored plan instead of the writes."""

    async def _apply(
        self,
        roster: AsyncRosterClient,
        source: planner.SourceRoster,
        ew_read: asyncio.Task[planner.EwRoster],
    ) -> None:
        # Two steps of planning the bar shows: the EW read still under way, then the planner.
        self.reporter.enter(SyncPhase.PLANNING, message=READING_EW_MESSAGE)
        ew = await self._wait_for_ew(ew_read)
        plan = await self._plan(source, ew, None)
        items = await self.app.transaction(lambda session: self._store(session, plan))
        self.reporter.announce()
        self.reporter.stop_heartbeat()
        logger.info("preview job %s: plan of %d items stored", self.run.id, items)

    def _store(self, session: Session, plan: planner.Plan) -> int:
        """The plan as a PREVIEW, the run pointing at it, and the PREVIEWED event: all or nothing.

        Returns how many items the plan has.
        """
        now = self.app.clock()
        plan_id = str(uuid.uuid4())
        plans.purge_previews(session, self.district_id, now)
        stored = plan_records.save_plan(
            session,
            plan,
            plan_id=plan_id,
            district_id=self.district_id,
            purpose=PlanPurpose.PREVIEW,
            now=now,
            # The claim set start_time just before ClassLink was read.
            read_time=self.run.start_time or now,
            expire_time=now + self.app.settings.preview_ttl,
        )
        repository.set_run_fields(
            session,
            self.run.id,
            self.reporter.worker_id,
            plan_id=plan_id,
            guard_json=plan_records.to_json(guard_message(plan.guard)),
        )
        self.reporter.terminal_event(
            session,
            SyncRunState.PREVIEWED,
            message=PREVIEWED_MESSAGE,
            summary_json=plan_records.to_json(summary_message(plan.summary)),
        )
        return stored.item_count


def execution_for(app: App, run: SyncRun, reporter: ProgressReporter) -> RunExecution:
    """The execution a claimed run needs: a preview job's, or a sync's."""
    if run.trigger is SyncTrigger.PREVIEW:
        return PreviewExecution(app, run, reporter)
    return RunExecution(app, run, reporter)
