"""The sync store's migrations and repositories against a real database (SQLite, or PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services.sync.migrate import drift
from services.sync.store import connections, links, mappings, plans, sign_in
from services.sync.store.models import SyncRun
from services.sync.vocabulary import (
    AuthMethod,
    ConnectMethod,
    MappingOrigin,
    OneRosterVersion,
    PlanItemKind,
    PlanPurpose,
    SyncPhase,
    SyncRunState,
    SyncTrigger,
)

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def test_migrations_create_exactly_the_models(sync_engine: Engine) -> None:
    assert drift(sync_engine) == []


def _connection(client_id: str) -> connections.ConnectionValues:
    return connections.ConnectionValues(
        district_id="d1",
        server_url="https://d1.example.test",
        auth_method=AuthMethod.OAUTH1,
        oneroster_version=OneRosterVersion.V1P1,
        client_id=client_id,
        secret_ciphertext="gAAAA-token",
        secret_hint="…wxyz",
        tenant_id=None,
        connect_method=ConnectMethod.MANUAL,
    )


def test_reconnecting_replaces_the_connection_and_keeps_the_last_success(
    sync_sessions: sessionmaker[Session],
) -> None:
    with sync_sessions.begin() as session:
        connections.save_connection(session, _connection("first"), NOW)
        connections.record_success(session, "d1", NOW)
    later = NOW + dt.timedelta(hours=1)
    with sync_sessions.begin() as session:
        stored = connections.save_connection(session, _connection("second"), later)
        assert (stored.client_id, stored.update_time, stored.last_success_time) == ("second", later, NOW)
    with sync_sessions.begin() as session:
        assert connections.delete_connection(session, "d1")
        assert not connections.delete_connection(session, "d1")
        assert connections.get_connection(session, "d1") is None


def test_a_sign_in_state_is_used_once(sync_sessions: sessionmaker[Session]) -> None:
    with sync_sessions.begin() as session:
        sign_in.add_state(
            session,
            state_hash="h" * 64,
            district_id="d1",
            redirect_uri="https://app.example.test/cb",
            requested_by="admin",
            now=NOW,
            expire_time=NOW + dt.timedelta(minutes=10),
        )
    with sync_sessions.begin() as session:
        assert sign_in.use_state(session, "h" * 64, NOW)
        assert not sign_in.use_state(session, "h" * 64, NOW)
    with sync_sessions.begin() as session:
        sign_in.purge_states(session, NOW + dt.timedelta(minutes=11))
        assert sign_in.get_state(session, "h" * 64) is None


def test_an_ew_school_maps_to_one_classlink_school_only(sync_sessions: sessionmaker[Session]) -> None:
    with sync_sessions.begin() as session:
        mappings.save_mappings(
            session,
            "d1",
            [
                mappings.MappingValues("cl-1", "ew-1", MappingOrigin.AUTO, "Lincoln"),
                mappings.MappingValues("cl-2", None, MappingOrigin.UNMAPPED, "Park"),
                mappings.MappingValues("cl-3", None, MappingOrigin.UNMAPPED, "Oak"),
            ],
            NOW,
        )
    with pytest.raises(IntegrityError), sync_sessions.begin() as session:
        mappings.save_mappings(
            session, "d1", [mappings.MappingValues("cl-2", "ew-1", MappingOrigin.MANUAL, "Park")], NOW
        )
    with sync_sessions.begin() as session:
        mappings.save_mappings(
            session, "d1", [mappings.MappingValues("cl-1", "ew-2", MappingOrigin.MANUAL, "Lincoln HS")], NOW
        )
        stored = {
            m.classlink_school_id: (m.ew_school_id, m.origin) for m in mappings.list_mappings(session, "d1")
        }
        assert stored == {
            "cl-1": ("ew-2", MappingOrigin.MANUAL),
            "cl-2": (None, MappingOrigin.UNMAPPED),
            "cl-3": (None, MappingOrigin.UNMAPPED),
        }
        assert mappings.list_mappings(session, "d2") == []


def test_relinking_an_ew_teacher_moves_the_link(sync_sessions: sessionmaker[Session]) -> None:
    with sync_sessions.begin() as session:
        links.save_links(session, "d1", {"u1": "t1", "u2": "t2"}, NOW)
    with sync_sessions.begin() as session:
        links.save_links(session, "d1", {"u3": "t1"}, NOW)
        assert links.list_links(session, "d1") == {"u2": "t2", "u3": "t1"}


def test_one_person_links_every_sourced_id_and_a_relink_replaces_the_whole_set(
    sync_sessions: sessionmaker[Session],
) -> None:
    with sync_sessions.begin() as session:
        links.save_links(session, "d1", {"row-a": "t1", "row-b": "t1", "u2": "t2"}, NOW)
    with sync_sessions.begin() as session:
        assert links.list_links(session, "d1") == {"row-a": "t1", "row-b": "t1", "u2": "t2"}
        # The person's rows are now row-b and row-c: row-a no longer points at the teacher.
        links.save_links(session, "d1", {"row-b": "t1", "row-c": "t1"}, NOW)
        assert links.list_links(session, "d1") == {"row-b": "t1", "row-c": "t1", "u2": "t2"}


def test_saving_links_swaps_moves_and_keeps_them_in_one_go(sync_sessions: sessionmaker[Session]) -> None:
    with sync_sessions.begin() as session:
        links.save_links(session, "d1", {"u1": "t1", "u2": "t2", "u3": "t3", "u4": "t4"}, NOW)
        links.save_links(session, "d2", {"u1": "t9"}, NOW)
    with sync_sessions.begin() as session:
        # u1 and u2 swap teachers, u3 moves to a new teacher, u5 takes u4's teacher.
        links.save_links(session, "d1", {"u1": "t2", "u2": "t1", "u3": "t7", "u5": "t4"}, NOW)
        assert links.list_links(session, "d1") == {"u1": "t2", "u2": "t1", "u3": "t7", "u5": "t4"}
        assert links.list_links(session, "d2") == {"u1": "t9"}


def _plan_header(plan_id: str, purpose: PlanPurpose) -> plans.PlanHeader:
    return plans.PlanHeader(
        plan_id=plan_id,
        district_id="d1",
        purpose=purpose,
        now=NOW,
        read_time=NOW,
        expire_time=NOW + dt.timedelta(hours=1) if purpose is PlanPurpose.PREVIEW else None,
    )


def test_plan_items_page_by_kind_and_go_with_an_expired_preview(sync_sessions: sessionmaker[Session]) -> None:
    kinds = [PlanItemKind.ADD_TEACHER, PlanItemKind.SKIP, PlanItemKind.ADD_TEACHER, PlanItemKind.SKIP]
    items = [
        plans.ItemValues(kind=kind, display_name=f"row {i}", details_json="{}")
        for i, kind in enumerate(kinds)
    ]
    plan_id = str(uuid.uuid4())
    # Stored in two chunks, as a run stores its journal.
    with sync_sessions.begin() as session:
        plans.insert_plan_header(
            session, summary_json="{}", guard_json="{}", **_plan_header(plan_id, PlanPurpose.PREVIEW)
        )
        assert plans.insert_items(session, plan_id, items[:3], first_position=0) == 3
    with sync_sessions.begin() as session:
        assert plans.insert_items(session, plan_id, items[3:], first_position=3) == 1
        plans.set_item_count(session, plan_id, 4)
    with sync_sessions.begin() as session:
        plan = plans.get_plan(session, "d1", plan_id)
        assert plan is not None and plan.item_count == 4
        assert plans.get_plan(session, "d2", plan_id) is None
        skips = plans.list_items(session, plan_id, after_position=-1, limit=10, kind=PlanItemKind.SKIP)
        assert [item.position for item in skips] == [1, 3]
        assert [i.display_name for i in plans.list_items(session, plan_id, after_position=1, limit=1)] == [
            "row 2"
        ]
    with sync_sessions.begin() as session:
        plans.purge_previews(session, "d1", NOW + dt.timedelta(hours=2))
    with sync_sessions.begin() as session:
        assert plans.get_plan(session, "d1", plan_id) is None
        assert plans.list_items(session, plan_id, after_position=-1, limit=10) == []


def test_a_run_plan_no_run_points_at_is_purged_and_the_others_are_kept(
    sync_sessions: sessionmaker[Session],
) -> None:
    kept, abandoned, preview = (str(uuid.uuid4()) for _ in range(3))
    with sync_sessions.begin() as session:
        for plan_id, purpose in (
            (kept, PlanPurpose.RUN),
            (abandoned, PlanPurpose.RUN),
            (preview, PlanPurpose.PREVIEW),
        ):
            plans.insert_plan_header(
                session, summary_json="{}", guard_json="{}", **_plan_header(plan_id, purpose)
            )
            plans.insert_items(
                session, plan_id, [plans.ItemValues(PlanItemKind.ADD_TEACHER, "row", "{}")], first_position=0
            )
        run = _run(SyncRunState.SUCCEEDED)
        run.plan_id = kept
        session.add(run)
    with sync_sessions.begin() as session:
        plans.purge_unreferenced_run_plans(session, "d1")
    with sync_sessions.begin() as session:
        assert plans.get_plan(session, "d1", kept) is not None
        assert plans.get_plan(session, "d1", preview) is not None
        assert plans.get_plan(session, "d1", abandoned) is None
        assert plans.list_items(session, abandoned, after_position=-1, limit=10) == []


def _run(state: SyncRunState) -> SyncRun:
    return SyncRun(
        id=str(uuid.uuid4()),
        district_id="d1",
        trigger=SyncTrigger.MANUAL,
        state=state,
        phase=SyncPhase.QUEUED,
        percent=0,
        requested_by="admin",
        attempt=0,
        create_time=NOW,
        last_sequence=0,
    )


def test_the_database_allows_one_active_run_per_district(sync_sessions: sessionmaker[Session]) -> None:
    with sync_sessions.begin() as session:
        session.add_all([_run(SyncRunState.SUCCEEDED), _run(SyncRunState.FAILED), _run(SyncRunState.QUEUED)])
    with pytest.raises(IntegrityError), sync_sessions.begin() as session:
        session.add(_run(SyncRunState.RUNNING))
