"""Run-specific reads of a run's journal: its plan stored as plan items (``plan_records``).

The plan is stored before any roster write, so an administrator reviewing a NEEDS_REVIEW run sees
the archive list, an approval knows exactly which archives and membership removals were approved,
and recovery can finish a committed run's bookkeeping.
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.sync.planning.planner import Approval
from services.sync.store.models import PlanItem, SyncRun
from services.sync.vocabulary import PlanItemKind


def approval(session: Session, run_id: str) -> Approval:
    """What approving the run allows: the teachers its plan archives and those it strips of a school."""
    plan_id = session.scalar(select(SyncRun.plan_id).where(SyncRun.id == run_id))
    if plan_id is None:
        return Approval()
    rows = session.execute(
        select(PlanItem.kind, PlanItem.ew_id, PlanItem.details_json).where(
            PlanItem.plan_id == plan_id,
            PlanItem.kind.in_((PlanItemKind.ARCHIVE_TEACHER, PlanItemKind.UPDATE_TEACHER)),
        )
    )
    archives: set[str] = set()
    removals: set[str] = set()
    for kind, ew_id, details_json in rows:
        if not ew_id:
            continue
        if kind is PlanItemKind.ARCHIVE_TEACHER:
            archives.add(ew_id)
        elif json.loads(details_json).get("schools_removed"):
            removals.add(ew_id)
    return Approval(frozenset(archives), frozenset(removals))


def created_school_names(session: Session, plan_id: str) -> dict[str, str]:
    """ClassLink id → name of the schools a plan creates."""
    rows = session.execute(
        select(PlanItem.classlink_id, PlanItem.display_name).where(
            PlanItem.plan_id == plan_id, PlanItem.kind == PlanItemKind.CREATE_SCHOOL
        )
    )
    return {classlink_id: name for classlink_id, name in rows if classlink_id}
