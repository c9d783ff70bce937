"""Secrets as files: ``NAME_FILE`` fills ``NAME``; both at once, or an unreadable file, refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.secret_files import apply_secret_files, secret_value


def test_a_file_variable_becomes_the_variable_without_its_trailing_newline(tmp_path: Path) -> None:
    keys = tmp_path / "secret_keys"
    keys.write_text("key-one,key-two\n")
    environ = {"EW_SECRET_KEYS_FILE": str(keys), "EW_JWT_PUBLIC_KEY_FILE": "/run/secrets/jwt_public_key"}

    apply_secret_files(environ)

    # EW_JWT_PUBLIC_KEY_FILE is a file setting of its own and stays as it is.
    assert environ == {
        "EW_SECRET_KEYS": "key-one,key-two",
        "EW_JWT_PUBLIC_KEY_FILE": "/run/secrets/jwt_public_key",
    }


def test_both_forms_at_once_or_a_missing_file_stop_the_process_naming_the_variable(tmp_path: Path) -> None:
    url = tmp_path / "url"
    url.write_text("postgresql://ew_sync:pw@postgres/ew_sync")
    with pytest.raises(SystemExit, match="EW_SYNC_DATABASE_URL or EW_SYNC_DATABASE_URL_FILE"):
        apply_secret_files({"EW_SYNC_DATABASE_URL": "sqlite://", "EW_SYNC_DATABASE_URL_FILE": str(url)})
    with pytest.raises(SystemExit, match="EW_BROKER_URL_FILE=.*cannot be read"):
        apply_secret_files({"EW_BROKER_URL_FILE": str(tmp_path / "missing")})


def test_secret_value_reads_the_plain_variable_when_no_file_is_given() -> None:
    assert secret_value("EW_BROKER_URL", {"EW_BROKER_URL": "redis://r:6379/0"}) == "redis://r:6379/0"
    assert secret_value("EW_BROKER_URL", {}) is None
