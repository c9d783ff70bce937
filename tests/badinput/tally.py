"""Counts of the bad-input tables: per table, rows tried, with the right outcome, and that changed nothing.

Each table's test records its row here before asserting, so a failing row still counts as tried;
``conftest.py`` prints the counts at the end of the session.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Counts:
    tried: int = 0
    right: int = 0
    unchanged: int = 0


TABLES: dict[str, Counts] = {}


def record(table: str, *, right: bool, unchanged: bool) -> None:
    """Count one row of ``table``: whether its outcome was the expected one and whether it changed nothing."""
    counts = TABLES.setdefault(table, Counts())
    counts.tried += 1
    counts.right += right
    counts.unchanged += unchanged


def lines() -> list[str]:
    """The count table, one line per table and a total."""
    width = max([len(name) for name in TABLES] + [5])
    header = f"{'table':<{width}}  {'tried':>5}  {'right status':>12}  {'changed nothing':>15}"
    rows = [header, "-" * len(header)]
    total = Counts()
    for name, counts in TABLES.items():
        rows.append(f"{name:<{width}}  {counts.tried:>5}  {counts.right:>12}  {counts.unchanged:>15}")
        total.tried += counts.tried
        total.right += counts.right
        total.unchanged += counts.unchanged
    rows.append(f"{'total':<{width}}  {total.tried:>5}  {total.right:>12}  {total.unchanged:>15}")
    return rows
