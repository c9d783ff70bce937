"""ew-sync without a server: dev tokens, and the errors a caller gets before any call is made."""

from __future__ import annotations

import jwt
import pytest
from ew.client.cli import app, code_and_state, token_district
from typer.testing import CliRunner

from services.common.auth import DEV_JWT_SECRET

runner = CliRunner()


def test_dev_token_mints_a_district_admin_token_signed_with_the_dev_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EW_JWT_ALLOW_DEV_KEY", "true")

    result = runner.invoke(app, ["dev-token", "--district", "d42", "--ttl", "600"])

    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    claims = jwt.decode(token, DEV_JWT_SECRET, algorithms=["HS256"], audience="ew-rostersync")
    assert (claims["district"], claims["role"], claims["plan"]) == (
        "d42",
        "district_admin",
        "district_premium",
    )
    assert claims["exp"] - claims["iat"] == 600
    assert token_district(token) == "d42"


def test_dev_token_refuses_when_the_dev_key_is_not_allowed() -> None:
    result = runner.invoke(app, ["dev-token", "--district", "d42"])

    assert result.exit_code == 1
    assert "EW_JWT" in result.stderr
    assert "Traceback" not in result.output


def test_dev_token_rejects_an_unknown_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EW_JWT_ALLOW_DEV_KEY", "true")

    result = runner.invoke(app, ["dev-token", "--district", "d42", "--role", "superuser"])

    assert result.exit_code == 1
    assert "superuser" in result.stderr


def test_a_command_without_a_token_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EW_TOKEN", raising=False)

    result = runner.invoke(app, ["--district", "d42", "runs"])

    assert result.exit_code == 1
    assert "EW_TOKEN" in result.stderr and "dev-token" in result.stderr


def test_the_district_comes_from_the_token_unless_given() -> None:
    token = jwt.encode({"district": "d7", "sub": "x"}, "k" * 32, algorithm="HS256")

    assert token_district(token) == "d7"
    assert token_district("not-a-jwt") == ""


def test_sign_in_takes_a_pasted_redirect_address_or_a_bare_code() -> None:
    pasted = "https://ew.example.test/classlink/callback?code=c-123&state=s-from-redirect"

    assert code_and_state(pasted, "s-started") == ("c-123", "s-from-redirect")
    assert code_and_state("  c-456 \n", "s-started") == ("c-456", "s-started")
