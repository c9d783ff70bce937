"""Webhook settings: a URL needs a secret (given or read from a file), and a lease outlives a delivery."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.sync.webhooks.settings import WebhookSettings

URL = "https://ew.example/webhooks/rostersync"


def test_without_a_url_nothing_is_sent_and_no_secret_is_needed() -> None:
    assert not WebhookSettings(url="").configured


def test_a_url_without_a_secret_is_refused_naming_both_variables() -> None:
    with pytest.raises(ValidationError, match="EW_WEBHOOK_URL needs EW_WEBHOOK_SECRET"):
        WebhookSettings(url=URL)


def test_the_secret_can_come_from_a_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "webhook_secret"
    secret_file.write_text("from-a-file\n")
    settings = WebhookSettings(url=URL, secret_file=secret_file)
    assert settings.configured and settings.secret.get_secret_value() == "from-a-file"
    assert "from-a-file" not in repr(settings)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"url": "ftp://ew.example/hook"}, "expected an http", id="not-http"),
        pytest.param(
            {"lease_seconds": 5, "timeout_seconds": 10}, "LEASE_SECONDS must exceed", id="short-lease"
        ),
    ],
)
def test_bad_values_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WebhookSettings.model_validate({"url": URL, "secret": "s"} | overrides)
