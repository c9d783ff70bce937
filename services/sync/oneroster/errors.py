"""Typed failures of a OneRoster pull.

Every message is written for the person who fixes the connection; none carries a secret, a token or
an OAuth signature.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

_EXCERPT_LENGTH = 160


class OneRosterError(Exception):
    """Base of every OneRoster client failure."""


class AuthenticationError(OneRosterError):
    """The server refused the credentials (HTTP 401/403) or the token endpoint did."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ServerError(OneRosterError):
    """The server answered with an error that retrying will not fix (or retries ran out)."""

    def __init__(self, message: str, *, status_code: int, description: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.description = description


class NotFoundError(ServerError):
    """The endpoint does not exist on this server (HTTP 404)."""


class RateLimitedError(OneRosterError):
    """The server kept answering 429 until the retry budget was spent."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WaitTooLongError(RateLimitedError):
    """The server asked for a wait (``Retry-After``) longer than the call's remaining retry budget."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"ClassLink asked us to wait {wait_seconds(seconds)} s, longer than this call allows.",
            retry_after=seconds,
        )


class IncompletePullError(OneRosterError):
    """Pages disagreed with each other (total changed, overlap, missing rows) on every attempt."""


class MalformedResponseError(OneRosterError):
    """A 200 response that is not a OneRoster collection: no collection key, bad or truncated JSON."""


def not_json(detail: str, where: str) -> MalformedResponseError:
    """The error for a response body of the request to path ``where`` that is not valid JSON."""
    return MalformedResponseError(f"ClassLink sent a response to {where} that is not valid JSON ({detail}).")


class UnreachableError(OneRosterError):
    """The server could not be reached or did not answer in time, after retries."""


def wait_seconds(seconds: float) -> int:
    """Seconds as a person reads them: whole, rounded up, so "0.5 s" never shows as "0 s"."""
    return math.ceil(seconds)


def excerpt(content: bytes, secrets: Iterable[str] = ()) -> str:
    """The start of a response body for an error message: one line, short, known secrets blanked."""
    shown = " ".join(content.decode("utf-8", "replace").split())
    for secret in secrets:
        if secret:
            shown = shown.replace(secret, "***")
    return shown if len(shown) <= _EXCERPT_LENGTH else shown[: _EXCERPT_LENGTH - 1] + "…"
