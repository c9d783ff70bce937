"""Storing a planner ``Plan`` (preview or run journal) and reading it back as ``ew.sync.v1`` messages.

Summary and guard verdict are stored as the protobuf JSON of ``SyncSummary`` / ``GuardVerdict``
(field names as in the proto), the format run records use too. Each item's ``details_json`` holds
its field changes (old → new), the school names added, removed and kept, and its warnings: enough to
show and undo it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

from ew.sync.v1 import sync_pb2
from google.protobuf import json_format
from google.protobuf.message import Message
from sqlalchemy.orm import Session

from services.sync import planner
from services.sync.proto_enums import to_proto
from services.sync.store import plans
from services.sync.store.models import Plan, PlanItem
from services.sync.vocabulary import PlanPurpose


def to_json(message: Message) -> str:
    """The stored form of a summary or guard verdict."""
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None)


def summary_message(summary: planner.Summary) -> sync_pb2.SyncSummary:
    """A planner summary as the API shows it."""
    return sync_pb2.SyncSummary(
        schools_created=summary.schools_created,
        teachers_added=summary.teachers_added,
        teachers_updated=summary.teachers_updated,
        teachers_archived=summary.teachers_archived,
        teachers_reactivated=summary.teachers_reactivated,
        teachers_unchanged=summary.teachers_unchanged,
        skipped=[
            sync_pb2.SkipCount(reason=to_proto(reason), count=count) for reason, count in summary.skipped
        ],
        membership_changes=summary.membership_changes,
        notes=summary.notes,
    )


def guard_message(guard: planner.GuardVerdict) -> sync_pb2.GuardVerdict:
    """A planner guard verdict as the API shows it."""
    return sync_pb2.GuardVerdict(
        needs_review=guard.needs_review,
        archive_count=guard.archive_count,
        active_count=guard.active_count,
        threshold=guard.threshold,
        message=guard.message,
        membership_removal_count=guard.membership_removal_count,
    )


def summary_from_json(text: str) -> sync_pb2.SyncSummary:
    """A stored summary. Fields (and enum values) the current proto no longer has are skipped, so rows
    written before a field was renamed or removed still read; the stored text is never rewritten."""
    return json_format.Parse(text, sync_pb2.SyncSummary(), ignore_unknown_fields=True)


def guard_from_json(text: str) -> sync_pb2.GuardVerdict:
    """A stored guard verdict; unknown fields are skipped as in ``summary_from_json``."""
    return json_format.Parse(text, sync_pb2.GuardVerdict(), ignore_unknown_fields=True)


def _item_values(item: planner.PlanItemData) -> plans.ItemValues:
    details = {
        "field_changes": [[c.field, c.old_value, c.new_value] for c in item.field_changes],
        "schools_added": list(item.schools_added),
        "schools_removed": list(item.schools_removed),
        "schools_kept": list(item.schools_kept),
        "warnings": list(item.warnings),
    }
    return plans.ItemValues(
        kind=item.kind,
        display_name=item.display_name,
        details_json=json.dumps(details, separators=(",", ":")),
        classlink_id=item.classlink_id or None,
        ew_id=item.ew_id or None,
        email=item.email or None,
        reason=item.reason or None,
        skip_reason=item.skip_reason,
    )


def _items(plan: planner.Plan) -> Iterator[plans.ItemValues]:
    for item in planner.plan_items(plan):
        yield _item_values(item)


def save_plan(
    session: Session,
    plan: planner.Plan,
    *,
    plan_id: str,
    district_id: str,
    purpose: PlanPurpose,
    now: dt.datetime,
    read_time: dt.datetime,
    expire_time: dt.datetime | None,
) -> Plan:
    """Store the plan's counts, verdict and display rows (in ``planner.plan_items`` order)."""
    return plans.insert_plan(
        session,
        plan_id=plan_id,
        district_id=district_id,
        purpose=purpose,
        now=now,
        read_time=read_time,
        expire_time=expire_time,
        summary_json=to_json(summary_message(plan.summary)),
        guard_json=to_json(guard_message(plan.guard)),
        items=_items(plan),
    )


def item_message(item: PlanItem) -> sync_pb2.PlanItem:
    """A stored plan item as the API shows it."""
    details = json.loads(item.details_json)
    return sync_pb2.PlanItem(
        kind=to_proto(item.kind),
        classlink_id=item.classlink_id or "",
        ew_id=item.ew_id or "",
        display_name=item.display_name,
        email=item.email or "",
        field_changes=[
            sync_pb2.FieldChange(field=field, old_value=old, new_value=new)
            for field, old, new in details.get("field_changes", [])
        ],
        schools_added=details.get("schools_added", []),
        schools_removed=details.get("schools_removed", []),
        schools_kept=details.get("schools_kept", []),
        warnings=details.get("warnings", []),
        reason=item.reason or "",
        skip_reason=(
            to_proto(item.skip_reason) if item.skip_reason is not None else sync_pb2.SKIP_REASON_UNSPECIFIED
        ),
    )
