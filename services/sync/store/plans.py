"""SQL for stored plans (previews and run plans) and their items. The caller owns the transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict, Unpack, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from services.common.bulk import bulk_insert
from services.sync.store.models import Plan, PlanItem, SyncRun
from services.sync.vocabulary import PlanItemKind, PlanPurpose, SkipReason

BATCH = 1000
ITEMS = cast(Table, PlanItem.__table__)


class PlanHeader(TypedDict):
    """What names and dates a stored plan: the keywords of ``insert_plan_header`` and ``save_plan``."""

    plan_id: str
    district_id: str
    purpose: PlanPurpose
    now: dt.datetime
    read_time: dt.datetime
    expire_time: dt.datetime | None


@dataclass(frozen=True)
class ItemValues:
    """One plan item as stored; its position is its place in the plan's sequence (``insert_items``)."""

    kind: PlanItemKind
    display_name: str
    details_json: str
    classlink_id: str | None = None
    ew_id: str | None = None
    email: str | None = None
    reason: str | None = None
    skip_reason: SkipReason | None = None


def insert_plan_header(
    session: Session, *, summary_json: str, guard_json: str, **header: Unpack[PlanHeader]
) -> Plan:
    """Store a plan without items yet (``item_count`` 0); ``insert_items`` adds them."""
    plan = Plan(
        id=header["plan_id"],
        district_id=header["district_id"],
        purpose=header["purpose"],
        create_time=header["now"],
        read_time=header["read_time"],
        expire_time=header["expire_time"],
        summary_json=summary_json,
        guard_json=guard_json,
        item_count=0,
    )
    session.add(plan)
    session.flush()
    return plan


def insert_items(session: Session, plan_id: str, items: Iterable[ItemValues], *, first_position: int) -> int:
    """Store ``items`` at positions from ``first_position`` on, in bulk batches; returns how many."""
    batch: list[dict[str, object]] = []
    count = 0
    for item in items:
        batch.append(
            {
                "plan_id": plan_id,
                "position": first_position + count,
                "kind": item.kind,
                "classlink_id": item.classlink_id,
                "ew_id": item.ew_id,
                "display_name": item.display_name,
                "email": item.email,
                "details_json": item.details_json,
                "reason": item.reason,
                "skip_reason": item.skip_reason,
            }
        )
        count += 1
        if len(batch) == BATCH:
            bulk_insert(session.connection(), ITEMS, batch)
            batch = []
    bulk_insert(session.connection(), ITEMS, batch)
    return count


def set_item_count(session: Session, plan_id: str, item_count: int) -> None:
    """Record that a plan stored in chunks has all its ``item_count`` items."""
    session.execute(update(Plan).where(Plan.id == plan_id).values(item_count=item_count))


def purge_unreferenced_run_plans(session: Session, district_id: str) -> None:
    """Delete the district's run plans no run points at: journals a worker stopped writing midway.

    A run's plan is written in chunks and the run points at it only in the last one, so such a plan
    is never complete. Call it only while no run of the district is writing its plan.
    """
    referenced = select(SyncRun.id).where(SyncRun.plan_id == Plan.id).exists()
    session.execute(
        delete(Plan)
        .where(Plan.district_id == district_id, Plan.purpose == PlanPurpose.RUN, ~referenced)
        .execution_options(synchronize_session=False)
    )


def get_plan(session: Session, district_id: str, plan_id: str) -> Plan | None:
    """The district's plan with this id (another district's plan reads as missing)."""
    return session.scalar(select(Plan).where(Plan.id == plan_id, Plan.district_id == district_id))


def list_items(
    session: Session,
    plan_id: str,
    *,
    after_position: int,
    limit: int,
    kind: PlanItemKind | None = None,
) -> list[PlanItem]:
    """Up to ``limit`` items after ``after_position`` in plan order, optionally of one kind."""
    query = select(PlanItem).where(PlanItem.plan_id == plan_id, PlanItem.position > after_position)
    if kind is not None:
        query = query.where(PlanItem.kind == kind)
    return list(session.scalars(query.order_by(PlanItem.position).limit(limit)))


def purge_previews(session: Session, district_id: str, now: dt.datetime) -> None:
    """Delete the district's previews that expired (their items go with them).

    A preview job keeps its run (with its summary and guard verdict); only its plan goes.
    """
    expired = select(Plan.id).where(
        Plan.district_id == district_id,
        Plan.purpose == PlanPurpose.PREVIEW,
        Plan.expire_time < now,
    )
    session.execute(
        update(SyncRun)
        .where(SyncRun.district_id == district_id, SyncRun.plan_id.in_(expired))
        .values(plan_id=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(Plan).where(Plan.id.in_(expired)))
