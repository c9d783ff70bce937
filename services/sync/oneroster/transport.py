"""One GET against a OneRoster server: timeouts, retries with back-off, and error translation.

Retries (429, 500, 502, 503, 504, connection errors, timeouts, a 200 whose body is not valid JSON) use
tenacity's exponential back-off with jitter, or the server's ``Retry-After`` when it sends one. All
waits of one pull draw on a shared :class:`RetryBudget`; a wait that would overrun it ends the pull
with a typed error instead of sleeping: :class:`WaitTooLongError` when the server asked for it.
A wait the server asked for is announced to an optional observer before it starts.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import httpx
import msgspec
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from services.sync.oneroster.config import RetryPolicy
from services.sync.oneroster.errors import (
    AuthenticationError,
    NotFoundError,
    OneRosterError,
    RateLimitedError,
    ServerError,
    UnreachableError,
    WaitTooLongError,
    excerpt,
    not_json,
)
from services.sync.oneroster.metrics import ONEROSTER_ERRORS, ONEROSTER_REQUESTS, ONEROSTER_RETRIES
from services.sync.oneroster.parsing import imsx_description

# A 500 is retried too: ClassLink answers bursts of them under load, and a GET is safe to repeat.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

T = TypeVar("T")

# Called with the seconds about to be waited because the server sent ``Retry-After``.
WaitObserver = Callable[[float], None]


class RetryBudget:
    """Seconds of back-off one pull may still spend."""

    def __init__(self, seconds: float) -> None:
        self.remaining = seconds

    def allows(self, delay: float) -> bool:
        """Whether the budget still covers a wait of ``delay`` seconds."""
        return delay <= self.remaining

    def spend(self, delay: float) -> None:
        """Takes a wait of ``delay`` seconds off the budget."""
        self.remaining -= delay


@dataclass(frozen=True)
class Decoded(Generic[T]):
    """A decoded response body with the URL it came from and its headers."""

    url: httpx.URL
    headers: httpx.Headers
    body: T


class _Retryable(Exception):
    """A failure worth another attempt; ``final`` is what to raise when attempts run out."""

    def __init__(self, final: OneRosterError, retry_after: float | None = None) -> None:
        super().__init__(str(final))
        self.final = final
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _describe(response: httpx.Response) -> str | None:
    try:
        return imsx_description(json.loads(response.content))
    except (ValueError, RecursionError):
        return None


def _error_for(response: httpx.Response, secrets: Iterable[str] = ()) -> OneRosterError:
    status = response.status_code
    where = response.request.url.path
    description = _describe(response)
    shown = description or excerpt(response.content, secrets)
    suffix = f": {shown}" if shown else ""
    if status in (401, 403):
        return AuthenticationError(
            f"The OneRoster server refused the credentials for {where} (HTTP {status}){suffix}. "
            "Check the client id and secret (or token) for this district.",
            status_code=status,
        )
    if status == 404:
        return NotFoundError(f"{where} does not exist on this server (HTTP 404){suffix}.", status_code=404)
    if status == 429:
        return RateLimitedError(
            f"The OneRoster server kept rate-limiting {where} (HTTP 429){suffix}.",
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    return ServerError(
        f"The OneRoster server failed {where} (HTTP {status}){suffix}.",
        status_code=status,
        description=description,
    )


def _sent_tracer(sent: asyncio.Event) -> Callable[[str, dict[str, object]], Awaitable[None]]:
    """An httpcore trace hook that sets ``sent`` once the request is on the wire."""

    async def trace(event: str, info: dict[str, object]) -> None:
        if event == "http11.send_request_body.complete":
            sent.set()

    return trace


class Transport:
    """GETs JSON with retries; owns no connection pool (the caller's ``httpx.AsyncClient`` does)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        policy: RetryPolicy,
        *,
        on_wait: WaitObserver | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        """``secrets`` are blanked from the body excerpts error messages quote."""
        self._http = http
        self._policy = policy
        self._on_wait = on_wait
        self._secrets = tuple(secrets)
        self._backoff = wait_exponential_jitter(
            multiplier=policy.initial_delay, max=policy.max_delay, jitter=policy.jitter
        )

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, _Retryable) and error.retry_after is not None:
            return error.retry_after
        return float(self._backoff(state))

    async def get(
        self,
        url: str,
        params: dict[str, str | int] | None,
        budget: RetryBudget,
        decode: Callable[[bytes], T],
        sent: asyncio.Event | None = None,
    ) -> Decoded[T]:
        """GETs ``url`` and decodes a 200 body with ``decode``; a body that is not valid JSON is retried."""

        def stop(state: RetryCallState) -> bool:
            return state.attempt_number >= self._policy.attempts_per_request or not budget.allows(
                state.upcoming_sleep
            )

        def before_sleep(state: RetryCallState) -> None:
            budget.spend(state.upcoming_sleep)
            error = state.outcome.exception() if state.outcome is not None else None
            if isinstance(error, _Retryable):
                ONEROSTER_RETRIES.labels(type(error.final).__name__).inc()
            if self._on_wait is not None and isinstance(error, _Retryable) and error.retry_after is not None:
                self._on_wait(state.upcoming_sleep)

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Retryable),
            wait=self._wait,
            stop=stop,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(url, params, decode, sent)
        except _Retryable as exhausted:
            if exhausted.retry_after is not None and not budget.allows(exhausted.retry_after):
                ONEROSTER_ERRORS.labels(WaitTooLongError.__name__).inc()
                raise WaitTooLongError(exhausted.retry_after) from None
            ONEROSTER_ERRORS.labels(type(exhausted.final).__name__).inc()
            raise exhausted.final from None
        except OneRosterError as error:
            ONEROSTER_ERRORS.labels(type(error).__name__).inc()
            raise
        raise AssertionError("tenacity ended without a result")

    async def _attempt(
        self,
        url: str,
        params: dict[str, str | int] | None,
        decode: Callable[[bytes], T],
        sent: asyncio.Event | None,
    ) -> Decoded[T]:
        extensions = {"trace": _sent_tracer(sent)} if sent is not None else None
        try:
            response = await self._http.get(url, params=params, extensions=extensions)
        except httpx.TimeoutException as exc:
            ONEROSTER_REQUESTS.labels("timeout").inc()
            raise _Retryable(
                UnreachableError(f"The OneRoster server did not answer in time ({type(exc).__name__}).")
            ) from None
        except httpx.TransportError as exc:
            ONEROSTER_REQUESTS.labels("unreachable").inc()
            raise _Retryable(
                UnreachableError(f"Could not reach the OneRoster server ({type(exc).__name__}).")
            ) from None
        ONEROSTER_REQUESTS.labels(str(response.status_code)).inc()
        if response.status_code in RETRYABLE_STATUSES:
            raise _Retryable(
                _error_for(response, self._secrets), parse_retry_after(response.headers.get("retry-after"))
            )
        if response.status_code != 200:
            raise _error_for(response, self._secrets)
        where = response.request.url.path
        try:
            body = decode(response.content)
        except msgspec.DecodeError as exc:
            raise _Retryable(not_json(str(exc), where)) from None
        except UnicodeDecodeError:
            raise _Retryable(not_json("invalid UTF-8", where)) from None
        except RecursionError:
            raise _Retryable(not_json("nested too deeply", where)) from None
        return Decoded(url=response.request.url, headers=response.headers, body=body)
