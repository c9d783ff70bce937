"""A real roster server on port 0 over a freshly migrated database, for the roster suites."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
from ew.client.roster import RosterClient
from sqlalchemy import Engine, func, select

from services.roster import migrate
from services.roster import repository as repo
from services.roster.db import roster_engine
from services.roster.server import RosterServer, create_server
from services.roster.settings import RosterSettings


class Clock:
    """A clock the test moves forward (change set expiry without waiting)."""

    def __init__(self) -> None:
        self._now = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, delta: dt.timedelta) -> None:
        """Move the clock forward."""
        with self._lock:
            self._now += delta


@dataclass
class Roster:
    """A started server, a client on it, its engine and clock."""

    server: RosterServer
    client: RosterClient
    engine: Engine
    clock: Clock
    address: str

    def snapshot(self) -> dict[str, list[tuple[object, ...]]]:
        """Every roster row (districts, schools, teachers, memberships), to prove nothing changed."""
        tables = {
            "districts": repo.districts,
            "schools": repo.schools,
            "teachers": repo.teachers,
            "teacher_schools": repo.teacher_schools,
        }
        with self.engine.connect() as conn:
            return {
                name: sorted(tuple(row) for row in conn.execute(select(table)))
                for name, table in tables.items()
            }

    def staged_rows(self) -> int:
        """Staged rows of every change set."""
        with self.engine.connect() as conn:
            return sum(
                int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in (repo.staged_schools, repo.staged_teachers, repo.staged_memberships)
            )


@contextmanager
def running_roster(
    database_url: str, *, interceptors: Sequence[grpc.ServerInterceptor] = (), **settings: object
) -> Iterator[Roster]:
    """Migrate ``database_url``, start a roster server on 127.0.0.1:0 and connect a client."""
    engine = roster_engine(database_url)
    migrate.upgrade(engine)
    clock = Clock()
    config = RosterSettings(database_url=database_url, listen_address="127.0.0.1:0", **settings)  # type: ignore[arg-type]
    server = create_server(config, clock=clock, engine=engine, interceptors=interceptors)
    server.server.start()
    address = f"127.0.0.1:{server.port}"
    client = RosterClient(address, timeout=60)
    try:
        yield Roster(server, client, engine, clock, address)
    finally:
        client.close()
        server.stop(None)
