"""Signing and verifying the sync service's webhook requests (for receivers in the EW product).

Each request carries ``EW-Signature: t=<unix seconds>,v1=<hex>``, where the hex is
HMAC-SHA256(secret, ``"<t>." + body``) over the raw request body, as Stripe signs its webhooks. A
receiver verifies it with ``verify`` before parsing the body, and refuses a timestamp older than
the tolerance, so a captured request cannot be replayed later. The event id in the body is the
idempotency key: delivery is at least once, so a receiver may see one event twice.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "EW-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSignature(ValueError):
    """The request was not signed with the secret, was changed, or is too old."""


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``EW-Signature`` header value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check an ``EW-Signature`` header against the raw body; returns its timestamp.

    Raises ``InvalidSignature`` when the header is malformed, no ``v1`` signature matches, or the
    timestamp is further than ``tolerance`` seconds from ``now`` (default: the current time).
    """
    parts = [part.partition("=") for part in header.split(",")]
    timestamps = [value for key, _, value in parts if key.strip() == "t"]
    signatures = [value.strip() for key, _, value in parts if key.strip() == "v1"]
    if len(timestamps) != 1 or not timestamps[0].strip().isdigit() or not signatures:
        raise InvalidSignature(f"{SIGNATURE_HEADER} must look like t=<unix seconds>,v1=<hex>")
    timestamp = int(timestamps[0])
    expected = _digest(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, signature) for signature in signatures):
        raise InvalidSignature("no signature matches the body and the secret")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignature(f"the signature's timestamp is more than {tolerance:g} s from now")
    return timestamp
