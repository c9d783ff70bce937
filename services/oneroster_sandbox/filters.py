"""OneRoster ``filter`` expressions: ``field op 'value'``, optionally two joined by AND or OR."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_PREDICATE = re.compile(r"\s*([A-Za-z_.]+)\s*(!=|>=|<=|=|>|<|~)\s*'((?:[^']|'')*)'\s*")
_LOGICAL = re.compile(r"\s+(AND|OR)\s+")


class FilterError(ValueError):
    """A filter the sandbox cannot evaluate; becomes a 400 ``invalid_filter_field``."""


@dataclass(frozen=True)
class Predicate:
    """One ``field op 'value'`` comparison of a OneRoster ``filter`` parameter."""

    field: str
    op: str
    value: str


def parse_filter(expression: str) -> tuple[list[Predicate], str]:
    """The predicates and the logical operator joining them ("AND" when there is one predicate)."""
    parts = _LOGICAL.split(expression.strip())
    predicates, logicals = parts[0::2], set(parts[1::2])
    if len(predicates) > 2 or len(logicals) > 1:
        raise FilterError("at most two predicates joined by one AND or OR are supported")
    parsed = []
    for text in predicates:
        match = _PREDICATE.fullmatch(text)
        if match is None:
            raise FilterError(f"cannot read predicate {text!r}; expected field<op>'value'")
        parsed.append(Predicate(match[1], match[2], match[3].replace("''", "'")))
    return parsed, (logicals.pop() if logicals else "AND")


def _as_date(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def compile_filter(expression: str, fields: dict[str, Callable[[Any], object]]) -> Callable[[Any], bool]:
    """A predicate over records; ``fields`` maps filterable field names to getters."""
    predicates, logical = parse_filter(expression)
    tests = []
    for predicate in predicates:
        getter = fields.get(predicate.field)
        if getter is None:
            raise FilterError(
                f"cannot filter on '{predicate.field}'; filterable: {', '.join(sorted(fields))}"
            )
        tests.append(_compile(predicate, getter))
    if logical == "OR":
        return lambda record: any(test(record) for test in tests)
    return lambda record: all(test(record) for test in tests)


def _compile(predicate: Predicate, getter: Callable[[Any], object]) -> Callable[[Any], bool]:
    op = predicate.op
    comparable: object = predicate.value
    if predicate.field == "dateLastModified":
        try:
            comparable = _as_date(predicate.value)
        except ValueError as exc:
            raise FilterError(f"'{predicate.value}' is not an ISO 8601 date") from exc

    def values(record: Any) -> list[Any]:
        raw = getter(record)
        return list(raw) if isinstance(raw, list | tuple) else [raw]

    def test(record: Any) -> bool:
        for value in values(record):
            if value is None:
                continue
            if op == "~" and str(comparable).lower() in str(value).lower():
                return True
            if op == "=" and value == comparable:
                return True
            if op == "!=" and value != comparable:
                return True
            if op in (">", ">=", "<", "<=") and _ordered(value, op, comparable):
                return True
        return False

    return test


def _ordered(value: Any, op: str, comparable: Any) -> bool:
    if op == ">":
        return bool(value > comparable)
    if op == ">=":
        return bool(value >= comparable)
    if op == "<":
        return bool(value < comparable)
    return bool(value <= comparable)
