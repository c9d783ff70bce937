"""The one conversion from a OneRoster pull to the planner's ``SourceRoster`` (preview and runs share it)."""

from __future__ import annotations

from services.sync.oneroster import Roster
from services.sync.planner import SourceProblem, SourceRoster, SourceSchool, SourceTeacher

TEACHER_COLLECTION = "teachers"


def to_source_roster(roster: Roster) -> SourceRoster:
    """The planner's view of a complete pull.

    Unreadable teacher rows become ``SourceProblem`` s (reported as skipped; they never cause an
    archive). An unreadable school row is left out: its teachers keep their other schools.
    """
    return SourceRoster(
        schools=[
            SourceSchool(sourced_id=org.sourced_id, name=org.name, status=org.status.value)
            for org in roster.schools
        ],
        teachers=[
            SourceTeacher(
                sourced_id=user.sourced_id,
                given_name=user.given_name,
                family_name=user.family_name,
                email=user.email,
                status=user.status.value,
                enabled=user.enabled_user,
                org_sourced_ids=user.org_sourced_ids,
            )
            for user in roster.teachers
        ],
        problems=[
            SourceProblem(sourced_id=problem.sourced_id, reason_text=problem.reason)
            for problem in roster.problems
            if problem.collection == TEACHER_COLLECTION
        ],
    )
