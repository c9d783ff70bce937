"""Secrets at rest: encrypted, rotatable, masked, and never in clear text where they should not be."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr, ValidationError

from services.common.secrets import (
    DEV_SECRET_KEY,
    MASK,
    SecretBox,
    SecretSettings,
    UndecryptableSecret,
    mask_hint,
)

CLASSLINK_SECRET = "cl-secret-7f3a9b2c4d5e6f708192a3b4k3Xz"


def test_encrypted_value_hides_the_secret_and_decrypts_back() -> None:
    box = SecretBox([Fernet.generate_key().decode()])
    stored = box.encrypt(CLASSLINK_SECRET)
    assert CLASSLINK_SECRET not in stored
    decrypted = box.decrypt(stored)
    assert decrypted.get_secret_value() == CLASSLINK_SECRET
    assert CLASSLINK_SECRET not in repr(decrypted)
    assert CLASSLINK_SECRET not in str(decrypted)


def test_encrypting_twice_gives_different_tokens() -> None:
    box = SecretBox([Fernet.generate_key().decode()])
    assert box.encrypt(SecretStr(CLASSLINK_SECRET)) != box.encrypt(CLASSLINK_SECRET)


def test_key_rotation_keeps_old_values_readable_then_moves_them_to_the_new_key() -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stored_under_old = SecretBox([old_key]).encrypt(CLASSLINK_SECRET)

    during_rotation = SecretBox([new_key, old_key])
    assert during_rotation.decrypt(stored_under_old).get_secret_value() == CLASSLINK_SECRET
    assert during_rotation.needs_rotation(stored_under_old)
    rotated = during_rotation.rotate(stored_under_old)
    assert not during_rotation.needs_rotation(rotated)
    assert not during_rotation.needs_rotation(during_rotation.encrypt("fresh value"))

    after_rotation = SecretBox([new_key])
    assert after_rotation.decrypt(rotated).get_secret_value() == CLASSLINK_SECRET
    with pytest.raises(UndecryptableSecret) as caught:
        after_rotation.decrypt(stored_under_old)
    assert "EW_SECRET_KEYS" in str(caught.value)
    with pytest.raises(UndecryptableSecret):
        after_rotation.needs_rotation(stored_under_old)
    with pytest.raises(UndecryptableSecret):
        after_rotation.rotate(stored_under_old)


def test_corrupt_value_is_undecryptable() -> None:
    box = SecretBox([Fernet.generate_key().decode()])
    stored = box.encrypt(CLASSLINK_SECRET)
    with pytest.raises(UndecryptableSecret):
        box.decrypt(stored[:-6] + "AAAAAA")


def test_settings_read_comma_separated_keys_newest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    new_key, old_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("EW_SECRET_KEYS", f" {new_key} , {old_key}")
    box = SecretBox.from_settings(SecretSettings())
    assert SecretBox([new_key]).decrypt(box.encrypt("x")).get_secret_value() == "x"
    assert box.decrypt(SecretBox([old_key]).encrypt("y")).get_secret_value() == "y"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "EW_SECRET_KEYS is not set"),
        ({"EW_SECRET_KEYS": "not-a-key"}, "EW_SECRET_KEYS entry 1 is not a Fernet key"),
        ({"EW_SECRET_KEYS": f"{Fernet.generate_key().decode()},"}, "EW_SECRET_KEYS entry 2 is empty"),
        ({"EW_SECRET_KEYS": DEV_SECRET_KEY}, "EW_SECRET_KEYS entry 1 is the public development key"),
    ],
)
def test_unusable_keys_fail_fast_naming_the_variable(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        SecretSettings()
    assert message in str(caught.value)


def test_dev_key_only_in_explicit_dev_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EW_SECRET_ALLOW_DEV_KEY", "true")
    box = SecretBox.from_settings(SecretSettings())
    assert SecretBox([DEV_SECRET_KEY]).decrypt(box.encrypt("x")).get_secret_value() == "x"


@pytest.mark.parametrize(
    ("secret", "hint"),
    [
        (CLASSLINK_SECRET, "…k3Xz"),
        (SecretStr(CLASSLINK_SECRET), "…k3Xz"),
        ("0123456789abcdef", "…cdef"),
        ("0123456789abcde", MASK),
        ("abc", MASK),
        ("", MASK),
    ],
)
def test_mask_hint_shows_at_most_the_last_four_characters_of_long_secrets(
    secret: str | SecretStr, hint: str
) -> None:
    assert mask_hint(secret) == hint
