"""Opaque page tokens of both services: an HMAC-signed keyset cursor bound to a list, a district and a query.

A token is ``base64url(json([kind, district_id, scope, position])) "." base64url(hmac)``, the HMAC
being SHA-256 under the server's key, and base64url decoded strictly (``services.common.base64url``),
so any changed character is refused. ``PageTokenCodec.decode``
checks everything once and returns a typed ``Cursor``: a token that was not signed with this key,
is not one this codec wrote, or whose position does not have the types the caller expects is
``TokenRefused("unreadable")``; a genuine token of another list, district or query is
``TokenRefused("other_query")``. Each service words the INVALID_ARGUMENT its callers read
(``RosterPageTokens``, ``SyncPageTokens``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from services.common import base64url
from services.common.errors import bad_field

JsonScalar = str | int
Scope = Sequence[JsonScalar | None]


class TokenRefused(Exception):
    """A page token this codec cannot resume from: unreadable (forged, damaged) or of another query."""

    def __init__(self, why: Literal["unreadable", "other_query"]) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True)
class Cursor:
    """Where a token resumes: its list and district, the query's scope and the last row's key."""

    kind: str
    district_id: str
    scope: tuple[JsonScalar | None, ...]
    position: Any
    """The last row's sort key: a list of the types asked for, or any JSON value when none were."""


class PageTokenCodec:
    """Signs and verifies page tokens with one server key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def encode(self, kind: str, district_id: str, position: Any, scope: Scope = ()) -> str:
        """A token resuming list ``kind`` of ``district_id`` (filtered by ``scope``) after ``position``."""
        payload = json.dumps([kind, district_id, list(scope), position], separators=(",", ":")).encode()
        return f"{base64url.encode(payload)}.{base64url.encode(self._sign(payload))}"

    def decode(
        self,
        token: str,
        kind: str,
        district_id: str,
        *,
        scope: Scope = (),
        types: Sequence[type] | None = None,
    ) -> Cursor:
        """The cursor of a token this codec issued for the same list, district and scope.

        With ``types``, the position must be a list of exactly those types (``bool`` is not ``int``).
        """
        try:
            body, mac = token.split(".")
            payload = base64url.decode(body)
            signature = base64url.decode(mac)
        except ValueError:
            raise TokenRefused("unreadable") from None
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise TokenRefused("unreadable")
        try:
            token_kind, token_district, token_scope, position = json.loads(payload)
        except (ValueError, TypeError):
            raise TokenRefused("unreadable") from None
        if token_kind != kind or token_district != district_id or token_scope != list(scope):
            raise TokenRefused("other_query")
        if types is not None and not (
            isinstance(position, list)
            and len(position) == len(types)
            and all(type(v) is t for v, t in zip(position, types, strict=True))
        ):
            raise TokenRefused("unreadable")
        return Cursor(kind, district_id, tuple(token_scope), position)


class RosterPageTokens:
    """RosterService's page tokens: a keyset cursor bound to the query (``[kind, district, *filters]``)."""

    def __init__(self, key: bytes) -> None:
        self._codec = PageTokenCodec(key)

    @staticmethod
    def _bound(query: Scope) -> tuple[str, str]:
        kind = query[0] if len(query) > 0 and isinstance(query[0], str) else ""
        district_id = query[1] if len(query) > 1 and isinstance(query[1], str) else ""
        return kind, district_id

    def encode(self, query: Scope, cursor: Sequence[JsonScalar]) -> str:
        """A token that resumes ``query`` after the row whose sort key is ``cursor``."""
        return self._codec.encode(*self._bound(query), list(cursor), scope=query)

    def decode(self, token: str, query: Scope, types: Sequence[type]) -> list[JsonScalar] | None:
        """The cursor of ``token`` (None for an empty token); INVALID_ARGUMENT when it is not ours."""
        if not token:
            return None
        try:
            position: list[JsonScalar] = self._codec.decode(
                token, *self._bound(query), scope=query, types=types
            ).position
        except TokenRefused as refused:
            if refused.why == "other_query":
                raise bad_field(
                    "page_token", "belongs to a different query (parent or filters changed)"
                ) from None
            raise bad_field("page_token", "is not a page token this service issued for this query") from None
        return position


class SyncPageTokens:
    """SyncService's page tokens: a JSON position bound to one list and one district.

    A token from another list, another district, another key (a restarted server without a shared
    ``EW_SYNC_PAGE_TOKEN_KEY``) or a forged one is refused with INVALID_ARGUMENT telling the caller
    to start from the first page.
    """

    def __init__(self, key: bytes) -> None:
        self._codec = PageTokenCodec(key)

    def encode(self, kind: str, district_id: str, value: Any) -> str:
        """A token carrying ``value`` (JSON-serialisable) for list ``kind`` of ``district_id``."""
        return self._codec.encode(kind, district_id, value)

    def decode(
        self,
        kind: str,
        district_id: str,
        token: str,
        *,
        restart_hint: str,
        types: Sequence[type] | None = None,
    ) -> Any:
        """The value of a token this server issued for the same list and district (of ``types``, if given)."""
        try:
            return self._codec.decode(token, kind, district_id, types=types).position
        except TokenRefused:
            raise bad_field("page_token", f"not a page token of this list; {restart_hint}") from None
