"""Log redaction: secrets, Authorization headers, Bearer tokens and OAuth signatures never reach a log."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from services.common import redaction
from services.common.redaction import REDACTED, RedactingFilter, install_redaction

SECRET = "cl-secret-7f3a9b2c4d5e6f70"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
SIGNATURE = "tR3%2BJx8aKd%3D"


@pytest.fixture
def redactor() -> Iterator[RedactingFilter]:
    """The process-wide redaction, removed again after the test."""
    factory = logging.getLogRecordFactory()
    try:
        yield install_redaction()
    finally:
        logging.setLogRecordFactory(factory)
        redaction._installed = None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Authorization: Bearer {TOKEN}", f"Authorization: {REDACTED}"),
        (
            f'authorization: OAuth oauth_consumer_key="key", oauth_signature="{SIGNATURE}"',
            f"authorization: {REDACTED}",
        ),
        (
            f"headers={{'Authorization': 'Bearer {TOKEN}', 'Accept': 'application/json'}}",
            f"headers={{'Authorization': '{REDACTED}', 'Accept': 'application/json'}}",
        ),
        (f'{{"authorization": "Bearer {TOKEN}", "x": 1}}', f'{{"authorization": "{REDACTED}", "x": 1}}'),
        (
            f"GET /users?oauth_signature={SIGNATURE}&limit=100",
            f"GET /users?oauth_signature={REDACTED}&limit=100",
        ),
        (f"token=Bearer {TOKEN} expired", f"token=Bearer {REDACTED} expired"),
        (
            f"grant_type=client_credentials&client_secret={SECRET}",
            f"grant_type=client_credentials&client_secret={REDACTED}",
        ),
        (
            f'{{"access_token": "{TOKEN}", "expires_in": 3600}}',
            f'{{"access_token": "{REDACTED}", "expires_in": 3600}}',
        ),
        ("nothing to hide here", "nothing to hide here"),
    ],
)
def test_credential_patterns_are_redacted(text: str, expected: str) -> None:
    assert RedactingFilter().redact(text) == expected


def test_registered_secret_is_redacted_anywhere() -> None:
    redactor = RedactingFilter()
    redactor.register(SECRET)
    assert redactor.redact(f"connecting with {SECRET}!") == f"connecting with {REDACTED}!"


def test_an_owned_secret_is_redacted_until_its_owner_replaces_or_releases_it() -> None:
    redactor = RedactingFilter()
    replacement = "cl-secret-replacement-0042"
    redactor.register(SECRET, owner="district-a")
    redactor.register(replacement, owner="district-a")
    assert redactor.redact(f"{SECRET} {replacement}") == f"{SECRET} {REDACTED}"
    redactor.release("district-a")
    redactor.release("district-a")
    assert redactor.redact(f"{SECRET} {replacement}") == f"{SECRET} {replacement}"


def test_a_secret_two_owners_share_stays_redacted_while_either_holds_it() -> None:
    redactor = RedactingFilter()
    redactor.register(SECRET, owner="district-a")
    redactor.register(SECRET, owner="district-b")
    redactor.release("district-a")
    assert redactor.redact(SECRET) == REDACTED
    redactor.release("district-b")
    assert redactor.redact(SECRET) == SECRET


def test_installed_redaction_covers_child_loggers_args_and_tracebacks(
    redactor: RedactingFilter, caplog: pytest.LogCaptureFixture
) -> None:
    redactor.register(SECRET)
    log = logging.getLogger("ew.test.child.logger")
    with caplog.at_level(logging.DEBUG):
        log.debug("secret is %s, header %r", SECRET, {"Authorization": f"Bearer {TOKEN}"})
        try:
            raise RuntimeError(f"OneRoster refused oauth_signature={SIGNATURE} for {SECRET}")
        except RuntimeError:
            log.exception("request failed")

    text = caplog.text
    assert SECRET not in text
    assert TOKEN not in text
    assert SIGNATURE not in text
    assert "secret is [REDACTED], header {'Authorization': '[REDACTED]'}" in text
    assert f"oauth_signature={REDACTED} for {REDACTED}" in text


def test_install_is_idempotent(redactor: RedactingFilter) -> None:
    assert install_redaction() is redactor
