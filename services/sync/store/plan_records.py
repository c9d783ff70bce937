"""Storing a planner ``Plan`` (preview or run journal) and reading its stored summary and verdict.

Summary and guard verdict are stored as the protobuf JSON of ``SyncSummary`` / ``GuardVerdict``
(field names as in the proto), the format run records use too. Each item's ``details_json`` holds
its field changes (old → new), the school names added, removed and kept, and its warnings: enough to
show and undo it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Unpack

from ew.sync.v1 import sync_pb2
from google.protobuf import json_format
from google.protobuf.message import Message
from sqlalchemy.orm import Session

from services.sync.api.plan_messages import guard_message, summary_message
from services.sync.planning import planner
from services.sync.store import plans
from services.sync.store.models import Plan


def to_json(message: Message) -> str:
    """The stored form of a summary or guard verdict."""
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None)


def summary_from_json(text: str) -> sync_pb2.SyncSummary:
    """A stored summary, read as the current proto.

    Fields (and enum values) the current proto no longer has are skipped, so rows written before a
    field was renamed or removed still read; the stored text is never rewritten.
    """
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


def item_values(plan: planner.Plan) -> Iterator[plans.ItemValues]:
    """The plan's display rows as stored, in ``planner.plan_items`` order."""
    for item in planner.plan_items(plan):
        yield _item_values(item)


def save_plan(session: Session, plan: planner.Plan, **header: Unpack[plans.PlanHeader]) -> Plan:
    """Store the plan's counts, verdict and display rows (in ``planner.plan_items`` order)."""
    stored = save_plan_header(session, plan, **header)
    stored.item_count = plans.insert_items(session, stored.id, item_values(plan), first_position=0)
    return stored


def save_plan_header(session: Session, plan: planner.Plan, **header: Unpack[plans.PlanHeader]) -> Plan:
    """Store the plan's counts and verdict; its rows follow with ``plans.insert_items``."""
    return plans.insert_plan_header(
        session,
        summary_json=to_json(summary_message(plan.summary)),
        guard_json=to_json(guard_message(plan.guard)),
        **header,
    )
