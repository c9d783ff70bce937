"""Opaque page tokens: a JSON payload signed with HMAC-SHA256 and bound to one district and one list.

A token from another list, another district, another key (a restarted server without a shared
``EW_SYNC_PAGE_TOKEN_KEY``) or a forged one is refused with INVALID_ARGUMENT telling the caller to
start from the first page.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from services.common import base64url
from services.common.errors import InvalidArgument
from services.sync.api.names import bad_field

_SIGNATURE_BYTES = 16


class PageTokens:
    """Signs and checks page tokens with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]

    def encode(self, kind: str, district_id: str, value: Any) -> str:
        """A token carrying ``value`` (JSON-serialisable) for list ``kind`` of ``district_id``."""
        payload = json.dumps([kind, district_id, value], separators=(",", ":")).encode()
        return base64url.encode(self._sign(payload) + payload)

    def decode(self, kind: str, district_id: str, token: str, *, restart_hint: str) -> Any:
        """The value of a token this server issued for the same list and district."""
        invalid = _invalid(restart_hint)
        try:
            raw = base64url.decode(token)
        except ValueError:
            raise invalid from None
        signature, payload = raw[:_SIGNATURE_BYTES], raw[_SIGNATURE_BYTES:]
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise invalid
        try:
            token_kind, token_district, value = json.loads(payload)
        except (ValueError, TypeError):
            raise invalid from None
        if token_kind != kind or token_district != district_id:
            raise invalid
        return value


def _invalid(restart_hint: str) -> InvalidArgument:
    return bad_field("page_token", f"not a page token of this list; {restart_hint}")
