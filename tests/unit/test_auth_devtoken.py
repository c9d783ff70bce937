"""The dev token helper signs with the public development key and refuses anything else."""

from __future__ import annotations

import pytest

from services.common.auth import AuthSettings, Principal, Role, TokenVerifier
from services.common.devtoken import DevKeyRequired, main, mint_dev_token


def test_dev_token_is_accepted_by_a_dev_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EW_JWT_ALLOW_DEV_KEY", "true")
    settings = AuthSettings()
    raw = mint_dev_token(settings, district_id="d1", role=Role.DISTRICT_ADMIN, plan="district_premium")
    assert TokenVerifier(settings).verify(raw) == Principal(
        "dev-district_admin@d1", "d1", Role.DISTRICT_ADMIN, "district_premium"
    )


def test_dev_token_refuses_a_real_key() -> None:
    settings = AuthSettings(secret="a-production-secret-that-is-long-enough")  # type: ignore[arg-type]
    with pytest.raises(DevKeyRequired):
        mint_dev_token(settings, district_id="d1", role=Role.TEACHER, plan="basic")


def test_cli_prints_a_token(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EW_JWT_ALLOW_DEV_KEY", "true")
    code = main(
        ["--district", "d7", "--role", "teacher", "--plan", "basic", "--ttl", "60", "--subject", "t@x"]
    )
    assert code == 0
    principal = TokenVerifier(AuthSettings()).verify(capsys.readouterr().out.strip())
    assert principal == Principal("t@x", "d7", Role.TEACHER, "basic")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EW_JWT_SECRET": "a-production-secret-that-is-long-enough"}, "development key only"),
        ({}, "EW_JWT_SECRET is not set"),
    ],
)
def test_cli_exits_2_without_the_dev_key(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["--district", "d1", "--role", "district_admin", "--plan", "district_premium"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
