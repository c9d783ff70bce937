"""Pure roster rules: page tokens, emails, names, error sizes, settings, migrations matching the models."""

from __future__ import annotations

import base64
import datetime as dt
import os

import pytest
from google.rpc import error_details_pb2, status_pb2

from services.common.errors import FieldViolation, InvalidArgument, check_page_size, clip
from services.common.grpc_errors import to_status
from services.common.pagetokens import RosterPageTokens as PageTokens
from services.roster import migrate
from services.roster.settings import load_settings
from services.roster.validation import (
    check_email,
    check_name,
    check_printable,
    check_uuid,
    email_key,
)


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


def test_names_are_required_and_printable() -> None:
    assert check_name("Zoë O'Brien-Łukasz", "given_name") == "Zoë O'Brien-Łukasz"
    for bad in ["", "  ", "\u3000", "x" * 201]:
        with pytest.raises(InvalidArgument, match="given_name"):
            check_name(bad, "given_name")
    for code in [*range(0x20), *range(0x7F, 0xA0)]:
        with pytest.raises(InvalidArgument) as caught:
            check_printable(f"Ada{chr(code)}", "given_name")
        assert caught.value.violations == [
            FieldViolation("given_name", f"contains the control character U+{code:04X} at position 3")
        ]
    assert check_printable("\xa0Ada\u200b", "given_name") == "\xa0Ada\u200b"
    with pytest.raises(InvalidArgument, match=r"U\+0000"):
        check_email("ada\x00@example.org", "email")


def test_statuses_clip_what_they_echo_and_list_at_most_twenty_violations() -> None:
    assert clip("short", 10) == "short"
    assert clip("é" * 10, 10) == "ééé…"
    assert len(clip("é" * 10, 10).encode()) <= 10
    # The worst case: long non-ASCII descriptions and long field paths, in every violation.
    error = InvalidArgument.for_fields([FieldViolation("f" * 500, "é" * 10_000) for _ in range(1000)])
    status = to_status(error)
    packed = dict(status.trailing_metadata)["grpc-status-details-bin"]
    assert isinstance(packed, bytes)
    assert len(base64.b64encode(packed)) + len(status.details.encode()) < 8192
    details = status_pb2.Status.FromString(packed).details
    bad_request = error_details_pb2.BadRequest()
    assert details[1].Unpack(bad_request)
    *listed, more = bad_request.field_violations
    assert 1 <= len(listed) < 20 and (more.field, more.description) == ("", f"and {1000 - len(listed)} more")
    assert all(len(v.field.encode()) <= 80 and len(v.description.encode()) <= 300 for v in listed)
    assert status.details.startswith("Invalid request: ffff")


def test_page_sizes_and_ids() -> None:
    assert check_page_size(0, default=100, maximum=1000) == 100
    assert check_page_size(10**9, default=100, maximum=1000) == 1000
    with pytest.raises(InvalidArgument, match="page_size"):
        check_page_size(-1, default=100, maximum=1000)
    with pytest.raises(InvalidArgument, match="teacher_id"):
        check_uuid("6F9619FF-8B86-D011-B42D-00CF4FC964FF", "teacher_id")


def test_migrations_create_exactly_what_the_models_describe() -> None:
    assert migrate.MIGRATIONS.check() == 0


def test_settings_read_the_environment_and_refuse_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("EW_ROSTER_"):
            monkeypatch.delenv(name)
    defaults = load_settings()
    assert (defaults.database_url, defaults.listen_address) == ("sqlite:///var/roster.db", "127.0.0.1:50051")
    assert defaults.auto_migrate is True and defaults.change_set_ttl == dt.timedelta(hours=1)

    monkeypatch.setenv("EW_ROSTER_DATABASE_URL", "postgresql://roster@db/roster")
    monkeypatch.setenv("EW_ROSTER_CHANGE_SET_TTL", "900")
    configured = load_settings()
    assert configured.auto_migrate is False and configured.change_set_ttl == dt.timedelta(minutes=15)

    monkeypatch.setenv("EW_ROSTER_LISTEN_ADDRESS", "no-port")
    monkeypatch.setenv("EW_ROSTER_CHANGE_SET_TTL", "0")
    with pytest.raises(SystemExit) as refused:
        load_settings()
    assert "EW_ROSTER_LISTEN_ADDRESS" in str(refused.value) and "EW_ROSTER_CHANGE_SET_TTL" in str(
        refused.value
    )
