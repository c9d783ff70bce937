"""School name matching: identical-name auto-mapping and ranked suggestions for the rest.

Two strengths of "same name":

- ``normalise_name`` folds only what cannot change meaning (unicode accents, case, punctuation,
  whitespace). Auto-mapping uses it, and only when the name is unique on both sides.
- ``expand`` also expands the abbreviations districts use ("Elem", "HS", "St.", "Jr High", ...) and
  drops filler words. Suggestions score on it, and the school's level (elementary, middle, high, ...)
  decides the order first: a school of another level never ranks above a same-level one.

"St" is read as "Saint" when a name word follows it ("St. Mary's Academy") and as "Street" when it
ends the name or precedes a level or school word ("Main St Elementary"). "El" and "ES" are read as
"Elementary" only after the first word, so "El Camino Real High" keeps its "El".
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from rapidfuzz import fuzz, process

# Apostrophes vanish ("Mary's" == "Marys"); every other non-alphanumeric run separates words.
_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`]")
_SEPARATORS = re.compile(r"[\W_]+")

_ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "elem": ("elementary",),
    "elementry": ("elementary",),
    "ms": ("middle",),
    "jhs": ("junior", "high"),
    "hs": ("high",),
    "shs": ("senior", "high"),
    "jr": ("junior",),
    "sr": ("senior",),
    "ctr": ("center",),
    "cntr": ("center",),
    "centre": ("center",),
    "acad": ("academy",),
    "intl": ("international",),
    "prep": ("preparatory",),
    "mt": ("mount",),
    "ft": ("fort",),
    "sch": ("school",),
    "schl": ("school",),
    "ps": ("public", "school"),
    "dr": ("doctor",),
    "tech": ("technology",),
    "chtr": ("charter",),
    "lrng": ("learning",),
    "prek": ("pre-k",),
    "k8": ("k-8",),
    "k12": ("k-12",),
}
# Abbreviations that are ordinary words at the start of a name ("El Camino", "Mid Valley").
_NOT_FIRST: dict[str, tuple[str, ...]] = {
    "el": ("elementary",),
    "es": ("elementary",),
    "mid": ("middle",),
}
_FILLERS = frozenset({"school", "schools", "the", "of", "and", "at"})


class Level(StrEnum):
    """The grade band a school name announces."""

    ELEMENTARY = "elementary"
    MIDDLE = "middle"
    JUNIOR_HIGH = "junior high"
    HIGH = "high"
    K_8 = "k-8"
    K_12 = "k-12"
    EARLY = "early learning"
    OTHER = "other"


# Level phrases, longest first so "junior high" wins over "high".
_LEVEL_PHRASES: tuple[tuple[tuple[str, ...], Level], ...] = (
    (("early", "learning"), Level.EARLY),
    (("early", "childhood"), Level.EARLY),
    (("junior", "high"), Level.JUNIOR_HIGH),
    (("senior", "high"), Level.HIGH),
    (("elementary",), Level.ELEMENTARY),
    (("primary",), Level.ELEMENTARY),
    (("middle",), Level.MIDDLE),
    (("intermediate",), Level.MIDDLE),
    (("high",), Level.HIGH),
    (("k-8",), Level.K_8),
    (("k-12",), Level.K_12),
    (("preschool",), Level.EARLY),
    (("pre-k",), Level.EARLY),
)
_LEVEL_WORDS = frozenset(word for phrase, _ in _LEVEL_PHRASES for word in phrase) | _FILLERS
# Pairs of levels that can be the same school under two names; ranked just below same-level.
_COMPATIBLE = frozenset(
    {
        frozenset({Level.MIDDLE, Level.JUNIOR_HIGH}),
        frozenset({Level.K_8, Level.ELEMENTARY}),
        frozenset({Level.K_8, Level.MIDDLE}),
        frozenset({Level.K_8, Level.JUNIOR_HIGH}),
    }
)
_SAME, _RELATED, _OTHER_LEVEL = 0, 1, 2
# Multipliers that keep a related or different level visibly below a same-level match.
_TIER_WEIGHT = {_SAME: 1.0, _RELATED: 0.9, _OTHER_LEVEL: 0.5}

DEFAULT_MIN_SCORE = 60.0


def normalise_name(name: str) -> str:
    """Accents stripped, case-folded, punctuation as spaces, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()
    return " ".join(_SEPARATORS.sub(" ", _APOSTROPHES.sub("", bare)).split())


def _join_initials(words: list[str]) -> list[str]:
    """Glue runs of single letters ("p s 123" -> "ps 123"; "k 8" -> "k8")."""
    joined: list[str] = []
    run = ""
    for word in words:
        if len(word) == 1 and word.isalpha():
            run += word
            continue
        if run == "k" and word in {"8", "12"}:
            joined.append("k" + word)
            run = ""
            continue
        if run:
            joined.append(run)
            run = ""
        joined.append(word)
    if run:
        joined.append(run)
    return joined


def _expanded_words(name: str) -> list[str]:
    words = _join_initials(normalise_name(name).split())
    expanded: list[str] = []
    position = 0
    while position < len(words):
        word = words[position]
        following = words[position + 1] if position + 1 < len(words) else None
        if word == "pre" and following == "k":
            expanded.append("pre-k")
            position += 1
        elif word == "st":
            is_street = following is None or following in _LEVEL_WORDS or following in _ABBREVIATIONS
            expanded.append("street" if is_street else "saint")
        elif word in _ABBREVIATIONS:
            expanded.extend(_ABBREVIATIONS[word])
        elif position > 0 and word in _NOT_FIRST:
            expanded.extend(_NOT_FIRST[word])
        else:
            expanded.append(word)
        position += 1
    return expanded


def expand(name: str) -> tuple[str, ...]:
    """The name's words with abbreviations expanded and filler words ("school", "the", "of") dropped."""
    return tuple(word for word in _expanded_words(name) if word not in _FILLERS)


def _level_and_stem(words: Sequence[str]) -> tuple[Level, tuple[str, ...]]:
    """The last level phrase in the name (longest match), and the words left once it is removed."""
    found: tuple[Level, int, int] | None = None
    position = 0
    while position < len(words):
        for phrase, level in _LEVEL_PHRASES:
            end = position + len(phrase)
            if tuple(words[position:end]) == phrase:
                found = (level, position, end)
                position = end
                break
        else:
            position += 1
    if found is None:
        return Level.OTHER, tuple(words)
    level, start, end = found
    return level, tuple(words[:start]) + tuple(words[end:])


def school_level(name: str) -> Level:
    """The grade band the name announces, ``Level.OTHER`` when it names none."""
    return _level_and_stem(expand(name))[0]


def auto_map(
    classlink_schools: Mapping[str, str],
    ew_schools: Mapping[str, str],
    mapped_classlink_ids: Iterable[str],
    mapped_ew_ids: Iterable[str],
    blocked_classlink_ids: Iterable[str],
) -> list[tuple[str, str]]:
    """Pairs (ClassLink id, EW id) whose normalised names are identical and unique on both sides.

    Schools are given as id -> name. Already mapped ids on either side are left alone, and so are
    ClassLink schools an administrator unmapped (blocked); blocked schools still count when deciding
    whether a name is unique, so unmapping one of two namesakes does not map the other by name.
    """
    mapped_classlink = set(mapped_classlink_ids)
    mapped_ew = set(mapped_ew_ids)
    blocked = set(blocked_classlink_ids)
    classlink_keys = {
        school_id: normalise_name(name)
        for school_id, name in classlink_schools.items()
        if school_id not in mapped_classlink
    }
    ew_keys = {
        school_id: normalise_name(name)
        for school_id, name in ew_schools.items()
        if school_id not in mapped_ew
    }
    classlink_counts = Counter(classlink_keys.values())
    ew_by_key: dict[str, list[str]] = {}
    for school_id, key in ew_keys.items():
        ew_by_key.setdefault(key, []).append(school_id)
    pairs = [
        (classlink_id, ew_by_key[key][0])
        for classlink_id, key in classlink_keys.items()
        if classlink_id not in blocked
        and key
        and classlink_counts[key] == 1
        and len(ew_by_key.get(key, ())) == 1
    ]
    return sorted(pairs)


@dataclass(frozen=True, slots=True)
class Suggestion:
    """An EW school that looks like a ClassLink school; ``score`` runs from 0 to 100."""

    ew_school_id: str
    name: str
    score: float


@dataclass(frozen=True, slots=True)
class _Candidate:
    school_id: str
    name: str
    level: Level
    text: str


def _tier(a: Level, b: Level) -> int:
    if a == b:
        return _SAME
    if Level.OTHER in (a, b) or Level.K_12 in (a, b) or frozenset({a, b}) in _COMPATIBLE:
        return _RELATED
    return _OTHER_LEVEL


def _comparable(name: str) -> tuple[Level, str]:
    """The level and the text to score: the name without its level words (or all of it if nothing is left)."""
    words = expand(name)
    level, stem = _level_and_stem(words)
    return level, " ".join(stem or words)


class SuggestionIndex:
    """EW schools prepared once for ranking many ClassLink schools against them."""

    # How many more candidates than asked for are rescored, per tier, after the token-set pass.
    _OVERFETCH = 4

    def __init__(self, ew_schools: Mapping[str, str]) -> None:
        """Precompute the level and comparable text of every EW school (id -> name)."""
        self._candidates = [
            _Candidate(school_id, name, *_comparable(name)) for school_id, name in sorted(ew_schools.items())
        ]
        self._tiers_by_level: dict[Level, list[tuple[int, list[_Candidate], list[str]]]] = {}

    def _tiers(self, level: Level) -> list[tuple[int, list[_Candidate], list[str]]]:
        """The candidates split by tier for a query of ``level``, best tier first (cached per level)."""
        tiers = self._tiers_by_level.get(level)
        if tiers is None:
            grouped: dict[int, list[_Candidate]] = {}
            for candidate in self._candidates:
                grouped.setdefault(_tier(level, candidate.level), []).append(candidate)
            tiers = [(tier, group, [c.text for c in group]) for tier, group in sorted(grouped.items())]
            self._tiers_by_level[level] = tiers
        return tiers

    def suggest(
        self,
        name: str,
        *,
        exclude: frozenset[str] = frozenset(),
        limit: int = 5,
        min_score: float = DEFAULT_MIN_SCORE,
    ) -> list[Suggestion]:
        """Up to ``limit`` EW schools like ``name``, best first, leaving out ``exclude`` ids.

        The name part (without level words) must score at least ``min_score``. Same-level schools
        come first, then related or unknown levels, then other levels, each ordered by score;
        scores are weighted by that tier and never increase down the list.
        """
        level, text = _comparable(name)
        ranked: list[tuple[int, float, str, str]] = []
        for tier, candidates, texts in self._tiers(level):
            if len(ranked) >= limit:
                break
            hits = process.extract(
                text,
                texts,
                scorer=fuzz.token_set_ratio,
                processor=None,
                limit=limit * self._OVERFETCH + len(exclude),
                score_cutoff=min_score,
            )
            scored: list[tuple[int, float, str, str]] = []
            for _, token_set_score, position in hits:
                candidate = candidates[position]
                if candidate.school_id in exclude:
                    continue
                # token_set_ratio alone gives 100 to any subset ("Lincoln" vs "Lincoln Park"); the
                # whole-string ratio brings the extra words back into the score.
                raw = (token_set_score + fuzz.token_sort_ratio(text, candidate.text, processor=None)) / 2
                if raw >= min_score:
                    scored.append((tier, -raw * _TIER_WEIGHT[tier], candidate.name, candidate.school_id))
            ranked.extend(sorted(scored))
        suggestions: list[Suggestion] = []
        ceiling = 100.0
        for _, negative_score, school_name, school_id in ranked[:limit]:
            ceiling = min(ceiling, round(-negative_score, 1))
            suggestions.append(Suggestion(school_id, school_name, ceiling))
        return suggestions


def suggest(
    classlink_school_name: str,
    ew_schools: Mapping[str, str],
    *,
    exclude: frozenset[str] = frozenset(),
    limit: int = 5,
    min_score: float = DEFAULT_MIN_SCORE,
) -> list[Suggestion]:
    """Ranked EW schools (id -> name) for one ClassLink school; see ``SuggestionIndex.suggest``."""
    return SuggestionIndex(ew_schools).suggest(
        classlink_school_name, exclude=exclude, limit=limit, min_score=min_score
    )
