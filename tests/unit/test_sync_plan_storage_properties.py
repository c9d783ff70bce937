"""Any plan survives storage and paging unchanged, and a preview stores the same plan a run does."""

from __future__ import annotations

import datetime as dt
import uuid

from ew.sync.v1 import sync_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from services.sync.api.plan_messages import item_message
from services.sync.api.proto_enums import to_proto
from services.sync.planning.planner import PlanItemData, plan_items
from services.sync.store import plans
from services.sync.store.plan_records import guard_from_json, save_plan, summary_from_json
from services.sync.vocabulary import PlanItemKind, PlanPurpose
from tests.support.planner_strategies import worlds
from tests.support.planner_world import World

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def expected(item: PlanItemData) -> sync_pb2.PlanItem:
    """A planner item as the API must show it, written out field by field."""
    return sync_pb2.PlanItem(
        kind=to_proto(item.kind),
        classlink_id=item.classlink_id,
        ew_id=item.ew_id,
        display_name=item.display_name,
        email=item.email,
        field_changes=[
            sync_pb2.FieldChange(field=c.field, old_value=c.old_value, new_value=c.new_value)
            for c in item.field_changes
        ],
        schools_added=item.schools_added,
        schools_removed=item.schools_removed,
        reason=item.reason,
        skip_reason=to_proto(item.skip_reason) if item.skip_reason else sync_pb2.SKIP_REASON_UNSPECIFIED,
        schools_kept=item.schools_kept,
        warnings=item.warnings,
    )


def stored(
    sessions: sessionmaker[Session], world: World, purpose: PlanPurpose
) -> tuple[str, sync_pb2.SyncSummary, sync_pb2.GuardVerdict]:
    plan = world.plan()
    plan_id = str(uuid.uuid4())
    with sessions.begin() as session:
        row = save_plan(
            session,
            plan,
            plan_id=plan_id,
            district_id="d1",
            purpose=purpose,
            now=NOW,
            read_time=NOW,
            expire_time=NOW + dt.timedelta(hours=1) if purpose is PlanPurpose.PREVIEW else None,
        )
        return plan_id, summary_from_json(row.summary_json), guard_from_json(row.guard_json)


def paged(
    sessions: sessionmaker[Session], plan_id: str, size: int, kind: PlanItemKind | None
) -> list[sync_pb2.PlanItem]:
    read: list[sync_pb2.PlanItem] = []
    after = -1
    while True:
        with sessions() as session:
            page = plans.list_items(session, plan_id, after_position=after, limit=size, kind=kind)
            read += [item_message(item) for item in page]
        if len(page) < size:
            return read
        after = page[-1].position


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(worlds(), st.integers(min_value=1, max_value=6), st.sampled_from([None, *PlanItemKind]))
def test_a_stored_plan_pages_back_exactly_and_preview_and_run_store_the_same(
    sync_sessions: sessionmaker[Session], world: World, size: int, kind: PlanItemKind | None
) -> None:
    plan = world.plan()
    want = [expected(item) for item in plan_items(plan) if kind is None or item.kind is kind]

    preview_id, preview_summary, preview_guard = stored(sync_sessions, world, PlanPurpose.PREVIEW)
    run_id, run_summary, run_guard = stored(sync_sessions, world, PlanPurpose.RUN)

    assert paged(sync_sessions, preview_id, size, kind) == want == paged(sync_sessions, run_id, size, kind)
    assert preview_summary == run_summary and preview_guard == run_guard
    assert list(preview_summary.notes) == list(plan.summary.notes)
    assert preview_summary.teachers_archived == len(plan.archives)
    assert preview_guard.needs_review == plan.guard.needs_review
    assert preview_guard.membership_removal_count == plan.guard.membership_removal_count
