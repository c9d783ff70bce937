"""PreviewSync: the exact plan a sync would apply now, computed by the same planner, stored for paging.

The first call reads ClassLink (the full roster) and EW, plans, and stores the plan as a PREVIEW
(counts, verdict, and one row per change or skip); it changes nothing else. A ``page_token``
continues that same stored plan without reading anything again, so the pages of one preview always
agree. Tokens are signed, bound to the district, the plan and the kind filter; a preview can be paged
for ``EW_SYNC_PREVIEW_TTL`` (one hour by default), after which it is deleted and its tokens are refused.

A big district's ClassLink takes longer to read than any call may last: a preview job
(``services.sync.runs.preview_job``) reads and plans in a worker, and a call naming its run pages the
plan it stored here, the same way, without reading anything.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from dataclasses import dataclass

from ew.client.roster import AsyncRosterClient
from sqlalchemy.orm import Session

from services.common.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, bad_field
from services.common.pagetokens import SyncPageTokens
from services.sync.app import App
from services.sync.oneroster import Roster
from services.sync.oneroster.errors import OneRosterError
from services.sync.planning import planner
from services.sync.planning.ew_roster import read_ew_roster
from services.sync.planning.source_roster import to_source_roster
from services.sync.planning.sync_state import sync_state
from services.sync.runs import repository
from services.sync.setup.oneroster_adapter import (
    SYNC_RETRY,
    oneroster_failure,
    require_connection,
    server_config,
)
from services.sync.store import plans
from services.sync.store.models import Plan, PlanItem
from services.sync.store.plan_records import save_plan
from services.sync.vocabulary import PlanItemKind, PlanPurpose, SyncRunState, SyncTrigger

TOKEN_KIND = "preview"
RESTART_HINT = "the preview may have expired; start the preview again without a page token"
PLANNING_RESERVE_SECONDS = 2.0
NOT_A_PREVIEW_JOB = (
    "names a sync run, not a preview job; page a sync run's items with ListSyncRunItems, "
    "or start a preview job with StartSyncPreview"
)


@dataclass(frozen=True)
class PreviewPage:
    """A stored preview and one page of its items."""

    plan: Plan
    items: list[PlanItem]
    next_page_token: str


class Previews:
    """The preview use case of one sync service."""

    def __init__(self, app: App, page_tokens: SyncPageTokens) -> None:
        self._app = app
        self._tokens = page_tokens

    async def preview(
        self,
        district_id: str,
        roster: AsyncRosterClient,
        page_size: int,
        page_token: str,
        kind: PlanItemKind | None,
        *,
        time_left: float | None = None,
        run_id: str | None = None,
    ) -> PreviewPage:
        """A new preview's first page, or the next page of the preview a token names.

        With ``run_id`` (a preview job of the district), the pages are those of the plan the job
        stored, and nothing is read. ``time_left`` is what remains of the caller's deadline:
        ClassLink's ``Retry-After`` waits must fit in it, so a wait the call cannot outlast fails with
        words saying so.
        """
        if page_token:
            plan_id, after = self._continue(district_id, page_token, kind)

            def continued(session: Session) -> Plan:
                if run_id is not None and self._job_plan_id(session, district_id, run_id) != plan_id:
                    raise bad_field("page_token", "not a page of this preview job; " + RESTART_HINT)
                return self._live_plan(session, district_id, plan_id)

            plan = await self._app.transaction(continued)
        elif run_id is not None:
            job = run_id

            def stored(session: Session) -> Plan:
                plan_id = self._job_plan_id(session, district_id, job)
                return self._live_plan(session, district_id, plan_id, job=job)

            plan = await self._app.transaction(stored)
            after = -1
        else:
            plan = await self._new_plan(district_id, roster, time_left)
            after = -1

        def page(session: Session) -> list[PlanItem]:
            return plans.list_items(session, plan.id, after_position=after, limit=page_size + 1, kind=kind)

        items = await self._app.transaction(page)
        next_token = ""
        if len(items) > page_size:
            items = items[:page_size]
            next_token = self._tokens.encode(
                TOKEN_KIND, district_id, [plan.id, items[-1].position, kind.value if kind else ""]
            )
        return PreviewPage(plan, items, next_token)

    def _continue(self, district_id: str, token: str, kind: PlanItemKind | None) -> tuple[str, int]:
        plan_id, after, token_kind = self._tokens.decode(
            TOKEN_KIND, district_id, token, restart_hint=RESTART_HINT, types=[str, int, str]
        )
        if token_kind != (kind.value if kind else ""):
            raise InvalidArgument.for_fields(
                [FieldViolation("kind", "must be the same as in the call that returned the page token")]
            )
        return plan_id, after

    def _job_plan_id(self, session: Session, district_id: str, run_id: str) -> str:
        """The plan the district's preview job stored; why there is none, in words, otherwise."""
        run = repository.get_district_run(session, district_id, run_id)
        if run is None:
            raise NotFound(f"Sync run {run_id} does not exist.")
        if run.trigger is not SyncTrigger.PREVIEW:
            raise bad_field("sync_run", NOT_A_PREVIEW_JOB)
        if run.state in repository.ACTIVE_STATES:
            raise FailedPrecondition(
                f"Preview job {run_id} is still {run.state.value} ({run.percent} %); follow it with "
                "WatchSyncRun and page it once it is PREVIEWED.",
                reason="PREVIEW_NOT_READY",
            )
        if run.state is not SyncRunState.PREVIEWED:
            raise FailedPrecondition(
                f"Preview job {run_id} ended {run.state.value} without a plan"
                + (f" ({run.error_message})" if run.error_message else "")
                + "; start a new preview.",
                reason="PREVIEW_NOT_READY",
            )
        if run.plan_id is None:
            raise job_expired(run_id)
        return run.plan_id

    def _live_plan(self, session: Session, district_id: str, plan_id: str, *, job: str | None = None) -> Plan:
        """The stored preview, unless it expired: a page token's, or the plan of the preview ``job``."""
        plan = plans.get_plan(session, district_id, plan_id)
        if (
            plan is None
            or plan.purpose is not PlanPurpose.PREVIEW
            or plan.expire_time is None
            or plan.expire_time <= self._app.clock()
        ):
            raise _expired() if job is None else job_expired(job)
        return plan

    async def _new_plan(self, district_id: str, roster: AsyncRosterClient, time_left: float | None) -> Plan:
        connection = await require_connection(self._app, district_id)
        retry = SYNC_RETRY
        if time_left is not None:
            # Leave the call time to plan and answer after the last wait.
            budget = max(0.0, time_left - PLANNING_RESERVE_SECONDS)
            retry = dataclasses.replace(retry, budget_seconds=min(retry.budget_seconds, budget))
        config = server_config(self._app, connection, retry=retry)

        async def pull() -> Roster:
            try:
                async with self._app.oneroster_client(config) as client:
                    return await client.pull_roster()
            except OneRosterError as error:
                raise oneroster_failure(error, connection.server_url) from None

        read_time = self._app.clock()
        source, ew = await asyncio.gather(pull(), read_ew_roster(roster, district_id))
        state = await self._app.transaction(
            lambda session: sync_state(session, district_id, self._app.settings)
        )
        plan = await asyncio.to_thread(planner.plan_sync, to_source_roster(source), ew, state)
        now = self._app.clock()
        plan_id = str(uuid.uuid4())

        def store(session: Session) -> Plan:
            plans.purge_previews(session, district_id, now)
            return save_plan(
                session,
                plan,
                plan_id=plan_id,
                district_id=district_id,
                purpose=PlanPurpose.PREVIEW,
                now=now,
                read_time=read_time,
                expire_time=now + self._app.settings.preview_ttl,
            )

        return await self._app.transaction(store)


def job_expired(run_id: str) -> FailedPrecondition:
    """A PREVIEWED job whose plan outlived ``EW_SYNC_PREVIEW_TTL`` and was deleted."""
    return FailedPrecondition(
        f"Preview job {run_id} expired and its plan was deleted; start a new preview (StartSyncPreview).",
        reason="PREVIEW_EXPIRED",
    )


def _expired() -> InvalidArgument:
    return InvalidArgument.for_fields(
        [FieldViolation("page_token", f"not a page of a live preview; {RESTART_HINT}")]
    )
