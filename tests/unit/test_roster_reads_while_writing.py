"""The product's roster reads never wait for a writer on SQLite: a sync's long commit holds the lock."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from services.common.clock import utc_now
from services.common.db import make_engine
from services.common.pagetokens import RosterPageTokens
from services.roster import migrate
from services.roster.domain import TeacherFilter
from services.roster.usecases import RosterUseCases, Store


def test_lists_and_gets_answer_while_a_commit_holds_the_write_lock(tmp_path: Path) -> None:
    # No busy wait: a read that needed the write lock would fail at once with "database is locked".
    engine = make_engine(
        f"sqlite:///{tmp_path / 'roster.db'}", connect_args={"check_same_thread": False, "timeout": 0}
    )
    migrate.upgrade(engine)
    roster = RosterUseCases(Store(engine, utc_now, RosterPageTokens(b"key")))
    roster.create_district("d1", "District One")
    school = roster.batch_create_schools("d1", ["North High"], None)[0]

    with engine.begin() as writer:
        writer.execute(text("UPDATE districts SET display_name = 'Renamed' WHERE id = 'd1'"))
        assert roster.get_district("d1").display_name == "District One"
        assert roster.get_school("d1", school.school_id).display_name == "North High"
        assert [s.school_id for s in roster.list_schools("d1", 10, "").items] == [school.school_id]
        assert roster.list_teachers("d1", TeacherFilter(), 10, "").items == []
        with roster.export_roster("d1") as export:
            assert [s.school_id for s in export.schools] == [school.school_id]
    assert roster.get_district("d1").display_name == "Renamed"
    engine.dispose()
