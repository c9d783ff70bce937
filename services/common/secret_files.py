"""Secrets as files: ``NAME_FILE=/run/secrets/x`` stands for ``NAME=<the file's content>``.

Container platforms (Docker and Compose secrets, Kubernetes secret volumes) hand secrets over as
files, so no key or password sits in a process's environment. Every process calls
``apply_secret_files()`` first thing in ``main()``; it fills each variable of ``SECRET_VARIABLES``
from its ``_FILE`` twin (the content without its trailing newline) and refuses both at once.
``EW_JWT_PUBLIC_KEY_FILE``, ``EW_JWT_PRIVATE_KEY_FILE`` and ``EW_TLS_*_FILE`` are file settings of
their own and read by their settings classes. ``EW_BROKER_URL`` is read before ``main()`` (when the
broker module is imported), so it is resolved through ``secret_value``.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

SECRET_VARIABLES = (
    "EW_ROSTER_DATABASE_URL",
    "EW_ROSTER_PAGE_TOKEN_KEY",
    "EW_SYNC_DATABASE_URL",
    "EW_SYNC_PAGE_TOKEN_KEY",
    "EW_SYNC_CLASSLINK_CLIENT_SECRET",
    "EW_SYNC_CLASSLINK_PARTNER_TOKEN",
    "EW_SECRET_KEYS",
    "EW_JWT_SECRET",
    "EW_BROKER_URL",
)
FILE_SUFFIX = "_FILE"


class SecretFileError(ValueError):
    """A ``_FILE`` variable that cannot be used."""


def secret_value(name: str, environ: MutableMapping[str, str] | None = None) -> str | None:
    """``name``'s value, read from the file ``name_FILE`` names when that is set; None when neither is."""
    environ = os.environ if environ is None else environ
    path = environ.get(name + FILE_SUFFIX, "").strip()
    if not path:
        return environ.get(name)
    if environ.get(name):
        raise SecretFileError(f"set {name} or {name}{FILE_SUFFIX}, not both")
    try:
        return Path(path).read_text().rstrip("\r\n")
    except OSError as error:
        raise SecretFileError(f"{name}{FILE_SUFFIX}={path} cannot be read: {error.strerror}") from error


def apply_secret_files(environ: MutableMapping[str, str] | None = None) -> None:
    """Set every secret variable given as a file from that file; exits naming a bad one."""
    environ = os.environ if environ is None else environ
    for name in SECRET_VARIABLES:
        if environ.get(name + FILE_SUFFIX, "").strip():
            try:
                value = secret_value(name, environ)
            except SecretFileError as error:
                raise SystemExit(f"Invalid secret file setting: {error}") from None
            environ[name] = value or ""
            del environ[name + FILE_SUFFIX]
