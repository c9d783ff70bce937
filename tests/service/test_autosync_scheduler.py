"""The AutoSync scheduler's ticks with an injected clock: one run per due time, spread, caps, no pile-up.

Each test builds districts in a real sync database (SQLite, or PostgreSQL under ``make
test-integration``), moves the clock and runs ``tick``; the runs it creates are recorded instead of
being sent to a broker, so what the database holds afterwards is the whole story.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import delete, select

from services.sync.app import App
from services.sync.autosync.schedule import spread_offset
from services.sync.autosync.scheduler import REQUESTED_BY, RETRY_AFTER_FAILURE, tick
from services.sync.runs import repository
from services.sync.store.models import AutoSyncSettings, Connection, SyncRun
from services.sync.vocabulary import AutoSyncCadence, SyncRunState, SyncTrigger
from tests.support.autosync import add_district, runs_by_district, scheduler_app
from tests.support.roster import Clock

pytestmark = pytest.mark.timeout(120)

NEW_YORK_03 = dt.datetime(2027, 3, 1, 8, 0, tzinfo=dt.UTC)  # 1 March 2027, 03:00 in New York (EST)
SERVER = "https://district.oneroster.example"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(database_url: Callable[[str], str], clock: Clock) -> Iterator[App]:
    with scheduler_app(database_url("sync"), clock, autosync_spread=dt.timedelta(0)) as running:
        yield running


def at(clock: Clock, when: dt.datetime) -> None:
    clock.advance(when - clock())


def run_tick(app: App) -> list[str]:
    sent: list[str] = []
    asyncio.run(tick(app, sent.append))
    return sent


def settings_of(app: App, district_id: str) -> AutoSyncSettings:
    with app.sessions() as session:
        row = session.get(AutoSyncSettings, district_id)
        assert row is not None
        return row


def test_a_due_district_gets_one_auto_run_and_its_next_run_time_moves_on(app: App, clock: Clock) -> None:
    at(clock, NEW_YORK_03 - dt.timedelta(days=1))
    with app.sessions.begin() as session:
        add_district(session, "d1", server_url=SERVER, next_run_time=NEW_YORK_03, now=clock())

    assert run_tick(app) == []  # not due yet
    at(clock, NEW_YORK_03 + dt.timedelta(minutes=1))
    sent = run_tick(app)

    assert len(sent) == 1
    with app.sessions() as session:
        run = repository.get_run(session, sent[0])
        assert run is not None
        assert (run.district_id, run.trigger, run.state, run.requested_by) == (
            "d1",
            SyncTrigger.AUTO,
            SyncRunState.QUEUED,
            REQUESTED_BY,
        )
    settings = settings_of(app, "d1")
    assert settings.last_auto_run_id == sent[0]
    assert settings.next_run_time == dt.datetime(2027, 4, 1, 7, 0, tzinfo=dt.UTC)  # 03:00 EDT
    assert run_tick(app) == []


def test_downtime_across_three_due_times_gives_one_run(app: App, clock: Clock) -> None:
    at(clock, NEW_YORK_03 - dt.timedelta(days=1))
    with app.sessions.begin() as session:
        add_district(session, "d1", server_url=SERVER, next_run_time=NEW_YORK_03, now=clock())

    at(clock, dt.datetime(2027, 5, 20, tzinfo=dt.UTC))  # 1 March, 1 April and 1 May went by
    assert len(run_tick(app)) == 1
    assert run_tick(app) == []

    with app.sessions() as session:
        assert runs_by_district(session) == {"d1": 1}
    assert settings_of(app, "d1").next_run_time == dt.datetime(2027, 6, 1, 7, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("state", [SyncRunState.QUEUED, SyncRunState.RUNNING, SyncRunState.NEEDS_REVIEW])
def test_a_district_with_an_active_run_or_one_waiting_for_review_is_passed_over(
    app: App, clock: Clock, state: SyncRunState
) -> None:
    at(clock, NEW_YORK_03 - dt.timedelta(days=1))
    with app.sessions.begin() as session:
        add_district(session, "d1", server_url=SERVER, next_run_time=NEW_YORK_03, now=clock())
        repository.insert_run(
            session,
            run_id="00000000-0000-4000-8000-000000000001",
            district_id="d1",
            trigger=SyncTrigger.MANUAL,
            requested_by="admin",
            approved_run_id=None,
            now=clock(),
            message="queued",
        )
        run = repository.get_run(session, "00000000-0000-4000-8000-000000000001")
        assert run is not None
        run.state = state

    at(clock, NEW_YORK_03 + dt.timedelta(minutes=1))
    assert run_tick(app) == []

    with app.sessions() as session:
        assert runs_by_district(session) == {"d1": 1}
        approvals = session.scalars(select(SyncRun).where(SyncRun.approved_run_id.is_not(None))).all()
        assert approvals == []
    settings = settings_of(app, "d1")
    assert settings.next_run_time == dt.datetime(2027, 4, 1, 7, 0, tzinfo=dt.UTC)
    assert settings.last_auto_run_id is None


def test_at_most_n_auto_runs_per_classlink_server_the_rest_stay_due(
    database_url: Callable[[str], str], clock: Clock
) -> None:
    with scheduler_app(
        database_url("sync"),
        clock,
        autosync_spread=dt.timedelta(0),
        autosync_max_runs_per_server=2,
        scheduler_batch=2,
    ) as app:
        at(clock, NEW_YORK_03 - dt.timedelta(days=1))
        with app.sessions.begin() as session:
            for n in range(5):
                add_district(session, f"busy{n}", server_url=SERVER, next_run_time=NEW_YORK_03, now=clock())
            add_district(
                session, "other", server_url="https://other.example", next_run_time=NEW_YORK_03, now=clock()
            )

        at(clock, NEW_YORK_03 + dt.timedelta(minutes=1))
        assert len(run_tick(app)) == 3  # two on the busy server, one on the other

        with app.sessions() as session:
            started = runs_by_district(session)
            assert started.get("other") == 1
            assert sum(count for district, count in started.items() if district.startswith("busy")) == 2
            waiting = session.scalars(
                select(AutoSyncSettings.district_id).where(AutoSyncSettings.next_run_time <= clock())
            ).all()
            assert len(waiting) == 3  # still due, untouched

        assert run_tick(app) == []  # the cap is still full
        with app.sessions.begin() as session:
            for run in session.scalars(select(SyncRun).where(SyncRun.state == SyncRunState.QUEUED)):
                run.state = SyncRunState.SUCCEEDED
        assert len(run_tick(app)) == 2
        assert len(run_tick(app)) == 0
        with app.sessions.begin() as session:
            for run in session.scalars(select(SyncRun).where(SyncRun.state == SyncRunState.QUEUED)):
                run.state = SyncRunState.SUCCEEDED
        assert len(run_tick(app)) == 1
        with app.sessions() as session:
            assert runs_by_district(session) == {
                "busy0": 1,
                "busy1": 1,
                "busy2": 1,
                "busy3": 1,
                "busy4": 1,
                "other": 1,
            }


def test_districts_due_at_the_same_hour_start_spread_over_the_window(
    database_url: Callable[[str], str], clock: Clock
) -> None:
    spread = dt.timedelta(minutes=30)
    with scheduler_app(database_url("sync"), clock, autosync_spread=spread) as app:
        at(clock, NEW_YORK_03 - dt.timedelta(days=1))
        districts = [f"d{n}" for n in range(20)]
        with app.sessions.begin() as session:
            for district in districts:
                due = NEW_YORK_03 + spread_offset(district, spread)
                add_district(
                    session,
                    district,
                    server_url=f"https://{district}.example",
                    next_run_time=due,
                    now=clock(),
                )

        at(clock, NEW_YORK_03 + spread / 2)
        first_half = run_tick(app)
        at(clock, NEW_YORK_03 + spread)
        second_half = run_tick(app)

        assert 0 < len(first_half) < len(districts)
        assert len(first_half) + len(second_half) == len(districts)
        with app.sessions() as session:
            for district in districts:
                row = session.get(AutoSyncSettings, district)
                assert row is not None
                assert row.next_run_time == dt.datetime(2027, 4, 1, 7, tzinfo=dt.UTC) + spread_offset(
                    district, spread
                )


def test_a_pause_window_over_the_next_due_time_moves_the_next_run_past_it(app: App, clock: Clock) -> None:
    at(clock, NEW_YORK_03 - dt.timedelta(days=1))
    pause = (dt.date(2027, 3, 20), dt.date(2027, 4, 10))
    with app.sessions.begin() as session:
        add_district(
            session,
            "d1",
            server_url=SERVER,
            next_run_time=NEW_YORK_03,
            now=clock(),
            cadence=AutoSyncCadence.MONTHLY,
            pauses=[pause],
        )
    at(clock, NEW_YORK_03)
    assert len(run_tick(app)) == 1
    assert settings_of(app, "d1").next_run_time == dt.datetime(2027, 4, 11, 7, tzinfo=dt.UTC)


def test_a_due_district_without_a_connection_gets_no_run_and_its_autosync_turns_off(
    app: App, clock: Clock
) -> None:
    at(clock, NEW_YORK_03 - dt.timedelta(days=1))
    with app.sessions.begin() as session:
        add_district(session, "d1", server_url=SERVER, next_run_time=NEW_YORK_03, now=clock())
        session.execute(delete(Connection).where(Connection.district_id == "d1"))

    at(clock, NEW_YORK_03)
    assert run_tick(app) == []

    settings = settings_of(app, "d1")
    assert not settings.enabled and settings.next_run_time is None
    with app.sessions() as session:
        assert runs_by_district(session) == {}


def test_a_district_that_fails_to_start_is_retried_later_and_does_not_stop_the_others(
    app: App, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    at(clock, NEW_YORK_03 + dt.timedelta(minutes=1))
    with app.sessions.begin() as session:
        # Due first, with a stored time zone that no longer resolves: its start raises.
        add_district(
            session,
            "d0-broken",
            server_url=SERVER,
            next_run_time=NEW_YORK_03 - dt.timedelta(hours=1),
            now=clock(),
            time_zone="Mars/Olympus_Mons",
        )
        for n in range(3):
            add_district(
                session, f"d{n + 1}", server_url=f"{SERVER}/{n}", next_run_time=NEW_YORK_03, now=clock()
            )

    with caplog.at_level(logging.INFO, logger="services.sync.autosync.scheduler"):
        sent = run_tick(app)

    with app.sessions() as session:
        assert runs_by_district(session) == {"d1": 1, "d2": 1, "d3": 1}
    assert len(sent) == 3
    assert settings_of(app, "d0-broken").next_run_time == clock() + RETRY_AFTER_FAILURE
    assert settings_of(app, "d0-broken").enabled
    failure = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(failure) == 1 and "d0-broken" in failure[0] and "ZoneInfoNotFoundError" in failure[0]
    assert "not-a-real-token" not in caplog.text
    # The next tick leaves it alone until its retry time, then tries it again.
    assert run_tick(app) == []
    at(clock, clock() + RETRY_AFTER_FAILURE)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="services.sync.autosync.scheduler"):
        assert run_tick(app) == []
    assert "d0-broken" in caplog.text
