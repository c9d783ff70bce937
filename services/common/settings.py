"""Checks the services' pydantic settings share: database URLs, listen addresses, durations.

Each raises ``ValueError`` with the message pydantic reports for the variable; a service's settings
call them from its own ``field_validator`` methods.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


def valid_database_url(value: str) -> str:
    """``value`` when it is a SQLite or PostgreSQL SQLAlchemy URL."""
    try:
        backend = make_url(value).get_backend_name()
    except ArgumentError as error:
        raise ValueError(f"not a database URL: {error}") from None
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"only sqlite and postgresql are supported, got {backend!r}")
    return value


def valid_address(value: str) -> str:
    """``value`` when it is ``host:port`` with a port from 0 to 65535."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port, got {value!r}")
    return value


def positive_duration(value: dt.timedelta) -> dt.timedelta:
    """``value`` when it is longer than zero."""
    if value <= dt.timedelta(0):
        raise ValueError("must be positive")
    return value


def migrates_by_default(database_url: str) -> bool:
    """Whether migrations run at startup when not configured: for SQLite URLs only."""
    return make_url(database_url).get_backend_name() == "sqlite"
