"""The webhook signature a receiver checks: HMAC-SHA256 over "timestamp.body", refused when changed or old."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from ew.client.webhooks import InvalidSignature, sign, verify

SECRET = "whsec-unit"
BODY = b'{"id":"e1","type":"sync_run.succeeded"}'
NOW = 1_800_000_000


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body_and_verifies() -> None:
    header = sign(SECRET, BODY, NOW)
    expected = hmac.new(SECRET.encode(), b"%d." % NOW + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"
    assert verify(SECRET, header, BODY, now=NOW + 10) == NOW


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [
        pytest.param("another-secret", BODY, NOW, id="wrong-secret"),
        pytest.param(SECRET, BODY.replace(b"succeeded", b"failed"), NOW, id="changed-body"),
        pytest.param(SECRET, BODY, NOW + 301, id="replayed-later"),
    ],
)
def test_a_changed_body_another_secret_or_an_old_timestamp_is_refused(
    secret: str, body: bytes, now: int
) -> None:
    with pytest.raises(InvalidSignature):
        verify(secret, sign(SECRET, BODY, NOW), body, now=now)


@pytest.mark.parametrize(
    "header", ["", "v1=abc", f"t=soon,v1={'0' * 64}", f"t={NOW}", f"t={NOW},t={NOW},v1=00"]
)
def test_a_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(InvalidSignature):
        verify(SECRET, header, BODY, now=NOW)


def test_a_header_with_several_signatures_verifies_when_one_matches() -> None:
    header = sign(SECRET, BODY, NOW) + ",v1=" + "0" * 64
    assert verify(SECRET, header, BODY, now=NOW) == NOW
