"""AutoSync fixtures on a sync database alone: connected districts with schedules, an App on a test clock.

The scheduler's tests need no roster or ClassLink: a tick only reads and writes the sync database
and hands created runs to ``enqueue``, which these tests record instead of sending to a broker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.common.db import make_engine
from services.common.secrets import DEV_SECRET_KEY, SecretBox
from services.sync.app import App, create_app
from services.sync.migrate import upgrade
from services.sync.store import autosync as store
from services.sync.store.models import Connection, SyncRun
from services.sync.vocabulary import AuthMethod, AutoSyncCadence, ConnectMethod, OneRosterVersion
from tests.support.roster import Clock, dev_auth
from tests.support.sync_stack import sync_settings


class WallClock(Clock):
    """The test clock, starting at the real time (runs executing now get sensible timestamps)."""

    def __init__(self) -> None:
        super().__init__()
        self.advance(dt.datetime.now(dt.UTC) - self())


@contextmanager
def scheduler_app(database_url: str, clock: Clock, **settings: Any) -> Iterator[App]:
    """A migrated sync database and an App on it whose time is ``clock``; no server, no embedded scheduler."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    app = create_app(
        sync_settings(database_url, "127.0.0.1:1", scheduler_embedded=False, **settings),
        auth=dev_auth(),
        secrets=SecretBox([DEV_SECRET_KEY]),
        clock=clock,
    )
    try:
        yield app
    finally:
        app.close()


def add_district(
    session: Session,
    district_id: str,
    *,
    server_url: str,
    next_run_time: dt.datetime,
    now: dt.datetime,
    time_zone: str = "America/New_York",
    cadence: AutoSyncCadence = AutoSyncCadence.MONTHLY,
    day: int = 1,
    hour: int = 3,
    pauses: Sequence[tuple[dt.date, dt.date]] = (),
) -> None:
    """A district connected to ``server_url`` with AutoSync on and its next run at ``next_run_time``."""
    session.add(
        Connection(
            district_id=district_id,
            server_url=server_url,
            auth_method=AuthMethod.OAUTH1,
            oneroster_version=OneRosterVersion.V1P1,
            client_id="client",
            secret_ciphertext="not-a-real-token",
            secret_hint="…0000",
            tenant_id=None,
            connect_method=ConnectMethod.MANUAL,
            create_time=now,
            update_time=now,
            last_success_time=now,
        )
    )
    store.save(
        session,
        store.AutoSyncValues(
            district_id=district_id,
            enabled=True,
            cadence=cadence,
            day=day,
            hour=hour,
            time_zone=time_zone,
            pauses=pauses,
            next_run_time=next_run_time,
        ),
        by="test",
        now=now,
    )


def runs_by_district(session: Session) -> dict[str, int]:
    """How many runs each district has."""
    rows = session.execute(select(SyncRun.district_id, func.count()).group_by(SyncRun.district_id))
    return {district: int(count) for district, count in rows}
