"""Merging EW schools from the sync service: the roster merge, then the sync's mappings follow.

The fix for a school a sync created by mistake (a near-identical name that was not mapped before the
first sync): merge it into the school it should have been. The merge lands in RosterService as one
change set (teachers move, the merged school is archived with ``merged_into``); then every stored
mapping of the merged school is re-pointed at the target, as MANUAL. If the service stops between
the two, nothing is lost: wherever the sync reads a mapping (``planner.live_school_id``) it follows
the merged school to its target, so the next screen and the next sync see the same result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ew.client.errors import AbortedError, FailedPreconditionError, NotFoundError, RosterError
from ew.client.roster import AsyncRosterClient
from ew.roster.v1 import roster_pb2
from sqlalchemy.orm import Session

from services.common.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from services.sync.app import App
from services.sync.planning.ew_roster import read_ew_schools, roster_failure
from services.sync.planning.planner import EwSchool, live_school_id
from services.sync.store import mappings as store
from services.sync.vocabulary import MappingOrigin

MAX_ID_LENGTH = 255


@dataclass(frozen=True)
class MergeOutcome:
    """The school that received the teachers and the ClassLink schools whose mapping moved to it."""

    into: EwSchool
    moved_classlink_ids: tuple[str, ...]


def _roster_refusal(error: RosterError, district_id: str) -> DomainError:
    """A refused merge keeps its meaning (not found, archived, changed meanwhile); outages stay outages."""
    if isinstance(error, NotFoundError):
        return NotFound(error.message, reason="EW_SCHOOL_NOT_FOUND")
    if isinstance(error, FailedPreconditionError):
        return FailedPrecondition(error.message, reason=error.reason)
    if isinstance(error, AbortedError):
        return Aborted(f"{error.message} Try the merge again.", reason=error.reason)
    return roster_failure(error, district_id)


async def merge_in_roster(
    roster: AsyncRosterClient, district_id: str, pairs: Sequence[tuple[str, str]]
) -> None:
    """Merge each (school, into) pair in one roster change set, all or none."""
    changes = [
        roster_pb2.Change(merge_school=roster_pb2.MergeSchoolChange(school_id=school, into_school_id=into))
        for school, into in pairs
    ]
    try:
        change_set = await roster.create_change_set(district_id)
        await roster.stage_changes(change_set.name, 1, changes)
        await roster.commit_change_set(change_set.name)
    except RosterError as error:
        raise _roster_refusal(error, district_id) from None


def _check_ids(school_id: str, into_school_id: str) -> None:
    violations = [
        FieldViolation(field, "required: an EW school id")
        for field, value in (("ew_school_id", school_id), ("into_ew_school_id", into_school_id))
        if not value or len(value) > MAX_ID_LENGTH
    ]
    if not violations and school_id == into_school_id:
        violations.append(FieldViolation("into_ew_school_id", "a school cannot be merged into itself"))
    if violations:
        raise InvalidArgument.for_fields(violations)


class SchoolMerges:
    """The MergeSchool use case of one sync service."""

    def __init__(self, app: App) -> None:
        self._app = app

    async def merge(
        self, district_id: str, roster: AsyncRosterClient, school_id: str, into_school_id: str
    ) -> MergeOutcome:
        """Merge ``school_id`` into ``into_school_id`` in EW and move the mappings of the merged school."""
        _check_ids(school_id, into_school_id)
        schools = {school.school_id: school for school in await read_ew_schools(roster, district_id)}
        for field, value in (("ew_school_id", school_id), ("into_ew_school_id", into_school_id)):
            school = schools.get(value)
            if school is None:
                raise NotFound(
                    f"EW school {value} is not a school of district {district_id}.",
                    reason="EW_SCHOOL_NOT_FOUND",
                )
            if not school.active:
                raise FailedPrecondition(
                    f"EW school {school.name} ({value}, {field}) is archived; only active schools merge.",
                    reason="SCHOOL_ARCHIVED",
                )
        stored = await self._app.transaction(lambda session: store.list_mappings(session, district_id))
        holders = {
            mapping.classlink_school_id: live_school_id(mapping.ew_school_id, schools)
            for mapping in stored
            if mapping.origin is not MappingOrigin.UNMAPPED
        }
        moving = sorted(cl for cl, ew in holders.items() if ew == school_id)
        keeping = sorted(cl for cl, ew in holders.items() if ew == into_school_id)
        if moving and keeping:
            raise FailedPrecondition(
                f"EW schools {schools[school_id].name} and {schools[into_school_id].name} are mapped to "
                f"different ClassLink schools ({moving[0]} and {keeping[0]}); an EW school maps to one "
                "ClassLink school. Unmap one of them first.",
                reason="EW_SCHOOL_ALREADY_MAPPED",
            )
        await merge_in_roster(roster, district_id, [(school_id, into_school_id)])
        names = {mapping.classlink_school_id: mapping.classlink_name for mapping in stored}
        values = [store.MappingValues(cl, into_school_id, MappingOrigin.MANUAL, names[cl]) for cl in moving]
        now = self._app.clock()

        def save(session: Session) -> None:
            store.save_mappings(session, district_id, values, now)

        await self._app.transaction(save)
        return MergeOutcome(schools[into_school_id], tuple(moving))
