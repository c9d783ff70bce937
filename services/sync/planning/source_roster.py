"""The one conversion from a OneRoster pull to the planner's ``SourceRoster`` (preview and runs share it)."""

from __future__ import annotations

from services.sync.oneroster import Roster
from services.sync.planning.planner import (
    SchoolProblem,
    SourceProblem,
    SourceRoster,
    SourceSchool,
    SourceStaff,
    SourceTeacher,
)

TEACHER_COLLECTION = "teachers"
SCHOOL_COLLECTION = "schools"


def to_source_roster(roster: Roster) -> SourceRoster:
    """The planner's view of a complete pull.

    Unreadable teacher rows become ``SourceProblem`` s with the sourcedId and email they still had
    (reported as skipped; they protect the teachers they name), unreadable school rows
    ``SchoolProblem`` s (their teachers keep their memberships). Unreadable rows of other staff are
    left out: such an account only ever keeps a teacher row from merging.
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
            SourceProblem(sourced_id=problem.sourced_id, reason_text=problem.reason, email=problem.email)
            for problem in roster.problems
            if problem.collection == TEACHER_COLLECTION
        ],
        staff=[
            SourceStaff(
                sourced_id=user.sourced_id,
                role=user.role,
                given_name=user.given_name,
                family_name=user.family_name,
                email=user.email,
                status=user.status.value,
                enabled=user.enabled_user,
            )
            for user in roster.staff
        ],
        school_problems=[
            SchoolProblem(sourced_id=problem.sourced_id, reason_text=problem.reason)
            for problem in roster.problems
            if problem.collection == SCHOOL_COLLECTION
        ],
    )
