"""Typed OneRoster records, independent of the wire version (1.1 or 1.2)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """OneRoster record status; legacy ``inactive`` reads as ``tobedeleted``."""

    ACTIVE = "active"
    TOBEDELETED = "tobedeleted"


@dataclass(frozen=True, slots=True)
class Org:
    """An org of type school (the only org type a roster pull returns)."""

    sourced_id: str
    name: str
    type: str
    status: Status
    identifier: str | None
    date_last_modified: dt.datetime | None
    parent: str | None


@dataclass(frozen=True, slots=True)
class User:
    """A user as the roster needs it; ``role`` and ``org_sourced_ids`` are derived from ``roles[]`` in 1.2."""

    sourced_id: str
    status: Status
    enabled_user: bool
    given_name: str
    family_name: str
    email: str | None
    role: str
    org_sourced_ids: tuple[str, ...]
    username: str | None
    identifier: str | None
    date_last_modified: dt.datetime | None


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row the client could not turn into a record; reported, never silently dropped.

    ``email`` is the row's email when it has a readable one, even if other fields are broken, so the
    sync can leave alone the EW teacher it names rather than archive them.
    """

    collection: str
    position: int
    sourced_id: str | None
    email: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Roster:
    """A complete pull: every school, teacher and staff account the server lists, plus unreadable rows.

    ``staff`` holds administrators, aides and proctors (never students); ``User.role`` says which.
    Their problems are reported with collection name "staff".
    """

    schools: tuple[Org, ...]
    teachers: tuple[User, ...]
    problems: tuple[RowProblem, ...]
    staff: tuple[User, ...] = ()
