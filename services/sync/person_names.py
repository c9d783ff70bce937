"""People's names as EW stores them (cleaned and cut to the roster's limit) and as the sync compares them."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# RosterService rejects a blank name or one longer than this, which would fail the whole change set.
MAX_NAME = 200
# C0 controls, DEL and C1 controls: never written to EW.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class CleanName:
    """A name ready for EW and the warnings its cleaning produced (for the run's items)."""

    value: str
    warnings: tuple[str, ...]


def clean_name(raw: str, label: str) -> CleanName:
    """Control characters removed, trimmed, and cut to ``MAX_NAME``; ``label`` names it in warnings."""
    warnings: list[str] = []
    value = _CONTROL.sub("", raw)
    if value != raw:
        warnings.append(f"Control characters were removed from the {label}.")
    value = value.strip()
    if len(value) > MAX_NAME:
        value = value[:MAX_NAME].rstrip()
        warnings.append(f"The {label} was shortened to {MAX_NAME} characters, the most EW accepts.")
    return CleanName(value, tuple(warnings))


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
