"""The roster's use cases: validation and rules over the repository, one transaction per call.

Callers pass ids already parsed from resource names and authorised (``services.roster.access``);
everything here raises domain errors from ``services.common.errors``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from services.common.clock import Clock
from services.common.db import READ_ONLY
from services.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    check_page_size,
)
from services.common.pagetokens import RosterPageTokens
from services.roster import repository as repo
from services.roster.domain import (
    District,
    Page,
    School,
    Teacher,
    TeacherFilter,
    TeacherInput,
    TeacherState,
)
from services.roster.ids import new_id
from services.roster.teacher_diff import TEACHER_FIELDS, diff_teacher
from services.roster.validation import (
    MAX_REASON,
    check_batch_size,
    check_each,
    check_email,
    check_name,
    check_text,
    check_uuid,
    email_key,
)

T = TypeVar("T")
DEFAULT_PAGE = 100
MAX_PAGE = 1000
# Concurrent writers of one email meet at the unique constraint; the loser re-reads and retries.
WRITE_ATTEMPTS = 5


@dataclass
class Store:
    """What every use case needs: the engine, the clock and the page token signer."""

    engine: Engine
    clock: Clock
    tokens: RosterPageTokens

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One database transaction; rolled back when the block raises."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction that only reads; on SQLite it never waits for a writer (WAL).

        So the product's lists stay quick while a sync commits a large change set.
        """
        with self.engine.connect() as conn, conn.execution_options(**READ_ONLY).begin():
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read transaction whose statements all see one snapshot (REPEATABLE READ on PostgreSQL).

        On SQLite a read transaction sees one snapshot already (WAL) and never waits for a writer.
        """
        with self.engine.connect() as conn:
            conn = conn.execution_options(**READ_ONLY)
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def retrying(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a transaction, again when a concurrent writer won a unique constraint."""
        for _ in range(WRITE_ATTEMPTS - 1):
            try:
                with self.transaction() as conn:
                    return work(conn)
            except IntegrityError:
                continue
        with self.transaction() as conn:
            return work(conn)


@dataclass(frozen=True)
class RosterExport:
    """A district's whole roster as one snapshot sees it: the totals, then rows read as they are iterated."""

    total_schools: int
    total_teachers: int
    schools: Iterator[School]
    teachers: Iterator[Teacher]


def require_district(conn: Connection, district_id: str) -> District:
    """The district, or NOT_FOUND."""
    district = repo.get_district(conn, district_id)
    if district is None:
        raise NotFound(
            f"District {district_id!r} not found.", metadata={"resource": f"districts/{district_id}"}
        )
    return district


def duplicate_positions(values: Sequence[str | None], field: str) -> list[FieldViolation]:
    """A violation for every value repeated in ``values`` (naming both positions)."""
    first: dict[str, int] = {}
    found: list[FieldViolation] = []
    for index, value in enumerate(values):
        if value is None:
            continue
        if value in first:
            found.append(
                FieldViolation(
                    field.format(index),
                    f"{value!r} repeats {field.format(first[value])}; each may appear once per batch",
                )
            )
        else:
            first[value] = index
    return found


def _require_schools(conn: Connection, district_id: str, inputs: Sequence[TeacherInput]) -> None:
    """NOT_FOUND when an input names a school the district does not have."""
    school_ids = sorted({s for item in inputs for s in item.school_ids})
    known = repo.get_schools(conn, district_id, school_ids)
    unknown = [
        FieldViolation(f"teachers[{i}].school_ids", f"school {s!r} not found in district {district_id!r}")
        for i, item in enumerate(inputs)
        for s in item.school_ids
        if s not in known
    ]
    if unknown:
        raise NotFound("; ".join(v.description for v in unknown[:5]), violations=unknown)


@dataclass(frozen=True)
class _UpsertWrites:
    """What a teacher upsert batch writes: new teachers, changed columns and replaced school lists."""

    teacher_ids: list[str]
    created: list[Teacher]
    updated: list[dict[str, Any]]
    memberships: dict[str, Sequence[str]]


def _upsert_writes(
    district_id: str, inputs: Sequence[TeacherInput], current: Sequence[Teacher | None], now: dt.datetime
) -> _UpsertWrites:
    """Turn each input's diff against the teacher holding its email into the batch's writes."""
    writes = _UpsertWrites([], [], [], {})
    for item, teacher in zip(inputs, current, strict=True):
        diff = diff_teacher(teacher, item)
        if teacher is None:
            created = Teacher(
                teacher_id=new_id(),
                district_id=district_id,
                given_name=item.given_name,
                family_name=item.family_name,
                email=item.email,
                school_ids=item.school_ids,
                state=TeacherState.ACTIVE,
                archive_time=None,
                archive_reason=None,
                create_time=now,
                update_time=now,
                revision=1,
            )
            writes.created.append(created)
            writes.memberships[created.teacher_id] = item.school_ids
            writes.teacher_ids.append(created.teacher_id)
            continue
        if diff.updates:
            fields = {name: getattr(item, name) for name in TEACHER_FIELDS}
            writes.updated.append(
                {"id": teacher.teacher_id, "update_time": now, "revision": teacher.revision + 1, **fields}
            )
        if diff.schools_changed:
            writes.memberships[teacher.teacher_id] = item.school_ids
        writes.teacher_ids.append(teacher.teacher_id)
    return writes


class RosterUseCases:
    """Districts, schools and teachers (change sets live in ``services.roster.changesets``)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # Districts

    def create_district(self, district_id: str, display_name: str) -> District:
        """Create a district; ALREADY_EXISTS when the id is taken."""
        check_name(display_name, "display_name")
        district = District(district_id, display_name, self._store.clock())
        try:
            with self._store.transaction() as conn:
                if repo.get_district(conn, district_id) is not None:
                    raise AlreadyExists(f"District {district_id!r} already exists.")
                repo.insert_district(conn, district)
        except IntegrityError:
            raise AlreadyExists(f"District {district_id!r} already exists.") from None
        return district

    def get_district(self, district_id: str) -> District:
        """A district, or NOT_FOUND."""
        with self._store.read() as conn:
            return require_district(conn, district_id)

    # Schools

    def get_school(self, district_id: str, school_id: str) -> School:
        """A school of the district, or NOT_FOUND (also when it belongs to another district)."""
        with self._store.read() as conn:
            require_district(conn, district_id)
            school = repo.get_schools(conn, district_id, [school_id]).get(school_id)
        if school is None:
            raise NotFound(f"School {school_id!r} not found in district {district_id!r}.")
        return school

    def list_schools(self, district_id: str, page_size: int, page_token: str) -> Page[School]:
        """A page of the district's schools by display name."""
        limit = check_page_size(page_size, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        query: list[str | int | None] = ["schools", district_id]
        cursor = self._store.tokens.decode(page_token, query, [str, str])
        with self._store.read() as conn:
            require_district(conn, district_id)
            after = (str(cursor[0]), str(cursor[1])) if cursor else None
            items = repo.list_schools(conn, district_id, after, limit + 1)
            total = repo.count_schools(conn, district_id)
        token = ""
        if len(items) > limit:
            items = items[:limit]
            token = self._store.tokens.encode(query, [items[-1].display_name, items[-1].school_id])
        return Page(items, token, total)

    def batch_create_schools(
        self, district_id: str, names: Sequence[str], request_id: str | None
    ) -> list[School]:
        """Create schools, all or none; a repeated request id returns the first call's schools."""
        check_batch_size(len(names), "schools")
        check_each(names, lambda index, name: check_name(name, f"schools[{index}].display_name"))

        def work(conn: Connection) -> list[School]:
            require_district(conn, district_id)
            if request_id:
                earlier = repo.get_idempotent(conn, district_id, "BatchCreateSchools", request_id)
                if earlier is not None:
                    found = repo.get_schools(conn, district_id, earlier)
                    return [found[i] for i in earlier]
            now = self._store.clock()
            created = [School(new_id(), district_id, name, now, now) for name in names]
            repo.insert_schools(conn, created)
            if request_id:
                ids = [s.school_id for s in created]
                repo.put_idempotent(conn, district_id, "BatchCreateSchools", request_id, ids, now)
            return created

        return self._store.retrying(work)

    # Teachers

    def get_teacher(self, district_id: str, teacher_id: str) -> Teacher:
        """A teacher of the district, or NOT_FOUND."""
        with self._store.read() as conn:
            require_district(conn, district_id)
            teacher = repo.get_teachers(conn, district_id, [teacher_id]).get(teacher_id)
        if teacher is None:
            raise NotFound(f"Teacher {teacher_id!r} not found in district {district_id!r}.")
        return teacher

    def list_teachers(
        self, district_id: str, filters: TeacherFilter, page_size: int, page_token: str
    ) -> Page[Teacher]:
        """A page of the district's teachers matching ``filters``, by email."""
        limit = check_page_size(page_size, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        if filters.email is not None:
            filters = TeacherFilter(filters.school_id, filters.state, email_key(filters.email))
        state = filters.state.value if filters.state else None
        query: list[str | int | None] = ["teachers", district_id, filters.school_id, state, filters.email]
        cursor = self._store.tokens.decode(page_token, query, [str, str])
        with self._store.read() as conn:
            require_district(conn, district_id)
            if filters.school_id and not repo.get_schools(conn, district_id, [filters.school_id]):
                raise NotFound(f"School {filters.school_id!r} not found in district {district_id!r}.")
            after = (str(cursor[0]), str(cursor[1])) if cursor else None
            items = repo.list_teachers(conn, district_id, filters, after, limit + 1)
            total = repo.count_teachers(conn, district_id, filters)
            token = ""
            if len(items) > limit:
                items = items[:limit]
                last = items[-1].teacher_id
                token = self._store.tokens.encode(query, [repo.email_key_of(conn, last), last])
        return Page(items, token, total)

    @contextmanager
    def export_roster(self, district_id: str) -> Iterator[RosterExport]:
        """Every school and teacher of the district, read in one snapshot.

        The snapshot stays open while the caller iterates, so the rows stream in batches instead of
        being loaded at once.
        """
        with self._store.snapshot() as conn:
            require_district(conn, district_id)
            total_schools, total_teachers = repo.export_totals(conn, district_id)
            yield RosterExport(
                total_schools,
                total_teachers,
                repo.export_schools(conn, district_id),
                repo.export_teachers(conn, district_id),
            )

    def batch_upsert_teachers(
        self, district_id: str, inputs: Sequence[TeacherInput], request_id: str | None
    ) -> list[Teacher]:
        """Create or update teachers keyed by email, all or none."""
        check_batch_size(len(inputs), "teachers")
        cleaned = check_each(inputs, self._check_input)
        keys = [email_key(item.email) for item in cleaned]
        duplicates = duplicate_positions(keys, "teachers[{}].email")
        if duplicates:
            raise InvalidArgument.for_fields(duplicates)

        def work(conn: Connection) -> list[Teacher]:
            require_district(conn, district_id)
            if request_id:
                earlier = repo.get_idempotent(conn, district_id, "BatchUpsertTeachers", request_id)
                if earlier is not None:
                    found = repo.get_teachers(conn, district_id, earlier)
                    return [found[i] for i in earlier]
            _require_schools(conn, district_id, cleaned)
            now = self._store.clock()
            existing = repo.teachers_by_email_key(conn, district_id, keys, lock=True)
            writes = _upsert_writes(district_id, cleaned, [existing.get(key) for key in keys], now)
            repo.insert_teachers(conn, writes.created)
            repo.update_teachers(conn, writes.updated)
            repo.replace_memberships(conn, writes.memberships)
            ids = writes.teacher_ids
            if request_id:
                repo.put_idempotent(conn, district_id, "BatchUpsertTeachers", request_id, ids, now)
            found = repo.get_teachers(conn, district_id, ids)
            return [found[i] for i in ids]

        return self._store.retrying(work)

    @staticmethod
    def _check_input(index: int, item: TeacherInput) -> TeacherInput:
        prefix = f"teachers[{index}]"
        check_name(item.given_name, f"{prefix}.given_name")
        check_name(item.family_name, f"{prefix}.family_name")
        email = check_email(item.email, f"{prefix}.email")
        school_ids = [check_uuid(s, f"{prefix}.school_ids") for s in item.school_ids]
        return TeacherInput(item.given_name, item.family_name, email, tuple(sorted(set(school_ids))))

    def batch_archive_teachers(
        self, district_id: str, teacher_ids: Sequence[str], reason: str
    ) -> list[Teacher]:
        """Archive active teachers, all or none; FAILED_PRECONDITION when one is archived already."""
        check_batch_size(len(teacher_ids), "teacher_ids")
        for index, teacher_id in enumerate(teacher_ids):
            check_uuid(teacher_id, f"teacher_ids[{index}]")
        duplicates = duplicate_positions(list(teacher_ids), "teacher_ids[{}]")
        if duplicates:
            raise InvalidArgument.for_fields(duplicates)
        check_text(reason, "reason", maximum=MAX_REASON)
        with self._store.transaction() as conn:
            require_district(conn, district_id)
            found = repo.get_teachers(conn, district_id, teacher_ids, lock=True)
            missing = [t for t in teacher_ids if t not in found]
            if missing:
                raise NotFound(f"Teachers not found in district {district_id!r}: {', '.join(missing[:10])}.")
            archived = [t for t in teacher_ids if found[t].state is TeacherState.ARCHIVED]
            if archived:
                raise FailedPrecondition(f"Teachers already archived: {', '.join(archived[:10])}.")
            now = self._store.clock()
            repo.update_teachers(
                conn,
                [
                    {
                        "id": t,
                        "state": TeacherState.ARCHIVED.value,
                        "archive_time": now,
                        "archive_reason": reason,
                        "update_time": now,
                        "revision": found[t].revision + 1,
                    }
                    for t in teacher_ids
                ],
            )
            after = repo.get_teachers(conn, district_id, teacher_ids)
        return [after[t] for t in teacher_ids]

    def unarchive_teacher(self, district_id: str, teacher_id: str) -> Teacher:
        """Make an archived teacher active; FAILED_PRECONDITION when already active."""
        with self._store.transaction() as conn:
            require_district(conn, district_id)
            teacher = repo.get_teachers(conn, district_id, [teacher_id], lock=True).get(teacher_id)
            if teacher is None:
                raise NotFound(f"Teacher {teacher_id!r} not found in district {district_id!r}.")
            if teacher.state is TeacherState.ACTIVE:
                raise FailedPrecondition(
                    f"Teacher {teacher_id!r} is active; only archived teachers can be unarchived.",
                    reason="TEACHER_ACTIVE",
                )
            repo.update_teachers(
                conn,
                [
                    {
                        "id": teacher_id,
                        "state": TeacherState.ACTIVE.value,
                        "archive_time": None,
                        "archive_reason": None,
                        "update_time": self._store.clock(),
                        "revision": teacher.revision + 1,
                    }
                ],
            )
            return repo.get_teachers(conn, district_id, [teacher_id])[teacher_id]
