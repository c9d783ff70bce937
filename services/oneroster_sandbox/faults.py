"""Faults the sandbox injects into OneRoster collection reads, set by flag or admin endpoint.

A fault is a JSON object ``{"kind": ..., "times": 1, "skip": 0, "path": null, ...}``:

* ``status``: answer ``status`` (default 503) with an imsx error body; ``retry_after`` (seconds or an
  HTTP date) adds a ``Retry-After`` header. ``{"kind": "status", "status": 429, "retry_after": "1"}``.
* ``reset``: drop the connection with a TCP reset, sending no response at all.
* ``slow``: wait ``delay`` seconds, then answer normally.
* ``truncate``: answer 200 with only the first half of the JSON body.
* ``total_change``: add a new teacher to the district before answering, so ``X-Total-Count`` changes
  in the middle of a pull.
* ``short_page``: drop the last ``drop`` (default 1) rows of the page, keeping ``X-Total-Count``.
* ``overlap``: serve the page from ``offset - 1``, repeating the previous page's last row.
* ``bad_row``: replace the page's first row with ``row`` (any JSON value; default an object without
  a ``sourcedId``), or its first rows with the list ``rows``, as a server with broken records would:
  ``{"kind": "bad_row", "path": "teachers", "rows": [7, {"sourcedId": 12}, {"email": "a@b.org"}]}``.
* ``invalid_utf8``: answer 200 with a page whose last string holds bytes that are not UTF-8.
* ``deep_nesting``: answer 200 with the collection nested ``depth`` (default 100,000) arrays deep.

``times`` is how many matching requests the fault hits (-1: every one); ``skip`` lets that many
matching requests through first (to hit the middle of a pull); ``path`` limits the fault to request
paths containing it (e.g. "teachers").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KINDS = (
    "status",
    "reset",
    "slow",
    "truncate",
    "total_change",
    "short_page",
    "overlap",
    "bad_row",
    "invalid_utf8",
    "deep_nesting",
)
BAD_ROW = {"status": "active", "role": "teacher", "givenName": "No", "familyName": "Identifier"}


@dataclass
class Fault:
    """One fault as the module docstring describes it; ``times`` -1 hits every matching request."""

    kind: str
    times: int = 1
    skip: int = 0
    path: str | None = None
    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    drop: int = 1
    row: Any = None
    rows: list[Any] | None = None
    depth: int = 100_000

    @classmethod
    def from_json(cls, spec: Any) -> Fault:
        """The fault a JSON object describes; ValueError for unknown fields or kinds."""
        if not isinstance(spec, dict):
            raise ValueError("a fault must be a JSON object")
        unknown = set(spec) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}")
        fault = cls(**spec)
        if fault.kind not in KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; expected one of {', '.join(KINDS)}")
        if fault.retry_after is not None:
            fault.retry_after = str(fault.retry_after)
        return fault

    def to_json(self) -> dict[str, Any]:
        """The fault as a JSON object, with the ``times`` and ``skip`` it has left."""
        return dict(vars(self))


class FaultPlan:
    """The active faults, consumed in order by matching requests."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def replace(self, specs: list[Any]) -> None:
        """Replaces the active faults with the ones ``specs`` describe."""
        self.faults = [Fault.from_json(spec) for spec in specs]

    def take(self, path: str) -> Fault | None:
        """The fault that hits this request, if any, counting it against its ``times``/``skip``."""
        for fault in self.faults:
            if fault.times == 0 or (fault.path and fault.path not in path):
                continue
            if fault.skip > 0:
                fault.skip -= 1
                continue
            if fault.times > 0:
                fault.times -= 1
            return fault
        return None
