"""All SQL of the roster service. Functions take the caller's connection and never commit.

Writes are set-based: batches go in as one executemany, and a change set commits with a handful of
INSERT .. SELECT / UPDATE .. FROM statements over its staged rows, never one query per row.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    Table,
    and_,
    any_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql

from services.common.bulk import bulk_insert
from services.common.db import UTCDateTime
from services.roster import models
from services.roster.domain import (
    AuditAction,
    AuditRecord,
    ChangeCounts,
    ChangeKind,
    ChangeSet,
    ChangeSetResult,
    ChangeSetState,
    District,
    Outcome,
    School,
    SchoolChangeKind,
    SchoolState,
    Teacher,
    TeacherChangeKind,
    TeacherFilter,
    TeacherState,
)
from services.roster.staged import StagedBatchRows, StagedSchoolChangeRow, StagedTeacherKey, StagedTeacherRow
from services.roster.validation import email_key

districts = cast(Table, models.District.__table__)
schools = cast(Table, models.School.__table__)
teachers = cast(Table, models.Teacher.__table__)
teacher_schools = cast(Table, models.TeacherSchool.__table__)
idempotency = cast(Table, models.IdempotencyRecord.__table__)
change_sets = cast(Table, models.ChangeSet.__table__)
staged_batches = cast(Table, models.StagedBatch.__table__)
staged_schools = cast(Table, models.StagedSchool.__table__)
staged_teachers = cast(Table, models.StagedTeacher.__table__)
staged_memberships = cast(Table, models.StagedMembership.__table__)
staged_school_changes = cast(Table, models.StagedSchoolChange.__table__)
results = cast(Table, models.ChangeSetResult.__table__)
audit_events = cast(Table, models.AuditEvent.__table__)

COUNT_FIELDS = (
    "schools_created",
    "teachers_created",
    "teachers_updated",
    "teachers_unchanged",
    "teachers_archived",
    "teachers_reactivated",
    "schools_renamed",
    "schools_archived",
    "schools_merged",
    "teachers_restored",
    "teachers_removed",
    "schools_removed",
)
# Bind parameters per statement stay far below SQLite's limit (32766).
CHUNK = 1000


def _among(conn: Connection, column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL ``= ANY(:array)``, one parameter instead of 1000 binds."""
    if conn.dialect.name == "postgresql":
        return column == any_(literal(list(values), postgresql.ARRAY(column.type)))
    return column.in_(values)


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


# Districts


def insert_district(conn: Connection, district: District) -> None:
    """Insert a district (IntegrityError when the id is taken)."""
    conn.execute(
        insert(districts).values(
            id=district.district_id, display_name=district.display_name, create_time=district.create_time
        )
    )


def get_district(conn: Connection, district_id: str) -> District | None:
    """The district, or None."""
    row = conn.execute(select(districts).where(districts.c.id == district_id)).one_or_none()
    return District(row.id, row.display_name, row.create_time) if row else None


# Schools


def _school(row: Row[Any]) -> School:
    return School(
        row.id,
        row.district_id,
        row.display_name,
        row.create_time,
        row.update_time,
        SchoolState(row.state),
        row.merged_into,
        row.revision,
    )


def get_schools(conn: Connection, district_id: str, school_ids: Sequence[str]) -> dict[str, School]:
    """The district's schools among ``school_ids``, by id."""
    found: dict[str, School] = {}
    for chunk in _chunks(school_ids):
        query = select(schools).where(schools.c.district_id == district_id, _among(conn, schools.c.id, chunk))
        found.update({row.id: _school(row) for row in conn.execute(query)})
    return found


def list_schools(
    conn: Connection, district_id: str, after: tuple[str, str] | None, limit: int
) -> list[School]:
    """Schools ordered by display name then id, after the cursor."""
    query = select(schools).where(schools.c.district_id == district_id)
    if after:
        query = query.where(tuple_(schools.c.display_name, schools.c.id) > tuple_(*after))
    query = query.order_by(schools.c.display_name, schools.c.id).limit(limit)
    return [_school(row) for row in conn.execute(query)]


def count_schools(conn: Connection, district_id: str) -> int:
    """How many schools the district has."""
    query = select(func.count()).select_from(schools).where(schools.c.district_id == district_id)
    return int(conn.execute(query).scalar_one())


def insert_schools(conn: Connection, rows: Sequence[School]) -> None:
    """Insert schools in one executemany."""
    conn.execute(
        insert(schools),
        [
            {
                "id": s.school_id,
                "district_id": s.district_id,
                "display_name": s.display_name,
                "create_time": s.create_time,
                "update_time": s.update_time,
                "state": s.state.value,
                "merged_into": s.merged_into,
                "revision": s.revision,
            }
            for s in rows
        ],
    )


# Teachers


def _school_ids_of(conn: Connection, teacher_ids: Sequence[str]) -> dict[str, list[str]]:
    memberships: dict[str, list[str]] = defaultdict(list)
    for chunk in _chunks(teacher_ids):
        query = select(teacher_schools).where(_among(conn, teacher_schools.c.teacher_id, chunk))
        for row in conn.execute(query):
            memberships[row.teacher_id].append(row.school_id)
    return memberships


def _teachers(conn: Connection, rows: Sequence[Row[Any]]) -> list[Teacher]:
    return _with_schools(rows, _school_ids_of(conn, [row.id for row in rows]))


def _teacher(row: Row[Any], school_ids: tuple[str, ...]) -> Teacher:
    return Teacher(
        teacher_id=row.id,
        district_id=row.district_id,
        given_name=row.given_name,
        family_name=row.family_name,
        email=row.email,
        school_ids=school_ids,
        state=TeacherState(row.state),
        archive_time=row.archive_time,
        archive_reason=row.archive_reason,
        create_time=row.create_time,
        update_time=row.update_time,
        revision=row.revision,
    )


def _with_schools(rows: Iterable[Row[Any]], memberships: Mapping[str, Sequence[str]]) -> list[Teacher]:
    return [_teacher(row, tuple(sorted(memberships.get(row.id, [])))) for row in rows]


def get_teachers(
    conn: Connection, district_id: str, teacher_ids: Sequence[str], *, lock: bool = False
) -> dict[str, Teacher]:
    """The district's teachers among ``teacher_ids``, by id; ``lock`` holds them until commit."""
    rows: list[Row[Any]] = []
    for chunk in _chunks(teacher_ids):
        query = select(teachers).where(
            teachers.c.district_id == district_id, _among(conn, teachers.c.id, chunk)
        )
        rows.extend(conn.execute(query.with_for_update() if lock else query))
    return {t.teacher_id: t for t in _teachers(conn, rows)}


def teachers_by_email_key(
    conn: Connection, district_id: str, keys: Sequence[str], *, lock: bool = False
) -> dict[str, Teacher]:
    """The district's teachers whose email key is among ``keys``, by email key."""
    rows: list[Row[Any]] = []
    for chunk in _chunks(keys):
        query = select(teachers).where(
            teachers.c.district_id == district_id, _among(conn, teachers.c.email_key, chunk)
        )
        rows.extend(conn.execute(query.with_for_update() if lock else query))
    keyed = {row.id: row.email_key for row in rows}
    return {keyed[t.teacher_id]: t for t in _teachers(conn, rows)}


EXPORT_BATCH = 1000
"""Rows fetched per round trip while an export streams (a server-side cursor on PostgreSQL)."""


def export_totals(conn: Connection, district_id: str) -> tuple[int, int]:
    """How many schools and teachers the district has, archived ones included."""
    school_count = select(func.count()).where(schools.c.district_id == district_id).scalar_subquery()
    teacher_count = select(func.count()).where(teachers.c.district_id == district_id).scalar_subquery()
    row = conn.execute(select(school_count, teacher_count)).one()
    return int(row[0]), int(row[1])


def _streamed(conn: Connection, query: Select[Any]) -> Iterator[Row[Any]]:
    yield from conn.execute(query, execution_options={"yield_per": EXPORT_BATCH})


def export_schools(conn: Connection, district_id: str) -> Iterator[School]:
    """Every school of the district, archived ones included, in id order, fetched in batches."""
    query = select(schools).where(schools.c.district_id == district_id).order_by(schools.c.id)
    return (_school(row) for row in _streamed(conn, query))


def export_teachers(conn: Connection, district_id: str) -> Iterator[Teacher]:
    """Every teacher of the district with its schools, in id order, fetched in batches.

    Two queries whatever the size, both ordered by teacher id and merged as they stream, so only a
    batch of each is in memory at a time. Every membership belongs to one of these teachers and both
    follow the same order, so a teacher whose id is not the next membership group's has no schools.
    """
    member_query = (
        select(teacher_schools.c.teacher_id, teacher_schools.c.school_id)
        .join(teachers, teachers.c.id == teacher_schools.c.teacher_id)
        .where(teachers.c.district_id == district_id)
        .order_by(teacher_schools.c.teacher_id)
    )
    members = groupby(_streamed(conn, member_query), key=itemgetter(0))
    pending = next(members, None)
    query = select(teachers).where(teachers.c.district_id == district_id).order_by(teachers.c.id)
    for row in _streamed(conn, query):
        school_ids: tuple[str, ...] = ()
        if pending is not None and pending[0] == row.id:
            school_ids = tuple(sorted(member.school_id for member in pending[1]))
            pending = next(members, None)
        yield _teacher(row, school_ids)


def _filtered_teachers(district_id: str, filters: TeacherFilter) -> Select[Any]:
    query = select(teachers).where(teachers.c.district_id == district_id)
    if filters.state is not None:
        query = query.where(teachers.c.state == filters.state.value)
    if filters.email is not None:
        query = query.where(teachers.c.email_key == filters.email)
    if filters.school_id is not None:
        member = select(teacher_schools.c.teacher_id).where(teacher_schools.c.school_id == filters.school_id)
        query = query.where(teachers.c.id.in_(member))
    return query


def list_teachers(
    conn: Connection, district_id: str, filters: TeacherFilter, after: tuple[str, str] | None, limit: int
) -> list[Teacher]:
    """Teachers matching ``filters`` ordered by email key then id, after the cursor."""
    query = _filtered_teachers(district_id, filters)
    if after:
        query = query.where(tuple_(teachers.c.email_key, teachers.c.id) > tuple_(*after))
    query = query.order_by(teachers.c.email_key, teachers.c.id).limit(limit)
    return _teachers(conn, list(conn.execute(query)))


def count_teachers(conn: Connection, district_id: str, filters: TeacherFilter) -> int:
    """How many teachers match ``filters``."""
    query = select(func.count()).select_from(_filtered_teachers(district_id, filters).subquery())
    return int(conn.execute(query).scalar_one())


def email_key_of(conn: Connection, teacher_id: str) -> str:
    """The stored email key of a teacher (used as its list cursor)."""
    return str(conn.execute(select(teachers.c.email_key).where(teachers.c.id == teacher_id)).scalar_one())


def insert_teachers(conn: Connection, rows: Sequence[Teacher]) -> None:
    """Insert teachers in one executemany (not their schools); IntegrityError on a taken email."""
    if rows:
        conn.execute(
            insert(teachers),
            [
                {
                    "id": t.teacher_id,
                    "district_id": t.district_id,
                    "given_name": t.given_name,
                    "family_name": t.family_name,
                    "email": t.email,
                    "email_key": email_key(t.email),
                    "state": t.state.value,
                    "archive_time": t.archive_time,
                    "archive_reason": t.archive_reason,
                    "create_time": t.create_time,
                    "update_time": t.update_time,
                    "revision": t.revision,
                }
                for t in rows
            ],
        )


def update_teachers(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Update teachers locked by the caller; each dict holds ``id`` and the new column values."""
    for row in rows:
        values = {k: v for k, v in row.items() if k != "id"}
        conn.execute(update(teachers).where(teachers.c.id == row["id"]).values(**values))


def replace_memberships(conn: Connection, school_ids_by_teacher: Mapping[str, Sequence[str]]) -> None:
    """Make each teacher's school list exactly the given one."""
    teacher_ids = list(school_ids_by_teacher)
    for chunk in _chunks(teacher_ids):
        conn.execute(delete(teacher_schools).where(_among(conn, teacher_schools.c.teacher_id, chunk)))
    rows = [{"teacher_id": t, "school_id": s} for t, ids in school_ids_by_teacher.items() for s in ids]
    if rows:
        conn.execute(insert(teacher_schools), rows)


# Idempotency records


def get_idempotent(conn: Connection, district_id: str, method: str, request_id: str) -> list[str] | None:
    """The resource ids a previous call with this request id returned, or None."""
    query = select(idempotency.c.resource_ids).where(
        idempotency.c.district_id == district_id,
        idempotency.c.method == method,
        idempotency.c.request_id == request_id,
    )
    stored = conn.execute(query).scalar_one_or_none()
    return list(json.loads(stored)) if stored is not None else None


def put_idempotent(
    conn: Connection, district_id: str, method: str, request_id: str, ids: Sequence[str], now: dt.datetime
) -> None:
    """Remember what a call with this request id returned (IntegrityError when raced)."""
    conn.execute(
        insert(idempotency).values(
            district_id=district_id,
            method=method,
            request_id=request_id,
            resource_ids=json.dumps(list(ids)),
            create_time=now,
        )
    )


# Change sets


def _counts(row: Row[Any], prefix: str) -> ChangeCounts:
    return ChangeCounts(**{name: getattr(row, f"{prefix}_{name}") for name in COUNT_FIELDS})


def _change_set(row: Row[Any]) -> ChangeSet:
    return ChangeSet(
        change_set_id=row.id,
        district_id=row.district_id,
        state=ChangeSetState(row.state),
        staged=_counts(row, "staged"),
        applied=_counts(row, "applied"),
        create_time=row.create_time,
        expire_time=row.expire_time,
        end_time=row.end_time,
        abandon_reason=row.abandon_reason,
    )


def insert_change_set(
    conn: Connection,
    change_set_id: str,
    district_id: str,
    request_id: str | None,
    now: dt.datetime,
    ttl: dt.timedelta,
) -> None:
    """Open a change set (IntegrityError when the request id was used)."""
    zeros = {f"{p}_{n}": 0 for p in ("staged", "applied") for n in COUNT_FIELDS}
    conn.execute(
        insert(change_sets).values(
            id=change_set_id,
            district_id=district_id,
            request_id=request_id,
            state=ChangeSetState.OPEN.value,
            create_time=now,
            expire_time=now + ttl,
            **zeros,
        )
    )


def get_change_set(
    conn: Connection, district_id: str, change_set_id: str, *, lock: bool = False
) -> ChangeSet | None:
    """The district's change set, or None; ``lock`` serialises writers of one change set."""
    query = select(change_sets).where(
        change_sets.c.district_id == district_id, change_sets.c.id == change_set_id
    )
    row = conn.execute(query.with_for_update() if lock else query).one_or_none()
    return _change_set(row) if row else None


def change_set_id_for_request(conn: Connection, district_id: str, request_id: str) -> str | None:
    """The change set a CreateChangeSet with this request id opened, or None."""
    query = select(change_sets.c.id).where(
        change_sets.c.district_id == district_id, change_sets.c.request_id == request_id
    )
    return conn.execute(query).scalar_one_or_none()


def update_change_set(conn: Connection, change_set_id: str, **values: Any) -> None:
    """Set columns of a change set."""
    conn.execute(update(change_sets).where(change_sets.c.id == change_set_id).values(**values))


def add_staged_counts(
    conn: Connection, change_set_id: str, counts: ChangeCounts, expire_time: dt.datetime
) -> None:
    """Add a batch's counts to the change set and push its expiry out."""
    column = change_sets.c
    values = {f"staged_{n}": column[f"staged_{n}"] + getattr(counts, n) for n in COUNT_FIELDS}
    conn.execute(
        update(change_sets).where(column.id == change_set_id).values(expire_time=expire_time, **values)
    )


def abandon(conn: Connection, change_set_id: str, end_time: dt.datetime, reason: str) -> None:
    """Mark a change set abandoned, if it is still open."""
    column = change_sets.c
    conn.execute(
        update(change_sets)
        .where(column.id == change_set_id, column.state == ChangeSetState.OPEN.value)
        .values(state=ChangeSetState.ABANDONED.value, end_time=end_time, abandon_reason=reason)
    )


def expire(conn: Connection, change_set_id: str) -> None:
    """Mark a change set expired as of its expiry time, if it is still open."""
    column = change_sets.c
    conn.execute(
        update(change_sets)
        .where(column.id == change_set_id, column.state == ChangeSetState.OPEN.value)
        .values(state=ChangeSetState.EXPIRED.value, end_time=column.expire_time)
    )


def due_change_sets(conn: Connection, now: dt.datetime) -> list[str]:
    """Open change sets past their expiry."""
    query = select(change_sets.c.id).where(
        change_sets.c.state == ChangeSetState.OPEN.value, change_sets.c.expire_time <= now
    )
    return list(conn.execute(query).scalars())


def change_sets_with_staged_rows(conn: Connection) -> list[str]:
    """Ended change sets whose staged rows are still stored."""
    ended_sets = select(change_sets.c.id).where(change_sets.c.state != ChangeSetState.OPEN.value)
    query = (
        select(staged_batches.c.change_set_id)
        .distinct()
        .where(staged_batches.c.change_set_id.in_(ended_sets))
    )
    return list(conn.execute(query).scalars())


def purge_staged(conn: Connection, change_set_id: str) -> None:
    """Delete every staged row of a change set."""
    for table in (staged_school_changes, staged_memberships, staged_teachers, staged_schools, staged_batches):
        conn.execute(delete(table).where(table.c.change_set_id == change_set_id))


def batch_staged(conn: Connection, change_set_id: str, batch_number: int) -> bool:
    """Whether this batch number was staged already."""
    query = select(staged_batches.c.batch_number).where(
        staged_batches.c.change_set_id == change_set_id, staged_batches.c.batch_number == batch_number
    )
    return conn.execute(query).first() is not None


def staged_school_ids(conn: Connection, change_set_id: str, refs: Sequence[str]) -> dict[str, str]:
    """School ids allocated to already staged school refs, by ref."""
    found: dict[str, str] = {}
    for chunk in _chunks(refs):
        query = select(staged_schools.c.ref, staged_schools.c.school_id).where(
            staged_schools.c.change_set_id == change_set_id, _among(conn, staged_schools.c.ref, chunk)
        )
        found.update({row.ref: row.school_id for row in conn.execute(query)})
    return found


def staged_teacher_clashes(
    conn: Connection,
    change_set_id: str,
    teacher_ids: Sequence[str],
    refs: Sequence[str],
    email_keys: Sequence[str],
) -> list[StagedTeacherKey]:
    """Already staged teacher changes that share a teacher id, a ref or an email key with a new batch.

    One query per column, so each uses its own unique index instead of scanning the staged rows.
    """
    column = staged_teachers.c
    found: list[StagedTeacherKey] = []
    for key, values in (
        (column.teacher_id, teacher_ids),
        (column.ref, refs),
        (column.upsert_email_key, email_keys),
    ):
        if not values:
            continue
        query = select(column.position, column.teacher_id, column.ref, column.upsert_email_key).where(
            column.change_set_id == change_set_id, _among(conn, key, values)
        )
        found.extend(StagedTeacherKey(*row) for row in conn.execute(query))
    return found


def _staged_teacher_columns(row: StagedTeacherRow) -> dict[str, Any]:
    return {
        "position": row.position,
        "kind": row.kind.value,
        "outcome": row.outcome.value,
        "teacher_id": row.teacher_id,
        "read_revision": row.read_revision,
        "ref": row.ref,
        "given_name": row.given_name,
        "family_name": row.family_name,
        "email": row.email,
        "upsert_email_key": row.upsert_email_key,
        "schools_changed": row.schools_changed,
        "reactivate": row.reactivate,
        "reason": row.reason,
        "restore_state": row.restore_state,
    }


def _staged_school_change_columns(row: StagedSchoolChangeRow) -> dict[str, Any]:
    return {
        "school_id": row.school_id,
        "kind": row.kind.value,
        "read_revision": row.read_revision,
        "display_name": row.display_name,
        "into_school_id": row.into_school_id,
        "into_read_revision": row.into_read_revision,
    }


def staged_school_change_ids(conn: Connection, change_set_id: str, school_ids: Sequence[str]) -> list[str]:
    """Schools among ``school_ids`` that an earlier batch of the change set already changes."""
    found: list[str] = []
    c = staged_school_changes.c
    for chunk in _chunks(school_ids):
        query = select(c.school_id).where(c.change_set_id == change_set_id, _among(conn, c.school_id, chunk))
        found.extend(conn.execute(query).scalars())
    return found


def stage(conn: Connection, change_set_id: str, batch_number: int, rows: StagedBatchRows) -> None:
    """Store one batch's staged rows and its batch number (COPY on PostgreSQL, else executemany)."""
    conn.execute(insert(staged_batches).values(change_set_id=change_set_id, batch_number=batch_number))
    mine = {"change_set_id": change_set_id}
    for table, columns in (
        (
            staged_schools,
            [
                {**mine, "ref": s.ref, "school_id": s.school_id, "display_name": s.display_name}
                for s in rows.schools
            ],
        ),
        (staged_teachers, [{**mine, **_staged_teacher_columns(t)} for t in rows.teachers]),
        (
            staged_memberships,
            [{**mine, "teacher_id": m.teacher_id, "school_id": m.school_id} for m in rows.memberships],
        ),
        (staged_school_changes, [{**mine, **_staged_school_change_columns(c)} for c in rows.school_changes]),
    ):
        bulk_insert(conn, table, columns)


def revision_conflict(conn: Connection, change_set_id: str) -> str | None:
    """The id of a staged teacher whose revision changed since it was staged, if any."""
    s, t = staged_teachers.c, teachers.c
    query = (
        select(s.teacher_id)
        .select_from(staged_teachers.join(teachers, t.id == s.teacher_id))
        .where(s.change_set_id == change_set_id, s.read_revision.is_not(None), t.revision != s.read_revision)
    )
    row = conn.execute(query.limit(1)).first()
    return str(row.teacher_id) if row else None


def school_revision_conflict(conn: Connection, change_set_id: str) -> str | None:
    """The id of a school (changed, or a merge's target) whose revision moved since staging, if any."""
    c, t = staged_school_changes.c, schools.c
    changed = (
        select(c.school_id)
        .select_from(staged_school_changes.join(schools, t.id == c.school_id))
        .where(c.change_set_id == change_set_id, t.revision != c.read_revision)
    )
    target = (
        select(c.into_school_id)
        .select_from(staged_school_changes.join(schools, t.id == c.into_school_id))
        .where(c.change_set_id == change_set_id, t.revision != c.into_read_revision)
    )
    row = conn.execute(changed.union_all(target).limit(1)).first()
    return str(row[0]) if row else None


def apply_school_changes(conn: Connection, change_set_id: str, now: dt.datetime) -> dict[str, int]:
    """Rename, merge and archive the staged schools; returns the rows each guarded update changed.

    Runs after the teacher changes, so a merge moves the memberships the commit just wrote. A merge
    adds the target to every member of the merged school (once), bumps those teachers' revisions
    (their school lists changed, so a concurrent change set that read them aborts), drops the
    merged school's memberships and archives it with ``merged_into``.
    """
    c, t, m = staged_school_changes.c, schools.c, teacher_schools.c
    stamp = literal(now, UTCDateTime())
    mine = c.change_set_id == change_set_id
    guard = and_(t.id == c.school_id, mine, t.revision == c.read_revision)
    merged = select(c.school_id).where(mine, c.kind == SchoolChangeKind.MERGE.value)
    renamed = conn.execute(
        update(schools)
        .where(guard, c.kind == SchoolChangeKind.RENAME.value)
        .values(display_name=c.display_name, update_time=stamp, revision=t.revision + 1)
    ).rowcount
    already = teacher_schools.alias("already")
    moved = (
        select(m.teacher_id, c.into_school_id)
        .select_from(teacher_schools.join(staged_school_changes, and_(mine, c.school_id == m.school_id)))
        .where(
            c.kind == SchoolChangeKind.MERGE.value,
            ~select(already.c.teacher_id)
            .where(already.c.teacher_id == m.teacher_id, already.c.school_id == c.into_school_id)
            .exists(),
        )
        .distinct()
        .order_by(m.teacher_id, c.into_school_id)
    )
    conn.execute(insert(teacher_schools).from_select(["teacher_id", "school_id"], moved))
    members = select(m.teacher_id).where(m.school_id.in_(merged))
    conn.execute(
        update(teachers)
        .where(teachers.c.id.in_(members))
        .values(update_time=stamp, revision=teachers.c.revision + 1)
    )
    conn.execute(delete(teacher_schools).where(m.school_id.in_(merged)))
    retired = conn.execute(
        update(schools)
        .where(guard, c.kind.in_([SchoolChangeKind.MERGE.value, SchoolChangeKind.ARCHIVE.value]))
        .values(
            state=SchoolState.ARCHIVED.value,
            merged_into=c.into_school_id,
            update_time=stamp,
            revision=t.revision + 1,
        )
    ).rowcount
    return {"schools_renamed": renamed, "schools_retired": retired}


def email_conflict(conn: Connection, change_set_id: str, district_id: str) -> tuple[str, str] | None:
    """(ref, email) of a staged upsert whose email now belongs to a different teacher, if any."""
    s, t = staged_teachers.c, teachers.c
    query = (
        select(s.ref, s.email)
        .select_from(
            staged_teachers.join(
                teachers, and_(t.district_id == district_id, t.email_key == s.upsert_email_key)
            )
        )
        .where(s.change_set_id == change_set_id, t.id != s.teacher_id)
    )
    row = conn.execute(query.limit(1)).first()
    return (str(row.ref), str(row.email)) if row else None


def apply_change_set(
    conn: Connection, change_set_id: str, district_id: str, now: dt.datetime, staged: ChangeCounts
) -> dict[str, int]:
    """Write a change set's staged rows into the roster; returns the rows each guarded update changed.

    Updates are guarded by the revision each change read, so a concurrent writer shows up as a
    row count lower than the staged count (the caller compares and aborts). Inserts need no count:
    a taken email fails them with IntegrityError. Statements with nothing staged are skipped, and
    inserts read staged rows in the target's key order, so B-tree pages fill in sequence.
    """
    s, t = staged_teachers.c, teachers.c
    mine = s.change_set_id == change_set_id
    stamp = literal(now, UTCDateTime())

    school_select = select(
        staged_schools.c.school_id,
        literal(district_id),
        staged_schools.c.display_name,
        stamp,
        stamp,
        literal(SchoolState.ACTIVE.value),
        literal(1),
    ).where(staged_schools.c.change_set_id == change_set_id)
    conn.execute(
        insert(schools).from_select(
            ["id", "district_id", "display_name", "create_time", "update_time", "state", "revision"],
            school_select,
        )
    )

    teacher_select = (
        select(
            s.teacher_id,
            literal(district_id),
            s.given_name,
            s.family_name,
            s.email,
            s.upsert_email_key,
            literal(TeacherState.ACTIVE.value),
            stamp,
            stamp,
            literal(1),
        )
        .where(mine, s.outcome == Outcome.CREATED.value)
        .order_by(s.teacher_id)
    )
    conn.execute(
        insert(teachers).from_select(
            [
                "id",
                "district_id",
                "given_name",
                "family_name",
                "email",
                "email_key",
                "state",
                "create_time",
                "update_time",
                "revision",
            ],
            teacher_select,
        )
    )

    guard = and_(t.id == s.teacher_id, mine, t.revision == s.read_revision)
    counts = {"teachers_updated": 0, "teachers_archived": 0, "teachers_reactivated": 0}
    # An upsert that also reactivates changes state in the same guarded statement as its fields,
    # since a second statement would find the revision already moved.
    reactivating = and_(s.kind == TeacherChangeKind.UPSERT.value, s.reactivate)
    if staged.teachers_updated:
        counts["teachers_updated"] = conn.execute(
            update(teachers)
            .where(guard, s.outcome == Outcome.UPDATED.value)
            .values(
                given_name=s.given_name,
                family_name=s.family_name,
                email=s.email,
                email_key=s.upsert_email_key,
                state=case((s.reactivate, TeacherState.ACTIVE.value), else_=t.state),
                archive_time=case((s.reactivate, None), else_=t.archive_time),
                archive_reason=case((s.reactivate, None), else_=t.archive_reason),
                update_time=stamp,
                revision=t.revision + 1,
            )
        ).rowcount
        counts["teachers_reactivated"] += conn.execute(
            select(func.count()).where(mine, reactivating, s.outcome == Outcome.UPDATED.value)
        ).scalar_one()
        replaced = select(s.teacher_id).where(mine, s.outcome == Outcome.UPDATED.value, s.schools_changed)
        conn.execute(delete(teacher_schools).where(teacher_schools.c.teacher_id.in_(replaced)))
    if staged.teachers_archived:
        counts["teachers_archived"] = conn.execute(
            update(teachers)
            .where(guard, s.kind == TeacherChangeKind.ARCHIVE.value)
            .values(
                state=TeacherState.ARCHIVED.value,
                archive_time=stamp,
                archive_reason=s.reason,
                update_time=stamp,
                revision=t.revision + 1,
            )
        ).rowcount
    if staged.teachers_reactivated:
        counts["teachers_reactivated"] += conn.execute(
            update(teachers)
            .where(
                guard,
                or_(
                    s.kind == TeacherChangeKind.REACTIVATE.value,
                    and_(reactivating, s.outcome == Outcome.UNCHANGED.value),
                ),
            )
            .values(
                state=TeacherState.ACTIVE.value,
                archive_time=None,
                archive_reason=None,
                update_time=stamp,
                revision=t.revision + 1,
            )
        ).rowcount

    if staged.teachers_restored or staged.teachers_removed:
        counts |= _restore_and_remove(conn, change_set_id, now)

    m = staged_memberships.c
    membership_select = (
        select(m.teacher_id, m.school_id)
        .where(m.change_set_id == change_set_id)
        .order_by(m.teacher_id, m.school_id)
    )
    conn.execute(insert(teacher_schools).from_select(["teacher_id", "school_id"], membership_select))

    result_columns = ["change_set_id", "kind", "ref", "resource_id", "outcome"]
    conn.execute(
        insert(results).from_select(
            result_columns,
            select(
                literal(change_set_id),
                literal(int(ChangeKind.CREATE_SCHOOL)),
                staged_schools.c.ref,
                staged_schools.c.school_id,
                literal(Outcome.CREATED.value),
            )
            .where(staged_schools.c.change_set_id == change_set_id)
            .order_by(staged_schools.c.ref),
        )
    )
    conn.execute(
        insert(results).from_select(
            result_columns,
            select(
                literal(change_set_id),
                literal(int(ChangeKind.UPSERT_TEACHER)),
                s.ref,
                s.teacher_id,
                s.outcome,
            )
            .where(mine, s.kind == TeacherChangeKind.UPSERT.value)
            .order_by(s.ref),
        )
    )
    return counts


def _restore_and_remove(conn: Connection, change_set_id: str, now: dt.datetime) -> dict[str, int]:
    """Put restored teachers back as staged (memberships come with the staged ones); delete removed ones.

    Both are guarded by the revision staging read, like every teacher update. A restore to ARCHIVED
    keeps the archive time of a teacher archived already.
    """
    s, t = staged_teachers.c, teachers.c
    stamp = literal(now, UTCDateTime())
    mine = s.change_set_id == change_set_id
    guard = and_(t.id == s.teacher_id, mine, t.revision == s.read_revision)
    archived = s.restore_state == TeacherState.ARCHIVED.value
    restored = conn.execute(
        update(teachers)
        .where(guard, s.kind == TeacherChangeKind.RESTORE.value)
        .values(
            given_name=s.given_name,
            family_name=s.family_name,
            email=s.email,
            email_key=s.upsert_email_key,
            state=s.restore_state,
            archive_time=case(
                (and_(archived, t.state == TeacherState.ARCHIVED.value), t.archive_time),
                (archived, stamp),
                else_=None,
            ),
            archive_reason=case((archived, s.reason), else_=None),
            update_time=stamp,
            revision=t.revision + 1,
        )
    ).rowcount
    touched = select(s.teacher_id).where(
        mine, s.kind.in_([TeacherChangeKind.RESTORE.value, TeacherChangeKind.REMOVE.value])
    )
    conn.execute(delete(teacher_schools).where(teacher_schools.c.teacher_id.in_(touched)))
    removed = select(s.teacher_id).where(mine, s.kind == TeacherChangeKind.REMOVE.value)
    guarded_removal = select(s.read_revision).where(
        mine, s.kind == TeacherChangeKind.REMOVE.value, s.teacher_id == t.id
    )
    gone = conn.execute(
        delete(teachers).where(t.id.in_(removed), t.revision == guarded_removal.scalar_subquery())
    ).rowcount
    return {"teachers_restored": restored, "teachers_removed": gone}


def remove_schools(conn: Connection, change_set_id: str, now: dt.datetime) -> int:
    """Delete the staged removals no teacher belongs to; archive the others. Returns how many went either way.

    Runs last, after memberships were written, so a school the same change set empties is deleted.
    """
    c, t, m = staged_school_changes.c, schools.c, teacher_schools.c
    mine = c.change_set_id == change_set_id
    removing = select(c.school_id).where(mine, c.kind == SchoolChangeKind.REMOVE.value)
    read = select(c.read_revision).where(mine, c.kind == SchoolChangeKind.REMOVE.value, c.school_id == t.id)
    guard = and_(t.id.in_(removing), t.revision == read.scalar_subquery())
    used = select(m.school_id).where(m.school_id == t.id).exists()
    deleted = conn.execute(delete(schools).where(guard, ~used)).rowcount
    archived = conn.execute(
        update(schools)
        .where(guard)
        .values(
            state=SchoolState.ARCHIVED.value, update_time=literal(now, UTCDateTime()), revision=t.revision + 1
        )
    ).rowcount
    return deleted + archived


def list_results(
    conn: Connection, change_set_id: str, after: tuple[int, str] | None, limit: int
) -> list[ChangeSetResult]:
    """A committed change set's results ordered by kind then ref, after the cursor."""
    query = select(results).where(results.c.change_set_id == change_set_id)
    if after:
        query = query.where(tuple_(results.c.kind, results.c.ref) > tuple_(*after))
    query = query.order_by(results.c.kind, results.c.ref).limit(limit)
    return [
        ChangeSetResult(ChangeKind(row.kind), row.ref, row.resource_id, Outcome(row.outcome))
        for row in conn.execute(query)
    ]


# Audit trail (append-only: no function here updates an event)


def insert_audit_event(conn: Connection, record: AuditRecord) -> None:
    """Append one audit event."""
    conn.execute(
        insert(audit_events).values(
            id=record.event_id,
            district_id=record.district_id,
            time=record.time,
            actor=record.actor,
            action=record.action.value,
            target=record.target,
            outcome=record.outcome,
            message=record.message or None,
        )
    )


def list_audit_events(
    conn: Connection, district_id: str, before: tuple[dt.datetime, str] | None, limit: int
) -> list[AuditRecord]:
    """The district's audit events, newest first, strictly after the keyset ``before`` (time, id)."""
    a = audit_events.c
    query = select(audit_events).where(a.district_id == district_id)
    if before:
        query = query.where(
            tuple_(a.time, a.id) < tuple_(literal(before[0], UTCDateTime()), literal(before[1]))
        )
    query = query.order_by(a.time.desc(), a.id.desc()).limit(limit)
    return [
        AuditRecord(
            row.id,
            row.district_id,
            row.time,
            row.actor,
            AuditAction(row.action),
            row.target,
            row.outcome,
            row.message or "",
        )
        for row in conn.execute(query)
    ]


def prune_audit_events(conn: Connection, older_than: dt.datetime) -> int:
    """Delete audit events older than the retention cut-off; how many went."""
    return int(conn.execute(delete(audit_events).where(audit_events.c.time < older_than)).rowcount)
