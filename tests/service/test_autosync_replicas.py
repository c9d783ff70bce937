"""Three scheduler processes against one database and one broker: 50 due districts get exactly 50 runs.

Each scheduler is a real ``python -m services.sync.scheduler --ticks 2`` process claiming in small
batches. On PostgreSQL the test holds the AutoSync table locked until all three are blocked on it,
so their first claims start together and interleave; ``FOR UPDATE SKIP LOCKED`` must hand each
district to exactly one of them. Each scheduler prints what it did when it exits: the runs it
started must add up to 50, and none may have passed over a district (a district a replica found
already taken would show there: ``create_or_attach`` attaches to the other replica's run). Every
run must be QUEUED, so the broker really took it (a refused enqueue ends the run FAILED).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from services.common.db import make_engine
from services.common.processes import Child, base_environment, first_line, process_group
from services.sync.migrate import upgrade
from services.sync.store.models import AutoSyncSettings, SyncRun
from services.sync.vocabulary import SyncRunState, SyncTrigger
from tests.support.autosync import add_district, runs_by_district
from tests.support.pg_locks import blocked_on_a_lock

pytestmark = pytest.mark.timeout(180)

DISTRICTS = 50
SCHEDULERS = 3
TICKS = 2
SUMMARY = re.compile(
    r"AutoSync scheduler stopped: started (\d+) runs, passed over (\d+) districts, (\d+) failed"
)


def _broker_url() -> str:
    url = os.environ.get("EW_TEST_BROKER_URL")
    if not url:
        pytest.skip("EW_TEST_BROKER_URL is not set (make test-integration sets it)")
    return url


@contextmanager
def claims_held(engine: Engine, schedulers: list[Child]) -> Iterator[None]:
    """Hold the AutoSync table until every scheduler waits on it (PostgreSQL), then let them all go."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.begin() as connection:
        connection.execute(text(f"LOCK TABLE {AutoSyncSettings.__tablename__} IN EXCLUSIVE MODE"))
        yield
        exited = [s.name for s in schedulers if not s.running]
        assert blocked_on_a_lock(
            engine, lambda: not all(s.running for s in schedulers), waiting=len(schedulers)
        ), f"a scheduler exited before claiming: {exited}"


def summary(scheduler: Child) -> tuple[int, int, int]:
    """Wait for the scheduler to exit; (started, passed over, failed) from its last line."""
    output, _ = scheduler.process.communicate(timeout=120)
    assert scheduler.process.returncode == 0, scheduler.log_tail()
    found = SUMMARY.search(output.decode())
    assert found, f"{scheduler.name} printed no summary: {output!r}\n{scheduler.log_tail()}"
    started, passed, failed = (int(group) for group in found.groups())
    return started, passed, failed


def test_three_schedulers_start_each_due_district_exactly_once(
    database_url: Callable[[str], str], tmp_path: Path
) -> None:
    broker_url = _broker_url()
    sync_url = database_url("sync")
    engine = make_engine(sync_url)
    upgrade(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as connection:
        session = Session(bind=connection)
        for n in range(DISTRICTS):
            # One server each, so the per-server cap is not what limits them.
            add_district(
                session,
                f"d{n:02}",
                server_url=f"https://d{n}.example",
                next_run_time=now - dt.timedelta(minutes=1),
                now=now,
            )
        session.flush()
    environment = base_environment(
        {
            "EW_SYNC_DATABASE_URL": sync_url,
            "EW_BROKER_URL": broker_url,
            "EW_BROKER_NAMESPACE": f"ew-schedulers-{uuid.uuid4().hex[:12]}",
            "EW_JWT_ALLOW_DEV_KEY": "true",
            "EW_SECRET_ALLOW_DEV_KEY": "true",
            "EW_SYNC_SCHEDULER_INTERVAL": "PT0.2S",
            "EW_SYNC_SCHEDULER_BATCH": "4",
            "EW_SYNC_AUTOSYNC_SPREAD": "PT0S",
        }
    )
    for name in list(environment):
        if name.startswith(("EW_JWT_SECRET", "EW_SECRET_KEYS", "EW_TLS_")):
            del environment[name]
    try:
        with process_group(tmp_path, environment) as group:
            schedulers = [
                group.start(
                    f"scheduler{n}", "services.sync.scheduler", "--ticks", str(TICKS), capture_stdout=True
                )
                for n in range(SCHEDULERS)
            ]
            with claims_held(engine, schedulers):
                for scheduler in schedulers:
                    assert "AutoSync scheduler started" in first_line(scheduler)
            summaries = [summary(scheduler) for scheduler in schedulers]

        assert sum(started for started, _, _ in summaries) == DISTRICTS, summaries
        assert all(passed == 0 and failed == 0 for _, passed, failed in summaries), summaries
        with engine.connect() as connection:
            session = Session(bind=connection)
            assert runs_by_district(session) == {f"d{n:02}": 1 for n in range(DISTRICTS)}
            assert set(session.execute(select(SyncRun.trigger, SyncRun.state))) == {
                (SyncTrigger.AUTO, SyncRunState.QUEUED)
            }
            next_times = session.scalars(select(AutoSyncSettings.next_run_time))
            assert all(time is not None and time > now for time in next_times)
    finally:
        engine.dispose()
