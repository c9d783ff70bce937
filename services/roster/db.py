"""The roster's engine: the shared conventions plus one PostgreSQL setting its lookups need."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

from services.common.db import make_engine


def roster_engine(url: str) -> Engine:
    """An engine for the roster database.

    On PostgreSQL every statement gets a plan for its actual parameters: once psycopg prepares a
    statement, a generic plan compared ``ref = ANY($1)`` with every staged row instead of hashing
    the 1000 values, and a batch's lookup went from 3 ms to 100 ms.
    """
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":

        @event.listens_for(engine, "connect")
        def _custom_plans(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("SET plan_cache_mode = force_custom_plan")
            dbapi_connection.commit()

    return engine
