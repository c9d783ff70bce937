"""Encryption at rest for connection secrets (ClassLink OAuth secret, bearer/OAuth2 secrets).

``SecretBox`` is a ``MultiFernet`` over the keys in ``EW_SECRET_KEYS`` (comma-separated, newest
first): the first key encrypts, every listed key decrypts, and ``rotate`` re-encrypts a stored
value under the first key. Rotation: put a new key first, re-encrypt every stored value (those for
which ``needs_rotation`` is true), then drop the old key.

Decrypted values come back as ``SecretStr`` so a stray log line or repr shows ``'**********'``.
"""

from __future__ import annotations

from typing import Self

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "ZXctcm9zdGVyc3luYy1kZXYta2V5LW5vdC1zZWNyZXQ="
"""Fernet key for development. Public by design: accepted only with ``EW_SECRET_ALLOW_DEV_KEY=true``."""

MASK = "**********"
HINT_MIN_LENGTH = 16


class UndecryptableSecret(Exception):
    """No configured key decrypts a stored value: a key was dropped before rotation, or it is corrupt."""

    def __init__(self) -> None:
        super().__init__(
            "A stored secret cannot be decrypted with any key in EW_SECRET_KEYS; restore the key it was "
            "encrypted with, or enter the credential again."
        )


class SecretSettings(BaseSettings):
    """Encryption keys, from ``EW_SECRET_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="EW_SECRET_", extra="ignore")

    keys: SecretStr | None = None
    allow_dev_key: bool = False

    @model_validator(mode="after")
    def _check_keys(self) -> Self:
        self.key_list()
        return self

    def key_list(self) -> list[str]:
        """The configured keys, newest first; fails naming the variable when unusable."""
        if self.keys is None or not self.keys.get_secret_value().strip():
            if self.allow_dev_key:
                return [DEV_SECRET_KEY]
            raise ValueError(
                "EW_SECRET_KEYS is not set: set it to one or more comma-separated Fernet keys, newest first "
                "(or EW_SECRET_ALLOW_DEV_KEY=true for local development)"
            )
        keys = [key.strip() for key in self.keys.get_secret_value().split(",")]
        for position, key in enumerate(keys, start=1):
            if not key:
                raise ValueError(f"EW_SECRET_KEYS entry {position} is empty")
            try:
                Fernet(key)
            except ValueError as error:
                raise ValueError(
                    f"EW_SECRET_KEYS entry {position} is not a Fernet key (32 url-safe base64-encoded bytes)"
                ) from error
            if key == DEV_SECRET_KEY and not self.allow_dev_key:
                raise ValueError(
                    f"EW_SECRET_KEYS entry {position} is the public development key; generate your own"
                )
        return keys


class SecretBox:
    """Encrypts and decrypts secrets with the configured keys."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("SecretBox needs at least one key")
        self._current = Fernet(keys[0])
        self._all = MultiFernet([Fernet(key) for key in keys])

    @classmethod
    def from_settings(cls, settings: SecretSettings) -> SecretBox:
        """The box for ``EW_SECRET_KEYS``."""
        return cls(settings.key_list())

    def encrypt(self, plaintext: str | SecretStr) -> str:
        """An opaque token for storage, encrypted under the newest key."""
        value = plaintext.get_secret_value() if isinstance(plaintext, SecretStr) else plaintext
        return self._all.encrypt(value.encode()).decode("ascii")

    def decrypt(self, token: str) -> SecretStr:
        """The stored secret, with any configured key."""
        try:
            return SecretStr(self._all.decrypt(token.encode("ascii")).decode())
        except (InvalidToken, UnicodeError) as error:
            raise UndecryptableSecret() from error

    def needs_rotation(self, token: str) -> bool:
        """True when ``token`` is readable but not encrypted under the newest key."""
        try:
            self._current.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeError):
            self.decrypt(token)
            return True
        return False

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted under the newest key."""
        try:
            return self._all.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as error:
            raise UndecryptableSecret() from error


def mask_hint(secret: str | SecretStr) -> str:
    """What a response may show of a secret: its last four characters when it is long enough."""
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if len(value) < HINT_MIN_LENGTH:
        return MASK
    return f"…{value[-4:]}"
