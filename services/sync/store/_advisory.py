"""Transaction-scoped advisory locks on PostgreSQL, named by a scope and a name.

SQLite needs none: every transaction begins IMMEDIATE, so writers already run one at a time.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select
from sqlalchemy.orm import Session


def lock(session: Session, scope: str, name: str) -> None:
    """Hold the lock on (``scope``, ``name``) until the transaction ends; waits while another holds it."""
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"{scope}\0{name}".encode()).digest()
    session.execute(select(func.pg_advisory_xact_lock(int.from_bytes(digest[:8], "big", signed=True))))
