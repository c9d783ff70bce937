"""Pure roster rules: page tokens, email keys and validation, migrations matching the models."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidArgument
from services.roster import migrate
from services.roster.pagetokens import PageTokens
from services.roster.validation import check_email, check_page_size, check_uuid, email_key


def test_page_tokens_round_trip_and_reject_forgeries() -> None:
    tokens = PageTokens(b"key-one")
    token = tokens.encode(["teachers", "d1", None], ["ada@example.org", "id-1"])
    assert tokens.decode(token, ["teachers", "d1", None], [str, str]) == ["ada@example.org", "id-1"]
    assert tokens.decode("", ["teachers", "d1", None], [str, str]) is None
    with pytest.raises(InvalidArgument, match="different query"):
        tokens.decode(token, ["teachers", "d2", None], [str, str])
    with pytest.raises(InvalidArgument, match="page_token"):
        PageTokens(b"key-two").decode(token, ["teachers", "d1", None], [str, str])
    with pytest.raises(InvalidArgument, match="page_token"):
        tokens.decode(token, ["teachers", "d1", None], [int, str])
    for garbage in ["x", "!!.!!", "a.b", token + "x", "." + token]:
        with pytest.raises(InvalidArgument, match="page_token"):
            tokens.decode(garbage, ["teachers", "d1", None], [str, str])


def test_email_keys_are_trimmed_and_casefolded() -> None:
    assert email_key("  Ada.Lovelace@Example.ORG ") == "ada.lovelace@example.org"
    assert email_key("STRASSE@example.org") == email_key("straße@example.org")
    assert check_email(" ada@example.org ", "email") == "ada@example.org"
    for bad in ["", "ada", "ada@", "@example.org", "a b@example.org", "ada@example", "a@b@example.org"]:
        with pytest.raises(InvalidArgument, match="email"):
            check_email(bad, "email")


def test_page_sizes_and_ids() -> None:
    assert check_page_size(0, default=100, maximum=1000) == 100
    assert check_page_size(10**9, default=100, maximum=1000) == 1000
    with pytest.raises(InvalidArgument, match="page_size"):
        check_page_size(-1, default=100, maximum=1000)
    with pytest.raises(InvalidArgument, match="teacher_id"):
        check_uuid("6F9619FF-8B86-D011-B42D-00CF4FC964FF", "teacher_id")


def test_migrations_create_exactly_what_the_models_describe() -> None:
    assert migrate.check() == 0
