"""Domain errors shared by both services.

Use-case code raises these; one interceptor per server (``services.common.grpc_errors``) turns them
into gRPC statuses with an ``ErrorInfo`` (and ``BadRequest`` for field violations). Messages are
written for the person who has to act on them; they never carry secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc

ERROR_DOMAIN = "rostersync.ew"
# A status travels in trailing metadata, which clients cap at 8 KB: a refusal lists at most this
# many violations, each clipped, in at most MAX_LISTED_BYTES, and says how many more there were.
# A description has room for our own advice and an echoed value, never for a 10 KB one.
MAX_LISTED_VIOLATIONS = 20
MAX_LISTED_BYTES = 3072
MAX_SUMMARISED_VIOLATIONS = 3
MAX_FIELD_BYTES = 80
MAX_DESCRIPTION_BYTES = 300
ELLIPSIS = "…"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: which field and what is wrong with it."""

    field: str
    description: str


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes on a character boundary, ending in '…' when cut."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - len(ELLIPSIS.encode())].decode(errors="ignore") + ELLIPSIS


def listed_violations(violations: Sequence[FieldViolation], limit: int) -> list[FieldViolation]:
    """The first ``limit`` violations, clipped, within ``MAX_LISTED_BYTES``; then one saying how many more."""
    listed: list[FieldViolation] = []
    size = 0
    for v in violations[:limit]:
        shown = FieldViolation(clip(v.field, MAX_FIELD_BYTES), clip(v.description, MAX_DESCRIPTION_BYTES))
        size += len(shown.field.encode()) + len(shown.description.encode())
        if size > MAX_LISTED_BYTES:
            break
        listed.append(shown)
    if len(listed) < len(violations):
        listed.append(FieldViolation("", f"and {len(violations) - len(listed)} more"))
    return listed


class DomainError(Exception):
    """Base of every error that maps to a gRPC status other than INTERNAL."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    default_reason = "ERROR"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
        violations: list[FieldViolation] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = metadata or {}
        self.violations = violations or []


class InvalidArgument(DomainError):
    """The request itself is wrong; retrying it unchanged will fail again."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    @classmethod
    def for_fields(cls, violations: list[FieldViolation]) -> InvalidArgument:
        """One error carrying every bad field; its message names the first few."""
        summary = "; ".join(
            f"{v.field}: {v.description}" if v.field else v.description
            for v in listed_violations(violations, MAX_SUMMARISED_VIOLATIONS)
        )
        return cls(f"Invalid request: {summary}", violations=violations)


class NotFound(DomainError):
    """The named resource does not exist (or belongs to a district the caller cannot see)."""

    code = grpc.StatusCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    """The resource the request would create exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    """The system is not in a state that allows the call; fix the state before retrying."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class Aborted(DomainError):
    """A concurrency conflict; retry at a higher level (re-read, re-plan)."""

    code = grpc.StatusCode.ABORTED
    default_reason = "ABORTED"


class Unauthenticated(DomainError):
    """No valid credentials."""

    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    """Valid credentials that do not allow this call."""

    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class Unavailable(DomainError):
    """A dependency is down; the same call may succeed later."""

    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


class ResourceExhausted(DomainError):
    """A quota or size limit was hit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "RESOURCE_EXHAUSTED"


def bad_field(field: str, description: str) -> InvalidArgument:
    """INVALID_ARGUMENT for one field (the shape every service's request checks use)."""
    return InvalidArgument.for_fields([FieldViolation(field, description)])


def check_page_size(value: int, *, default: int, maximum: int) -> int:
    """The page size a List call asked for: ``default`` when 0, coerced down to ``maximum``, never negative.

    AIP-158: document the default and the maximum, coerce larger sizes down, refuse negative ones.
    """
    if value < 0:
        raise bad_field("page_size", f"must not be negative, got {value}")
    if value == 0:
        return default
    return min(value, maximum)
