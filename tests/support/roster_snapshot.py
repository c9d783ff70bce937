"""A district's whole EW roster, and the one verdict a fault may leave it in: unchanged or fully synced.

``RosterSnapshot`` holds every school and every teacher (state, names, email, memberships).
``verdict`` compares a snapshot taken after a run with the one taken before it and with what the
sandbox's ground truth says a complete sync lands (``services.oneroster_sandbox.truth``): anything
in between — some teachers written, a school missing, a teacher archived who is still in ClassLink —
fails with the differences.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ew.client.roster import RosterClient

from services.oneroster_sandbox.truth import TeacherRow, active_schools, ew_teachers, expected_active

BEFORE = "before"
SYNCED = "synced"


@dataclass(frozen=True)
class RosterSnapshot:
    """Every school (id → name) and every teacher (email key → row) of one district."""

    schools: dict[str, str]
    teachers: dict[str, TeacherRow]

    def active(self) -> dict[str, TeacherRow]:
        """The active teachers only."""
        return {key: row for key, row in self.teachers.items() if row.active}


def snapshot(roster: RosterClient, district_id: str) -> RosterSnapshot:
    """The district as EW's roster service holds it now."""
    schools = {school.school_id: school.display_name for school in roster.list_schools(district_id)}
    return RosterSnapshot(schools, ew_teachers(roster.list_teachers(district_id)))


def _differences(expected: Mapping[str, Any], found: Mapping[str, Any]) -> list[str]:
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    changed = sorted(key for key in set(expected) & set(found) if expected[key] != found[key])
    return (
        [f"missing {missing[:5]}"] * bool(missing)
        + [f"unexpected {extra[:5]}"] * bool(extra)
        + [f"different {changed[:5]}"] * bool(changed)
    )


def synced_differences(after: RosterSnapshot, before: RosterSnapshot, truth: Mapping[str, Any]) -> list[str]:
    """How ``after`` differs from a complete sync of ``truth`` over ``before`` (empty: it is one)."""
    by_name = {name: school_id for school_id, name in after.schools.items()}
    wanted = {school["name"] for school in active_schools(truth)}
    problems = [f"schools missing: {sorted(wanted - set(by_name))[:5]}"] * bool(wanted - set(by_name))
    if problems:
        return problems
    mapping = {school["sourcedId"]: by_name[school["name"]] for school in active_schools(truth)}
    problems += [
        f"active teachers: {d}" for d in _differences(expected_active(truth, mapping), after.active())
    ]
    # Nobody disappears: a teacher who left ClassLink is archived, never deleted.
    gone = sorted(set(before.teachers) - set(after.teachers))
    problems += [f"teachers deleted: {gone[:5]}"] * bool(gone)
    lost = sorted(set(before.schools) - set(after.schools))
    return problems + [f"schools deleted: {lost[:5]}"] * bool(lost)


def verdict(after: RosterSnapshot, before: RosterSnapshot, truth: Mapping[str, Any]) -> str:
    """``BEFORE`` or ``SYNCED``; AssertionError naming the differences when it is neither."""
    if after == before:
        return BEFORE
    problems = synced_differences(after, before, truth)
    if not problems:
        return SYNCED
    changed = _differences(before.teachers, after.teachers) + _differences(before.schools, after.schools)
    raise AssertionError(
        "the roster is neither as before the run nor fully synced:\n"
        f"  against before: {changed}\n  against synced: {problems}"
    )
