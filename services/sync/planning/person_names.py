"""People's names as EW stores them (cleaned and cut to the roster's limit) and as the sync compares them."""

from __future__ import annotations

import re
import unicodedata

# RosterService rejects a blank name or one longer than this, which would fail the whole change set.
MAX_NAME = 200
# C0 controls, DEL and C1 controls: never written to EW.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")


def _ordinary(raw: str) -> bool:
    # isprintable() is False for every control character; this is the cheap test most names pass.
    return len(raw) <= MAX_NAME and raw.isprintable()


def clean_name(raw: str) -> str:
    """A name as sent to EW: control characters removed, trimmed, and cut to ``MAX_NAME``."""
    if _ordinary(raw):
        return raw.strip()
    value = _CONTROL.sub("", raw).strip()
    return value[:MAX_NAME].rstrip() if len(value) > MAX_NAME else value


def name_warnings(raw: str, label: str) -> tuple[str, ...]:
    """What ``clean_name`` changed beyond trimming, in words for the run's items; ``label`` names it."""
    if _ordinary(raw):
        return ()
    warnings: list[str] = []
    if has_control_characters(raw):
        warnings.append(f"Control characters were removed from the {label}.")
    if len(_CONTROL.sub("", raw).strip()) > MAX_NAME:
        warnings.append(f"The {label} was shortened to {MAX_NAME} characters, the most EW accepts.")
    return tuple(warnings)


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds a C0 or C1 control character or DEL."""
    return _CONTROL.search(text) is not None


def name_key(given_name: str, family_name: str) -> tuple[str, str]:
    """How two accounts' names are compared: NFKC, case-folded, without punctuation, spaces collapsed."""
    return _fold(given_name), _fold(family_name)


def _fold(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name).casefold()
    kept = "".join(char for char in folded if unicodedata.category(char)[0] not in "PC")
    return _SPACES.sub(" ", kept).strip()
