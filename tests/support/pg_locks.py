"""Deterministic interleavings on PostgreSQL: wait until another transaction is blocked on a lock."""

from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

postgresql_only = pytest.mark.skipif(
    not os.environ.get("EW_TEST_DATABASE_URL"),
    reason="PostgreSQL only: SQLite begins every transaction IMMEDIATE, so two writers cannot interleave",
)


def blocked_on_a_lock(sessions: sessionmaker[Session], done: threading.Event) -> bool:
    """True once a transaction in this database waits on a lock; False if ``done`` is set first.

    ``done`` is set by the thread under test when it finishes: one that never blocks ends the wait.
    """
    while not done.wait(0.02):
        with sessions() as session:
            waiting = session.scalar(
                select(func.count())
                .select_from(text("pg_stat_activity"))
                .where(text("datname = current_database() AND wait_event_type = 'Lock'"))
            )
        if waiting:
            return True
    return False
