"""The district as EW has it: every school and teacher read through RosterService, as planner types."""

from __future__ import annotations

import sys
from collections.abc import Callable

from ew.client.errors import NotFoundError, PermissionDeniedError, RosterError, UnauthenticatedError
from ew.client.roster import AsyncRosterClient
from ew.roster.v1 import roster_pb2

from services.common.errors import DomainError, FailedPrecondition, Unavailable
from services.sync.planning.planner import EwRoster, EwSchool, EwTeacher

EXPORT_DEADLINE = 300.0
"""Seconds for the whole export stream: 250,000 teachers stream in well under a minute."""


def roster_failure(error: RosterError, district_id: str) -> DomainError:
    """What the administrator is told when RosterService cannot serve the district."""
    if isinstance(error, NotFoundError):
        return FailedPrecondition(
            f"District {district_id} does not exist in Education Walkthrough yet; "
            "it must be set up before ClassLink can be synced.",
            reason="EW_DISTRICT_NOT_FOUND",
        )
    if isinstance(error, UnauthenticatedError | PermissionDeniedError):
        # The sync service's own token was refused: a deployment fault no retry by the admin fixes.
        return Unavailable(
            "Education Walkthrough's roster service refused the sync service's identity "
            f"({error.code.name}); an operator must configure both services with the same EW_JWT_* keys.",
            reason="ROSTER_REFUSED_SERVICE_IDENTITY",
        )
    return Unavailable(
        f"Education Walkthrough's roster service did not answer ({error.code.name}); try again shortly.",
        reason="ROSTER_UNAVAILABLE",
    )


def _school(school: roster_pb2.School) -> EwSchool:
    return EwSchool(
        school_id=school.school_id,
        name=school.display_name,
        active=school.state != roster_pb2.SCHOOL_STATE_ARCHIVED,
        merged_into=school.merged_into_school_id,
    )


def _teacher(teacher: roster_pb2.Teacher, school_sets: dict[tuple[str, ...], frozenset[str]]) -> EwTeacher:
    key = tuple(teacher.school_ids)
    school_ids = school_sets.get(key)
    if school_ids is None:
        # Most teachers teach at one school: they share one set (and its interned ids) per school.
        school_ids = school_sets[key] = frozenset(map(sys.intern, key))
    return EwTeacher(
        teacher_id=teacher.teacher_id,
        given_name=teacher.given_name,
        family_name=teacher.family_name,
        email=teacher.email,
        school_ids=school_ids,
        active=teacher.state == roster_pb2.TEACHER_STATE_ACTIVE,
        archive_reason=teacher.archive_reason,
    )


async def read_ew_schools(roster: AsyncRosterClient, district_id: str) -> list[EwSchool]:
    """Every EW school of the district, archived ones included (marked, with the school they merged into)."""
    try:
        return [_school(school) async for school in roster.list_schools(district_id)]
    except RosterError as error:
        raise roster_failure(error, district_id) from None


async def read_ew_roster(
    roster: AsyncRosterClient,
    district_id: str,
    progress: Callable[[int, int], None] = lambda teachers, total: None,
) -> EwRoster:
    """Every EW school and teacher (active and archived) of the district, as one snapshot.

    One ``ExportDistrictRoster`` stream instead of paging: the roster reads the district in one
    transaction with two queries, and no page re-runs a count or a keyset seek. ``progress`` hears
    ``(teachers read, teachers in the snapshot)`` after every chunk.
    """
    schools: list[EwSchool] = []
    teachers: list[EwTeacher] = []
    school_sets: dict[tuple[str, ...], frozenset[str]] = {}
    total = 0
    try:
        async for chunk in roster.export_district_roster(district_id, timeout=EXPORT_DEADLINE):
            # The totals come with the first chunk only.
            total = total or chunk.total_teachers
            schools.extend(_school(school) for school in chunk.schools)
            teachers.extend(_teacher(teacher, school_sets) for teacher in chunk.teachers)
            progress(len(teachers), total)
    except RosterError as error:
        raise roster_failure(error, district_id) from None
    return EwRoster(schools=schools, teachers=teachers)
