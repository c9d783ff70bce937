"""Opaque page tokens: an HMAC-signed keyset cursor bound to the query that produced it.

A token is ``base64url(json) "." base64url(hmac)``. The JSON holds the query fingerprint (parent and
filters) and the last row's sort key. A token that was not signed by this key, or that comes from a
different query, is INVALID_ARGUMENT, so a forged token is rejected rather than misread.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence

from services.common import base64url
from services.roster.validation import violation

JsonScalar = str | int


class PageTokens:
    """Signs and verifies page tokens with one server key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def encode(self, query: Sequence[JsonScalar | None], cursor: Sequence[JsonScalar]) -> str:
        """A token that resumes ``query`` after the row whose sort key is ``cursor``."""
        payload = json.dumps({"q": list(query), "c": list(cursor)}, separators=(",", ":")).encode()
        return f"{base64url.encode(payload)}.{base64url.encode(self._mac(payload))}"

    def decode(
        self, token: str, query: Sequence[JsonScalar | None], types: Sequence[type]
    ) -> list[JsonScalar] | None:
        """The cursor of ``token`` (None for an empty token); INVALID_ARGUMENT when it is not ours."""
        if not token:
            return None
        invalid = violation("page_token", "is not a page token this service issued for this query")
        try:
            body, mac = token.split(".")
            payload = base64url.decode(body)
            signature = base64url.decode(mac)
        except ValueError:
            raise invalid from None
        if not hmac.compare_digest(signature, self._mac(payload)):
            raise invalid
        data = json.loads(payload)
        if data.get("q") != list(query):
            raise violation("page_token", "belongs to a different query (parent or filters changed)")
        cursor = data.get("c")
        if (
            not isinstance(cursor, list)
            or len(cursor) != len(types)
            or not all(type(v) is t for v, t in zip(cursor, types, strict=True))
        ):
            raise invalid
        return cursor
