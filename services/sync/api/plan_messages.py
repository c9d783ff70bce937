"""A planner ``Plan`` and a stored plan item as ``ew.sync.v1`` messages (the API's view of a plan).

The store keeps summaries and guard verdicts as the protobuf JSON of these messages
(``services.sync.store.plan_records``).
"""

from __future__ import annotations

import json

from ew.sync.v1 import sync_pb2

from services.sync.api.proto_enums import to_proto
from services.sync.planning import planner
from services.sync.store.models import PlanItem


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
