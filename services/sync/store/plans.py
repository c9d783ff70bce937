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
    """What names and dates a stored plan: the keywords of ``insert_plan`` and ``save_plan``."""

    plan_id: str
    district_id: str
    purpose: PlanPurpose
    now: dt.datetime
    read_time: dt.datetime
    expire_time: dt.datetime | None


@dataclass(frozen=True)
class ItemValues:
    """One plan item as stored; its position is its place in the sequence given to ``insert_plan``."""

    kind: PlanItemKind
    display_name: str
    details_json: str
    classlink_id: str | None = None
    ew_id: str | None = None
    email: str | None = None
    reason: str | None = None
    skip_reason: SkipReason | None = None


def insert_plan(
    session: Session,
    *,
    summary_json: str,
    guard_json: str,
    items: Iterable[ItemValues],
    **header: Unpack[PlanHeader],
) -> Plan:
    """Store a plan and its items (positions 0..n-1 in the given order), in bulk batches."""
    plan_id = header["plan_id"]
    plan = Plan(
        id=plan_id,
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
    batch: list[dict[str, object]] = []
    count = 0
    for item in items:
        batch.append(
            {
                "plan_id": plan_id,
                "position": count,
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
    plan.item_count = count
    return plan


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
