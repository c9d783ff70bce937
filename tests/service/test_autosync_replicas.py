"""Three scheduler processes against one database and one broker: 50 due districts get exactly 50 runs.

Each scheduler is a real ``python -m services.sync.scheduler`` process ticking every 0.2 s in small
batches, so their claims interleave; ``FOR UPDATE SKIP LOCKED`` (PostgreSQL under ``make
test-integration``) must hand each district to exactly one of them.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.common.db import make_engine
from services.common.processes import ProcessFailed, base_environment, first_line, process_group
from services.sync.migrate import upgrade
from services.sync.store.models import AutoSyncSettings, SyncRun
from services.sync.vocabulary import SyncTrigger
from tests.support.autosync import add_district, runs_by_district

pytestmark = pytest.mark.timeout(180)

DISTRICTS = 50
SCHEDULERS = 3


def _broker_url() -> str:
    url = os.environ.get("EW_TEST_BROKER_URL")
    if not url:
        pytest.skip("EW_TEST_BROKER_URL is not set (make test-integration sets it)")
    return url


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
                group.start(f"scheduler{n}", "services.sync.scheduler", capture_stdout=True)
                for n in range(SCHEDULERS)
            ]
            for scheduler in schedulers:
                assert "AutoSync scheduler started" in first_line(scheduler)
            deadline = time.monotonic() + 60
            while True:
                with engine.connect() as connection:
                    due = connection.scalar(
                        select(func.count())
                        .select_from(AutoSyncSettings)
                        .where(AutoSyncSettings.next_run_time <= now)
                    )
                if due == 0:
                    break
                if time.monotonic() > deadline or not all(s.running for s in schedulers):
                    raise ProcessFailed("\n".join(s.log_tail() for s in schedulers))
                time.sleep(0.1)
            # Every district is claimed; a few more ticks of all three must not add a run.
            time.sleep(1)
            assert all(s.running for s in schedulers), "\n".join(s.log_tail() for s in schedulers)
        with engine.connect() as connection:
            session = Session(bind=connection)
            assert runs_by_district(session) == {f"d{n:02}": 1 for n in range(DISTRICTS)}
            triggers = set(session.scalars(select(SyncRun.trigger)))
            assert triggers == {SyncTrigger.AUTO}
    finally:
        engine.dispose()
