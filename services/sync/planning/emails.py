"""Email addresses as the roster compares them, and a pragmatic validity check."""

from __future__ import annotations

from services.sync.planning.person_names import has_control_characters

MAX_EMAIL_LENGTH = 254


def email_key(email: str) -> str:
    """The comparison key the roster service uses: trimmed and case-folded."""
    return email.strip().casefold()


def is_valid_email(email: str) -> bool:
    """Whether a trimmed address looks deliverable enough to become a teacher's login.

    Deliberately small (no IDN or quoted local parts): one ``@``, a non-empty local part, a domain
    of non-empty dot-separated labels with at least one dot, no whitespace inside, at most 254
    characters. Surrounding spaces are ignored, as ``email_key`` ignores them, but a control
    character anywhere (even a trailing newline or NEL, which ``str.strip`` would hide) is invalid.
    """
    if not email.isprintable() and has_control_characters(email):
        return False
    address = email.strip()
    if not address or len(address) > MAX_EMAIL_LENGTH or address.count("@") != 1:
        return False
    # str.isprintable is False for every whitespace and control character except the ASCII space.
    if " " in address or not address.isprintable():
        return False
    local, _, domain = address.partition("@")
    return (
        bool(local)
        and "." in domain
        and not domain.startswith(".")
        and not domain.endswith(".")
        and ".." not in domain
    )
