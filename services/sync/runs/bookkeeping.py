"""The sync's own records after a committed change set: mappings and links, written idempotently.

What a commit created is read back from the roster service (``ListChangeSetResults``: ref → id;
refs are ClassLink sourcedIds), so the same code finishes a run normally and, after a crash
between commit and record, from recovery. Links are written in chunks, each in its own
transaction; the writes are computed from the stored links, so after an interruption computing and
writing them again completes them, and writing the same records twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from ew.client.roster import AsyncRosterClient
from ew.roster.v1 import roster_pb2
from sqlalchemy.orm import Session

from services.sync.store import links, mappings
from services.sync.store.mappings import MappingValues
from services.sync.vocabulary import MappingOrigin

if TYPE_CHECKING:
    from services.sync.app import App

# Rows per bookkeeping transaction: each holds SQLite's write lock for a fraction of a second.
CHUNK = 5000

Row = TypeVar("Row")


async def write_in_chunks(
    app: App,
    rows: Iterable[Row],
    write: Callable[[Session, list[Row], int], object],
    *,
    fence: Callable[[Session], None],
    on_rows: Callable[[int], None] | None = None,
) -> int:
    """Write ``rows`` ``CHUNK`` at a time, each chunk in its own short transaction; returns how many.

    ``write(session, chunk, first)`` stores a chunk whose first row is row ``first``; ``fence`` runs
    first in each transaction and raises when the writer no longer owns the run; ``on_rows`` hears
    the rows written so far.
    """
    done = 0
    remaining = iter(rows)
    while chunk := list(itertools.islice(remaining, CHUNK)):

        def one(session: Session, chunk: list[Row] = chunk, first: int = done) -> None:
            fence(session)
            write(session, chunk, first)

        await app.transaction(one)
        done += len(chunk)
        if on_rows is not None:
            on_rows(done)
    return done


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


def save_school_mappings(
    session: Session,
    district_id: str,
    outcome: CommitOutcome,
    *,
    created_school_names: Mapping[str, str],
    auto_mappings: Mapping[str, tuple[str, str]],
    now: dt.datetime,
) -> None:
    """Store CREATED and AUTO mappings, in the caller's transaction (one row per school: few).

    ``created_school_names``: ClassLink id → name of the schools the plan created;
    ``auto_mappings``: ClassLink id → (EW school id, ClassLink name).
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


def teacher_links(
    outcome: CommitOutcome, matched_links: Mapping[str, str], person_ids: Mapping[str, Sequence[str]]
) -> dict[str, str]:
    """The links a committed change set calls for: ClassLink user → EW teacher.

    ``matched_links``: links to EW teachers that existed before the run; ``person_ids``: every
    sourcedId of a person with several rows, by the ref its upsert carried (recovery, which lacks
    them, links the ref alone and the next sync links the rest).
    """
    links = dict(matched_links)
    for ref, teacher_id in outcome.teacher_ids.items():
        links.update(dict.fromkeys(person_ids.get(ref, (ref,)), teacher_id))
    return links


async def write_links(
    app: App,
    district_id: str,
    writes: links.LinkWrites,
    *,
    fence: Callable[[Session], None],
    on_rows: Callable[[int], None] | None = None,
) -> None:
    """Apply link writes in chunks of ``CHUNK`` rows, each in its own short transaction.

    On SQLite one long transaction would hold the only write lock for seconds at 100,000 teachers,
    and every heartbeat and event would wait for it. ``fence`` runs first in each transaction and
    raises when the writer no longer owns the run; ``on_rows`` hears the rows written so far.
    """
    done = 0
    for chunk in writes.chunks(CHUNK):

        def write(session: Session, chunk: links.LinkWrites = chunk) -> None:
            fence(session)
            links.apply_link_writes(session, district_id, chunk)

        await app.transaction(write)
        done += len(chunk)
        if on_rows is not None:
            on_rows(done)
