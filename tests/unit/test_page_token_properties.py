"""Properties of both page-token codecs over generated queries, cursors and tampered tokens (Hypothesis).

The roster's tokens (``RosterPageTokens`` in ``services.common.pagetokens``) carry a keyset cursor
bound to the query that produced it; the sync service's (``SyncPageTokens``) carry any JSON value
bound to one list and one district. A caller relies on three things: a token it was given resumes
exactly where it stopped; a token from another query, list, district or server key is refused with
INVALID_ARGUMENT (never misread as a cursor of this query); and a damaged token is refused with
INVALID_ARGUMENT, never accepted and never a crash that would surface as INTERNAL.

Tampering is drawn per position and replacement character, from the base64url alphabet, the
characters that confuse lenient decoders ('+', '/', '=', '.') and any other character; every
position of a token is also tried with every base64 character, since a random draw seldom hits the
last one.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from services.common.errors import DomainError, InvalidArgument
from services.common.pagetokens import RosterPageTokens as RosterTokens
from services.common.pagetokens import SyncPageTokens as SyncTokens

BASE64URL = string.ascii_letters + string.digits + "-_"
CONFUSING = "+/=."
HINT = "start again from the first page"

keys = st.binary(min_size=1, max_size=32)
scalars = st.one_of(st.text(max_size=12), st.integers(), st.none())
queries = st.lists(scalars, max_size=5)
# A cursor and the types the decoder expects of it: strings and ints only (never bool).
cursor_values = st.one_of(st.text(max_size=20), st.integers())
cursors = st.lists(cursor_values, min_size=1, max_size=4)
replacements = st.one_of(
    st.sampled_from(BASE64URL + CONFUSING),
    st.characters(),
    st.sampled_from(["\x00", "\n", " ", "é", "\ud800", "\U0001f600"]),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
names = st.text(max_size=10)


def types_of(cursor: list[str | int]) -> list[type]:
    return [type(v) for v in cursor]


def refusal(decode: Callable[[], Any]) -> InvalidArgument:
    """The INVALID_ARGUMENT ``decode()`` raises about ``page_token``; fails on success or any other error."""
    try:
        result = decode()
    except InvalidArgument as error:
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in error.violations] == ["page_token"], error.violations
        return error
    except DomainError as error:
        raise AssertionError(f"refused with {type(error).__name__}, not INVALID_ARGUMENT: {error}") from error
    raise AssertionError(f"accepted and decoded to {result!r}")


def changed(token: str, position: int, character: str) -> str:
    return token[:position] + character + token[position + 1 :]


def accepted_alterations(token: str, decode: Callable[[str], Any]) -> list[str]:
    """Every one-character change of ``token`` over the base64 alphabets that ``decode`` accepts."""
    found = []
    for position, original in enumerate(token):
        for character in BASE64URL + CONFUSING:
            if character == original:
                continue
            tampered = changed(token, position, character)
            try:
                value = decode(tampered)
            except InvalidArgument:
                continue
            found.append(f"{original!r}->{character!r} at {position}/{len(token)} decoded to {value!r}")
    return found


# Scanning every change of a token is slow to repeat: a failure is reported as found, not shrunk.
SCAN = settings(max_examples=25, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
NON_CANONICAL = (
    "changed tokens were accepted: a lenient base64 decoder ignores the unused low bits of the last "
    "character and takes '+' and '/' for '-' and '_' (services.common.base64url must refuse them)"
)


# The roster's tokens


@settings(max_examples=200, deadline=None)
@given(keys, queries, cursors)
def test_roster_tokens_round_trip(key: bytes, query: list[str | int | None], cursor: list[str | int]) -> None:
    tokens = RosterTokens(key)
    token = tokens.encode(query, cursor)
    assert token and token.isascii() and "=" not in token
    decoded = tokens.decode(token, query, types_of(cursor))
    assert decoded == cursor
    assert decoded is not None and types_of(decoded) == types_of(cursor)


@settings(max_examples=100, deadline=None)
@given(keys, queries, st.lists(st.sampled_from([str, int]), max_size=4))
def test_an_empty_roster_token_is_the_first_page(
    key: bytes, query: list[str | int | None], types: list[type]
) -> None:
    assert RosterTokens(key).decode("", query, types) is None


@settings(max_examples=200, deadline=None)
@given(keys, queries, queries, cursors)
def test_a_roster_token_of_another_query_is_refused(
    key: bytes, query: list[str | int | None], other: list[str | int | None], cursor: list[str | int]
) -> None:
    if other == query:
        other = [*query, "changed"]
    tokens = RosterTokens(key)
    token = tokens.encode(query, cursor)
    error = refusal(lambda: tokens.decode(token, other, types_of(cursor)))
    assert "different query" in error.message


@settings(max_examples=100, deadline=None)
@given(keys, keys, queries, cursors)
def test_a_roster_token_of_another_key_is_refused(
    key: bytes, other_key: bytes, query: list[str | int | None], cursor: list[str | int]
) -> None:
    if other_key == key:
        other_key = key + b"!"
    token = RosterTokens(other_key).encode(query, cursor)
    refusal(lambda: RosterTokens(key).decode(token, query, types_of(cursor)))


@settings(max_examples=100, deadline=None)
@given(keys, queries, cursors, st.lists(st.sampled_from([str, int]), min_size=1, max_size=4))
def test_a_roster_cursor_of_other_types_is_refused(
    key: bytes, query: list[str | int | None], cursor: list[str | int], types: list[type]
) -> None:
    if types == types_of(cursor):
        types = [*types, str]
    tokens = RosterTokens(key)
    refusal(lambda: tokens.decode(tokens.encode(query, cursor), query, types))


@settings(max_examples=300, deadline=None)
@given(keys, queries, cursors, st.data())
def test_a_changed_roster_token_is_never_misread_nor_a_crash(
    key: bytes, query: list[str | int | None], cursor: list[str | int], data: st.DataObject
) -> None:
    tokens = RosterTokens(key)
    token = tokens.encode(query, cursor)
    position = data.draw(st.integers(0, len(token) - 1), label="position")
    tampered = changed(token, position, data.draw(replacements, label="replacement"))
    if tampered == token:
        return
    try:
        decoded = tokens.decode(tampered, query, types_of(cursor))
    except InvalidArgument:
        return
    assert decoded == cursor, f"a changed token was read as another cursor: {decoded!r}"


@SCAN
@given(keys, queries, cursors)
def test_every_one_character_change_of_a_roster_token_is_refused(
    key: bytes, query: list[str | int | None], cursor: list[str | int]
) -> None:
    tokens = RosterTokens(key)
    token = tokens.encode(query, cursor)
    accepted = accepted_alterations(token, lambda t: tokens.decode(t, query, types_of(cursor)))
    assert not accepted, f"roster page tokens: {NON_CANONICAL}: {accepted}"


# The sync service's tokens


@settings(max_examples=200, deadline=None)
@given(keys, names, names, json_values)
def test_sync_tokens_round_trip(key: bytes, kind: str, district_id: str, value: Any) -> None:
    tokens = SyncTokens(key)
    token = tokens.encode(kind, district_id, value)
    assert token and token.isascii() and "=" not in token
    decoded = tokens.decode(kind, district_id, token, restart_hint=HINT)
    # json.dumps tells True from 1 and keeps dict order, which == alone does not.
    assert decoded == value and json.dumps(decoded) == json.dumps(value)


@settings(max_examples=200, deadline=None)
@given(keys, names, names, names, names, json_values)
def test_a_sync_token_of_another_list_or_district_is_refused(
    key: bytes, kind: str, district_id: str, other_kind: str, other_district: str, value: Any
) -> None:
    if (other_kind, other_district) == (kind, district_id):
        other_district += "x"
    tokens = SyncTokens(key)
    token = tokens.encode(kind, district_id, value)
    error = refusal(lambda: tokens.decode(other_kind, other_district, token, restart_hint=HINT))
    assert HINT in error.message


@settings(max_examples=100, deadline=None)
@given(keys, keys, names, names, json_values)
def test_a_sync_token_of_another_key_is_refused(
    key: bytes, other_key: bytes, kind: str, district_id: str, value: Any
) -> None:
    if other_key == key:
        other_key = key + b"!"
    token = SyncTokens(other_key).encode(kind, district_id, value)
    refusal(lambda: SyncTokens(key).decode(kind, district_id, token, restart_hint=HINT))


@settings(max_examples=200, deadline=None)
@given(keys, names, names, json_values, st.data())
def test_a_truncated_sync_token_is_refused(
    key: bytes, kind: str, district_id: str, value: Any, data: st.DataObject
) -> None:
    tokens = SyncTokens(key)
    token = tokens.encode(kind, district_id, value)
    cut = data.draw(st.integers(0, len(token) - 1), label="kept characters")
    refusal(lambda: tokens.decode(kind, district_id, token[:cut], restart_hint=HINT))


@settings(max_examples=300, deadline=None)
@given(keys, names, names, json_values, st.data())
def test_a_changed_sync_token_is_never_misread_nor_a_crash(
    key: bytes, kind: str, district_id: str, value: Any, data: st.DataObject
) -> None:
    tokens = SyncTokens(key)
    token = tokens.encode(kind, district_id, value)
    position = data.draw(st.integers(0, len(token) - 1), label="position")
    tampered = changed(token, position, data.draw(replacements, label="replacement"))
    if tampered == token:
        return
    try:
        decoded = tokens.decode(kind, district_id, tampered, restart_hint=HINT)
    except InvalidArgument:
        return
    assert json.dumps(decoded) == json.dumps(value), f"a changed token was read as {decoded!r}"


@SCAN
@given(keys, names, names, json_values)
def test_every_one_character_change_of_a_sync_token_is_refused(
    key: bytes, kind: str, district_id: str, value: Any
) -> None:
    tokens = SyncTokens(key)
    token = tokens.encode(kind, district_id, value)
    accepted = accepted_alterations(token, lambda t: tokens.decode(kind, district_id, t, restart_hint=HINT))
    assert not accepted, f"sync page tokens: {NON_CANONICAL}: {accepted}"


@pytest.mark.parametrize("token", ["", ".", "..", "a.b.c", "!!!!", "\x00", "é.é", "A" * 5])
def test_malformed_tokens_are_refused_by_both(token: str) -> None:
    if token:
        refusal(lambda: RosterTokens(b"k").decode(token, ["q"], [str]))
    refusal(lambda: SyncTokens(b"k").decode("kind", "d1", token, restart_hint=HINT))
