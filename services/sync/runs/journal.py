"""Run-specific reads of a run's journal: its plan stored as plan items (``plan_records``).

The plan is stored before any roster write, so an administrator reviewing a NEEDS_REVIEW run sees
the archive list, an approval knows exactly which teachers were approved, and recovery can finish
a committed run's bookkeeping.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.sync.store.models import PlanItem, PlanItemKind, SyncRun


def archived_teacher_ids(session: Session, run_id: str) -> frozenset[str]:
    """EW teachers the run's plan archives (what approving that run allows)."""
    plan_id = session.scalar(select(SyncRun.plan_id).where(SyncRun.id == run_id))
    if plan_id is None:
        return frozenset()
    rows = session.scalars(
        select(PlanItem.ew_id).where(
            PlanItem.plan_id == plan_id, PlanItem.kind == PlanItemKind.ARCHIVE_TEACHER
        )
    )
    return frozenset(ew_id for ew_id in rows if ew_id)


def created_school_names(session: Session, plan_id: str) -> dict[str, str]:
    """ClassLink id → name of the schools a plan creates."""
    rows = session.execute(
        select(PlanItem.classlink_id, PlanItem.display_name).where(
            PlanItem.plan_id == plan_id, PlanItem.kind == PlanItemKind.CREATE_SCHOOL
        )
    )
    return {classlink_id: name for classlink_id, name in rows if classlink_id}
