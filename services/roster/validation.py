"""Request checks shared by the use cases: ids, names, emails, sizes (INVALID_ARGUMENT on failure)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

from services.common.errors import FieldViolation, InvalidArgument, bad_field

T = TypeVar("T")
R = TypeVar("R")

MAX_NAME = 200
MAX_REASON = 500
MAX_EMAIL = 254
MAX_BATCH = 1000
DISTRICT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Deliberately plain: one @, no whitespace, a dotted domain. Deliverability is not ours to judge.
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
# C0 controls, DEL and C1 controls: invisible or disruptive wherever a name or address is shown.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def email_key(email: str) -> str:
    """The form emails are compared in: trimmed and case-folded."""
    return email.strip().casefold()


def check_district_id(value: str, field: str) -> str:
    """A district id: 1 to 64 letters, digits, '-' or '_'."""
    if not DISTRICT_ID.fullmatch(value):
        raise bad_field(field, f"district id {value[:80]!r} must be 1 to 64 letters, digits, '-' or '_'")
    return value


def check_uuid(value: str, field: str) -> str:
    """A canonical lowercase UUID string."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise bad_field(field, f"{value[:80]!r} is not a UUID") from None
    if str(parsed) != value:
        raise bad_field(field, f"{value[:80]!r} is not a UUID in canonical lowercase form")
    return value


def check_optional_uuid(value: str, field: str) -> str | None:
    """An empty string (absent) or a UUID."""
    return check_uuid(value, field) if value else None


def check_text(value: str, field: str, *, maximum: int = MAX_NAME, required: bool = True) -> str:
    """Text of at most ``maximum`` characters, with no NUL (PostgreSQL cannot store one).

    When ``required``, it must not be blank.
    """
    if required and not value.strip():
        raise bad_field(field, "is required")
    if len(value) > maximum:
        raise bad_field(field, f"is {len(value)} characters long; at most {maximum} are allowed")
    position = value.find("\x00")
    if position >= 0:
        raise bad_field(field, f"contains the control character U+0000 at position {position}")
    return value


def check_printable(value: str, field: str) -> str:
    """Text without control characters (U+0000–U+001F, U+007F–U+009F), which the error locates."""
    found = CONTROL.search(value)
    if found is not None:
        raise bad_field(
            field, f"contains the control character U+{ord(found.group()):04X} at position {found.start()}"
        )
    return value


def check_name(value: str, field: str) -> str:
    """A display, given or family name: not blank, at most ``MAX_NAME`` characters, printable."""
    check_text(value, field)
    return check_printable(value, field)


def check_email(value: str, field: str) -> str:
    """An email address as given (trimmed), printable, with one @ and a dotted domain."""
    trimmed = value.strip()
    if not trimmed:
        raise bad_field(field, "is required")
    check_printable(value, field)
    if len(trimmed) > MAX_EMAIL or not EMAIL.fullmatch(trimmed):
        raise bad_field(field, f"{trimmed[:80]!r} is not a valid email address")
    return trimmed


def check_each(items: Sequence[T], check: Callable[[int, T], R]) -> list[R]:
    """``check(index, item)`` of every item; one INVALID_ARGUMENT naming the bad fields of them all."""
    checked: list[R] = []
    problems: list[FieldViolation] = []
    for index, item in enumerate(items):
        try:
            checked.append(check(index, item))
        except InvalidArgument as error:
            problems.extend(error.violations)
    if problems:
        raise InvalidArgument.for_fields(problems)
    return checked


def check_batch_size(count: int, field: str, maximum: int = MAX_BATCH) -> None:
    """A batch of 1 to ``maximum`` items."""
    if count == 0:
        raise bad_field(field, "must hold at least one item")
    if count > maximum:
        raise bad_field(field, f"holds {count} items; at most {maximum} are allowed per call")
