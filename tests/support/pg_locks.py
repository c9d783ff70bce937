"""Deterministic interleavings on PostgreSQL: wait until other transactions are blocked on a lock."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, func, select, text

postgresql_only = pytest.mark.skipif(
    not os.environ.get("EW_TEST_DATABASE_URL"),
    reason="PostgreSQL only: SQLite begins every transaction IMMEDIATE, so two writers cannot interleave",
)


def blocked_on_a_lock(engine: Engine, finished: Callable[[], bool], *, waiting: int = 1) -> bool:
    """True once ``waiting`` transactions in this database wait on a lock; False if ``finished()`` first.

    ``finished`` says the code under test has ended without blocking (a thread set its event, a
    process exited), which ends the wait.
    """
    while not finished():
        with engine.connect() as connection:
            blocked = connection.scalar(
                select(func.count())
                .select_from(text("pg_stat_activity"))
                .where(text("datname = current_database() AND wait_event_type = 'Lock'"))
            )
        if (blocked or 0) >= waiting:
            return True
        time.sleep(0.02)  # polling pace only: the condition above is what the caller waits for
    return False
