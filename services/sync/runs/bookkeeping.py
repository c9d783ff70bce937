"""The sync's own records after a committed change set: mappings and links, written idempotently.

What a commit created is read back from the roster service (``ListChangeSetResults``: ref → id;
refs are ClassLink sourcedIds), so the same code finishes a run normally and, after a crash
between commit and record, from recovery. Writing the same records twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ew.client.roster import AsyncRosterClient
from ew.roster.v1 import roster_pb2
from sqlalchemy.orm import Session

from services.sync.store import links, mappings
from services.sync.store.mappings import MappingValues
from services.sync.vocabulary import MappingOrigin


@dataclass
class CommitOutcome:
    """What a committed change set did, by ref: created schools, and the teacher of every upsert."""

    school_ids: dict[str, str] = field(default_factory=dict)
    teacher_ids: dict[str, str] = field(default_factory=dict)


async def read_outcome(roster: AsyncRosterClient, change_set_name: str) -> CommitOutcome:
    """Every result of a committed change set."""
    outcome = CommitOutcome()
    async for result in roster.list_change_set_results(change_set_name):
        if result.kind == roster_pb2.CHANGE_KIND_CREATE_SCHOOL:
            outcome.school_ids[result.ref] = result.resource_id
        elif result.kind == roster_pb2.CHANGE_KIND_UPSERT_TEACHER:
            outcome.teacher_ids[result.ref] = result.resource_id
    return outcome


def record(
    session: Session,
    district_id: str,
    outcome: CommitOutcome,
    *,
    created_school_names: Mapping[str, str],
    auto_mappings: Mapping[str, tuple[str, str]],
    matched_links: Mapping[str, str],
    person_ids: Mapping[str, Sequence[str]],
    now: dt.datetime,
) -> None:
    """Store CREATED and AUTO mappings and the teacher links, in the caller's transaction.

    ``created_school_names``: ClassLink id → name of the schools the plan created;
    ``auto_mappings``: ClassLink id → (EW school id, ClassLink name); ``matched_links``: links to
    EW teachers that existed before the run; ``person_ids``: every sourcedId of a person with
    several rows, by the ref its upsert carried (recovery, which lacks them, links the ref alone and
    the next sync links the rest).
    """
    values = [
        MappingValues(
            classlink_school_id=classlink_id,
            ew_school_id=school_id,
            origin=MappingOrigin.CREATED,
            classlink_name=created_school_names.get(classlink_id, ""),
        )
        for classlink_id, school_id in outcome.school_ids.items()
    ]
    values += [
        MappingValues(
            classlink_school_id=classlink_id,
            ew_school_id=school_id,
            origin=MappingOrigin.AUTO,
            classlink_name=name,
        )
        for classlink_id, (school_id, name) in auto_mappings.items()
        if classlink_id not in outcome.school_ids
    ]
    if values:
        mappings.save_mappings(session, district_id, values, now)
    teacher_links = dict(matched_links)
    for ref, teacher_id in outcome.teacher_ids.items():
        teacher_links.update(dict.fromkeys(person_ids.get(ref, (ref,)), teacher_id))
    if teacher_links:
        links.save_links(session, district_id, teacher_links, now)
