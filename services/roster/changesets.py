"""Change-set use cases: open, stage batches, commit all-or-nothing, abandon, read results.

Staged changes live in the database (several replicas, restarts and bounded memory). Staging
records what the change set read: the matched teacher's revision, or that an email had no teacher.
Commit re-checks those reads and writes everything in one transaction, or refuses with ABORTED,
abandons the change set and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from services.common.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    bad_field,
    check_page_size,
)
from services.roster import repository as repo
from services.roster.domain import (
    ArchiveSchoolChange,
    ArchiveTeacherChange,
    Change,
    ChangeCounts,
    ChangeSet,
    ChangeSetResult,
    ChangeSetState,
    CreateSchoolChange,
    MergeSchoolChange,
    Outcome,
    Page,
    ReactivateTeacherChange,
    RemoveSchoolChange,
    RemoveTeacherChange,
    RenameSchoolChange,
    RestoreTeacherChange,
    School,
    SchoolChange,
    SchoolChangeKind,
    SchoolState,
    Teacher,
    TeacherChangeKind,
    TeacherInput,
    TeacherState,
    UpsertTeacherChange,
)
from services.roster.ids import new_id
from services.roster.staged import (
    StagedBatchRows,
    StagedMembershipRow,
    StagedSchoolChangeRow,
    StagedSchoolRow,
    StagedTeacherRow,
)
from services.roster.teacher_diff import diff_teacher
from services.roster.usecases import Store, duplicate_positions, require_district
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

log = logging.getLogger(__name__)

MAX_BATCH_NUMBER = 1_000_000_000
# Staged rows are ordered by position = batch_number * POSITIONS + index in the batch.
POSITIONS = 1000
DEFAULT_RESULTS_PAGE = 1000
MAX_RESULTS_PAGE = 5000


class _Conflict(Exception):
    """A read of the change set no longer holds; the commit must not land."""


def _check_change(index: int, change: Change) -> None:
    """Field checks that need no database."""
    prefix = f"changes[{index}]"
    if isinstance(change, CreateSchoolChange):
        check_text(change.ref, f"{prefix}.create_school.ref")
        check_name(change.display_name, f"{prefix}.create_school.display_name")
    elif isinstance(change, UpsertTeacherChange):
        field = f"{prefix}.upsert_teacher"
        check_text(change.ref, f"{field}.ref")
        if change.teacher_id is not None:
            check_uuid(change.teacher_id, f"{field}.teacher_id")
        check_name(change.given_name, f"{field}.given_name")
        check_name(change.family_name, f"{field}.family_name")
        check_email(change.email, f"{field}.email")
        for n, school in enumerate(change.schools):
            if school.school_id is not None:
                check_uuid(school.school_id, f"{field}.schools[{n}].school_id")
            elif school.school_ref is not None:
                check_text(school.school_ref, f"{field}.schools[{n}].school_ref")
            else:
                raise bad_field(f"{field}.schools[{n}]", "set school_id or school_ref")
    elif isinstance(change, ArchiveTeacherChange):
        check_uuid(change.teacher_id, f"{prefix}.archive_teacher.teacher_id")
        check_text(change.reason, f"{prefix}.archive_teacher.reason", maximum=MAX_REASON)
    elif isinstance(change, ReactivateTeacherChange | RemoveTeacherChange):
        check_uuid(change.teacher_id, f"{_teacher_field(index, change)}.teacher_id")
    elif isinstance(change, RestoreTeacherChange):
        field = f"{prefix}.restore_teacher"
        check_uuid(change.teacher_id, f"{field}.teacher_id")
        check_name(change.given_name, f"{field}.given_name")
        check_name(change.family_name, f"{field}.family_name")
        check_email(change.email, f"{field}.email")
        for n, school_id in enumerate(change.school_ids):
            check_uuid(school_id, f"{field}.school_ids[{n}]")
        check_text(
            change.archive_reason, f"{field}.archive_reason", maximum=MAX_REASON, required=change.archived
        )
    else:
        _check_school_change(prefix, change)


def _check_school_change(prefix: str, change: SchoolChange) -> None:
    """Field checks of a rename, archive or merge."""
    field = f"{prefix}.{_SCHOOL_FIELDS[type(change)]}"
    check_uuid(change.school_id, f"{field}.school_id")
    if isinstance(change, RenameSchoolChange):
        check_name(change.display_name, f"{field}.display_name")
    elif isinstance(change, MergeSchoolChange):
        check_uuid(change.into_school_id, f"{field}.into_school_id")
        if change.into_school_id == change.school_id:
            raise bad_field(f"{field}.into_school_id", "a school cannot be merged into itself")


_SCHOOL_FIELDS: dict[type[SchoolChange], str] = {
    RenameSchoolChange: "rename_school",
    ArchiveSchoolChange: "archive_school",
    MergeSchoolChange: "merge_school",
    RemoveSchoolChange: "remove_school",
}
_SCHOOL_KINDS: dict[type[SchoolChange], SchoolChangeKind] = {
    RenameSchoolChange: SchoolChangeKind.RENAME,
    ArchiveSchoolChange: SchoolChangeKind.ARCHIVE,
    MergeSchoolChange: SchoolChangeKind.MERGE,
    RemoveSchoolChange: SchoolChangeKind.REMOVE,
}
_SCHOOL_CHANGES = (RenameSchoolChange, ArchiveSchoolChange, MergeSchoolChange, RemoveSchoolChange)
_SCHOOL_CHANGE_TYPES = RenameSchoolChange | ArchiveSchoolChange | MergeSchoolChange | RemoveSchoolChange
_TEACHER_FIELDS: dict[type[Change], str] = {
    UpsertTeacherChange: "upsert_teacher",
    ArchiveTeacherChange: "archive_teacher",
    ReactivateTeacherChange: "reactivate_teacher",
    RestoreTeacherChange: "restore_teacher",
    RemoveTeacherChange: "remove_teacher",
}


def _teacher_field(index: int, change: Change) -> str:
    return f"changes[{index}].{_TEACHER_FIELDS[type(change)]}"


# Staging one batch: queries (_look_up), validation (_check_*), then reference resolution into
# typed rows (_staged_rows). ``_resolve`` runs them in that order; the checks raise in the order
# NOT_FOUND teachers, FAILED_PRECONDITION states, NOT_FOUND schools, INVALID_ARGUMENT references.


@dataclass(frozen=True)
class _Lookups:
    """What a batch's changes name, read from the roster and the change set."""

    by_id: dict[str, Teacher]
    by_email: dict[str, Teacher]
    known_schools: dict[str, School]
    allocated: dict[str, str]
    ref_ids: dict[str, str]


def _named_teacher_id(change: Change) -> str | None:
    if isinstance(change, CreateSchoolChange | _SCHOOL_CHANGE_TYPES):
        return None
    return change.teacher_id


def _school_changes(changes: Sequence[Change]) -> list[tuple[int, SchoolChange]]:
    return [(i, c) for i, c in enumerate(changes) if isinstance(c, _SCHOOL_CHANGES)]


def _changed_school_ids(changes: Sequence[Change]) -> list[str]:
    """Every school a batch's renames, archives and merges name (merge targets included)."""
    named = {c.school_id for _, c in _school_changes(changes)}
    named |= {c.into_school_id for c in changes if isinstance(c, MergeSchoolChange)}
    return sorted(named)


def _upserts(changes: Sequence[Change]) -> list[tuple[int, UpsertTeacherChange]]:
    return [(i, c) for i, c in enumerate(changes) if isinstance(c, UpsertTeacherChange)]


def _look_up(conn: Connection, district_id: str, change_set_id: str, changes: Sequence[Change]) -> _Lookups:
    """Read the teachers and schools the batch names; allocate ids for the schools it creates."""
    upserts = [c for _, c in _upserts(changes)]
    named_ids = sorted({t for t in map(_named_teacher_id, changes) if t})
    restored = {
        school_id for c in changes if isinstance(c, RestoreTeacherChange) for school_id in c.school_ids
    }
    school_ids = sorted(
        {s.school_id for c in upserts for s in c.schools if s.school_id}
        | restored
        | set(_changed_school_ids(changes))
    )
    allocated = {c.ref: new_id() for c in changes if isinstance(c, CreateSchoolChange)}
    wanted_refs = sorted({s.school_ref for c in upserts for s in c.schools if s.school_ref})
    staged_refs = repo.staged_school_ids(conn, change_set_id, [r for r in wanted_refs if r not in allocated])
    return _Lookups(
        by_id=repo.get_teachers(conn, district_id, named_ids),
        by_email=repo.teachers_by_email_key(conn, district_id, [email_key(c.email) for c in upserts]),
        known_schools=repo.get_schools(conn, district_id, school_ids),
        allocated=allocated,
        ref_ids={**staged_refs, **allocated},
    )


def _targets(changes: Sequence[Change], found: _Lookups) -> list[Teacher | None]:
    """The teacher each change touches: by id, else (upserts) by email; None for schools and creations."""
    targets: list[Teacher | None] = []
    for change in changes:
        teacher_id = _named_teacher_id(change)
        target = found.by_id.get(teacher_id) if teacher_id else None
        if target is None and isinstance(change, UpsertTeacherChange):
            target = found.by_email.get(email_key(change.email))
        targets.append(target)
    return targets


def _check_found(district_id: str, changes: Sequence[Change], found: _Lookups) -> None:
    """NOT_FOUND when a change names a teacher id the district does not have."""
    missing = [
        FieldViolation(f"{_teacher_field(i, c)}.teacher_id", f"teacher {teacher_id!r} not found")
        for i, c in enumerate(changes)
        if (teacher_id := _named_teacher_id(c)) and teacher_id not in found.by_id
    ]
    if missing:
        raise NotFound(
            f"Teachers not found in district {district_id!r}: "
            + ", ".join(v.description.split("'")[1] for v in missing[:10]),
            violations=missing,
        )


def _check_states(changes: Sequence[Change], targets: Sequence[Teacher | None]) -> None:
    """FAILED_PRECONDITION when an archive finds the teacher archived, or a reactivation finds it active."""
    for index, (change, target) in enumerate(zip(changes, targets, strict=True)):
        if isinstance(change, ArchiveTeacherChange):
            assert target is not None
            if target.state is not TeacherState.ACTIVE:
                field = _teacher_field(index, change)
                raise FailedPrecondition(f"Teacher {target.teacher_id!r} is archived already ({field}).")
        elif isinstance(change, ReactivateTeacherChange):
            assert target is not None
            if target.state is not TeacherState.ARCHIVED:
                field = _teacher_field(index, change)
                raise FailedPrecondition(f"Teacher {target.teacher_id!r} is active, not archived ({field}).")


def _check_schools(district_id: str, changes: Sequence[Change], found: _Lookups) -> None:
    """NOT_FOUND when an upsert names a school id the district does not have."""
    unknown = [
        FieldViolation(
            f"{_teacher_field(index, change)}.schools[{n}].school_id",
            f"school {school.school_id!r} not found in district {district_id!r}",
        )
        for index, change in _upserts(changes)
        for n, school in enumerate(change.schools)
        if school.school_id and school.school_id not in found.known_schools
    ] + [
        FieldViolation(
            f"{_teacher_field(index, change)}.school_ids[{n}]",
            f"school {school_id!r} not found in district {district_id!r}",
        )
        for index, change in enumerate(changes)
        if isinstance(change, RestoreTeacherChange)
        for n, school_id in enumerate(change.school_ids)
        if school_id not in found.known_schools
    ]
    if unknown:
        raise NotFound("; ".join(v.description for v in unknown[:5]), violations=unknown)


def _check_changed_schools(district_id: str, changes: Sequence[Change], found: _Lookups) -> None:
    """NOT_FOUND for unknown schools; FAILED_PRECONDITION when a changed school or a target is archived."""
    for index, change in _school_changes(changes):
        field = f"changes[{index}].{_SCHOOL_FIELDS[type(change)]}"
        named = [("school_id", change.school_id)]
        if isinstance(change, MergeSchoolChange):
            named.append(("into_school_id", change.into_school_id))
        for name, school_id in named:
            school = found.known_schools.get(school_id)
            if school is None:
                raise NotFound(
                    f"School {school_id!r} not found in district {district_id!r} ({field}.{name}).",
                    violations=[FieldViolation(f"{field}.{name}", f"school {school_id!r} not found")],
                )
            if school.state is not SchoolState.ACTIVE and not isinstance(change, RemoveSchoolChange):
                merged = f", merged into {school.merged_into!r}" if school.merged_into else ""
                raise FailedPrecondition(
                    f"School {school.display_name!r} ({school_id}) is archived{merged}; only active "
                    f"schools can be renamed, archived, merged or merged into ({field}.{name}).",
                    reason="SCHOOL_ARCHIVED",
                )


def _school_change_rows(changes: Sequence[Change], found: _Lookups) -> tuple[StagedSchoolChangeRow, ...]:
    """The staged school changes, with the revisions just read."""
    rows: list[StagedSchoolChangeRow] = []
    for _, change in _school_changes(changes):
        school = found.known_schools[change.school_id]
        into = found.known_schools[change.into_school_id] if isinstance(change, MergeSchoolChange) else None
        rows.append(
            StagedSchoolChangeRow(
                school_id=school.school_id,
                kind=_SCHOOL_KINDS[type(change)],
                read_revision=school.revision,
                display_name=change.display_name if isinstance(change, RenameSchoolChange) else None,
                into_school_id=into.school_id if into else None,
                into_read_revision=into.revision if into else None,
            )
        )
    return tuple(rows)


def _reference_problems(
    field: str, change: UpsertTeacherChange, target: Teacher | None, found: _Lookups
) -> list[FieldViolation]:
    """An email that belongs to another teacher than the named one; school refs nothing creates."""
    problems: list[FieldViolation] = []
    owner = found.by_email.get(email_key(change.email))
    if owner is not None and target is not None and owner.teacher_id != target.teacher_id:
        problems.append(
            FieldViolation(f"{field}.email", f"{change.email!r} belongs to teacher {owner.teacher_id!r}")
        )
    problems.extend(
        FieldViolation(
            f"{field}.schools[{n}].school_ref",
            f"{school.school_ref!r} names no school created in this change set",
        )
        for n, school in enumerate(change.schools)
        if school.school_ref and school.school_ref not in found.ref_ids
    )
    return problems


def _check_references(changes: Sequence[Change], targets: Sequence[Teacher | None], found: _Lookups) -> None:
    """INVALID_ARGUMENT for unresolvable references and for two changes that reach the same teacher."""
    problems = [
        problem
        for index, change in _upserts(changes)
        for problem in _reference_problems(_teacher_field(index, change), change, targets[index], found)
    ]
    problems += duplicate_positions(
        [t.teacher_id if t else None for t in targets], "changes[{}] (same teacher)"
    )
    if problems:
        raise InvalidArgument.for_fields(problems)


def _upsert_rows(
    position: int, change: UpsertTeacherChange, target: Teacher | None, ref_ids: dict[str, str]
) -> tuple[StagedTeacherRow, list[StagedMembershipRow]]:
    """The staged upsert (its outcome from the teacher diff) and the memberships it writes."""
    email = change.email.strip()
    school_ids = tuple(sorted({s.school_id or ref_ids[s.school_ref or ""] for s in change.schools}))
    requested = TeacherInput(change.given_name, change.family_name, email, school_ids)
    diff = diff_teacher(target, requested, reactivate=change.reactivate)
    if diff.creates:
        outcome = Outcome.CREATED
    else:
        outcome = Outcome.UPDATED if diff.updates else Outcome.UNCHANGED
    teacher_id = target.teacher_id if target else new_id()
    row = StagedTeacherRow(
        position=position,
        kind=TeacherChangeKind.UPSERT,
        outcome=outcome,
        teacher_id=teacher_id,
        read_revision=target.revision if target else None,
        ref=change.ref,
        given_name=change.given_name,
        family_name=change.family_name,
        email=email,
        upsert_email_key=email_key(email),
        schools_changed=diff.schools_changed,
        reactivate=diff.reactivates,
    )
    writes_schools = diff.creates or diff.schools_changed
    return row, [StagedMembershipRow(teacher_id, s) for s in school_ids] if writes_schools else []


def _state_row(
    position: int, change: ArchiveTeacherChange | ReactivateTeacherChange, target: Teacher
) -> StagedTeacherRow:
    """The staged archive or reactivation of a matched teacher."""
    if isinstance(change, ArchiveTeacherChange):
        kind, outcome, reason = TeacherChangeKind.ARCHIVE, Outcome.ARCHIVED, change.reason
    else:
        kind, outcome, reason = TeacherChangeKind.REACTIVATE, Outcome.REACTIVATED, None
    return StagedTeacherRow(position, kind, outcome, target.teacher_id, target.revision, reason=reason)


def _undo_row(
    position: int, change: RestoreTeacherChange | RemoveTeacherChange, target: Teacher
) -> StagedTeacherRow:
    """The staged restore (every field, the school list and the state) or removal of a teacher."""
    if isinstance(change, RemoveTeacherChange):
        return StagedTeacherRow(
            position, TeacherChangeKind.REMOVE, Outcome.REMOVED, target.teacher_id, target.revision
        )
    email = change.email.strip()
    state = TeacherState.ARCHIVED if change.archived else TeacherState.ACTIVE
    return StagedTeacherRow(
        position,
        TeacherChangeKind.RESTORE,
        Outcome.RESTORED,
        target.teacher_id,
        target.revision,
        given_name=change.given_name,
        family_name=change.family_name,
        email=email,
        upsert_email_key=email_key(email),
        schools_changed=True,
        reason=change.archive_reason if change.archived else None,
        restore_state=state.value,
    )


def _staged_rows(
    batch_number: int, changes: Sequence[Change], targets: Sequence[Teacher | None], found: _Lookups
) -> StagedBatchRows:
    """Resolve school refs and matched teachers into the batch's typed staged rows."""
    schools = tuple(
        StagedSchoolRow(c.ref, found.allocated[c.ref], c.display_name)
        for c in changes
        if isinstance(c, CreateSchoolChange)
    )
    teachers: list[StagedTeacherRow] = []
    memberships: list[StagedMembershipRow] = []
    for index, (change, target) in enumerate(zip(changes, targets, strict=True)):
        position = batch_number * POSITIONS + index
        if isinstance(change, CreateSchoolChange | _SCHOOL_CHANGE_TYPES):
            continue
        if isinstance(change, UpsertTeacherChange):
            row, written = _upsert_rows(position, change, target, found.ref_ids)
            memberships.extend(written)
        elif isinstance(change, RestoreTeacherChange | RemoveTeacherChange):
            assert target is not None
            row = _undo_row(position, change, target)
            if isinstance(change, RestoreTeacherChange):
                memberships.extend(
                    StagedMembershipRow(target.teacher_id, s) for s in sorted(set(change.school_ids))
                )
        else:
            assert target is not None
            row = _state_row(position, change, target)
        teachers.append(row)
    return StagedBatchRows(schools, tuple(teachers), tuple(memberships), _school_change_rows(changes, found))


def _resolve(
    conn: Connection, district_id: str, change_set_id: str, batch_number: int, changes: Sequence[Change]
) -> StagedBatchRows:
    """Match every change against the roster and the change set; the rows to stage."""
    found = _look_up(conn, district_id, change_set_id, changes)
    _check_found(district_id, changes, found)
    targets = _targets(changes, found)
    _check_states(changes, targets)
    _check_schools(district_id, changes, found)
    _check_changed_schools(district_id, changes, found)
    _check_references(changes, targets, found)
    return _staged_rows(batch_number, changes, targets, found)


class ChangeSetUseCases:
    """Change sets of one roster database."""

    def __init__(self, store: Store, ttl: dt.timedelta) -> None:
        self._store = store
        self._ttl = ttl

    def _current(self, conn: Connection, district_id: str, change_set_id: str) -> ChangeSet:
        """The change set, locked, expired first when open past its expiry; NOT_FOUND when unknown."""
        require_district(conn, district_id)
        change_set = repo.get_change_set(conn, district_id, change_set_id, lock=True)
        if change_set is None:
            raise NotFound(f"Change set {change_set_id!r} not found in district {district_id!r}.")
        if change_set.state is ChangeSetState.OPEN and self._store.clock() >= change_set.expire_time:
            repo.expire(conn, change_set_id)
            repo.purge_staged(conn, change_set_id)
            change_set = repo.get_change_set(conn, district_id, change_set_id)
            assert change_set is not None
        return change_set

    def _refresh(self, district_id: str, change_set_id: str) -> ChangeSet:
        """``_current`` in a transaction of its own."""
        with self._store.transaction() as conn:
            return self._current(conn, district_id, change_set_id)

    @staticmethod
    def _require_open(change_set: ChangeSet) -> None:
        if change_set.state is not ChangeSetState.OPEN:
            raise FailedPrecondition(
                f"Change set {change_set.change_set_id!r} is {change_set.state.value.lower()}; only open "
                "change sets accept changes. Open a new change set.",
                reason=f"CHANGE_SET_{change_set.state.value}",
            )

    def create(self, district_id: str, request_id: str | None) -> ChangeSet:
        """Open a change set; repeating a request id returns the one it opened."""

        def work(conn: Connection) -> str:
            require_district(conn, district_id)
            if request_id:
                earlier = repo.change_set_id_for_request(conn, district_id, request_id)
                if earlier is not None:
                    return earlier
            change_set_id = new_id()
            repo.insert_change_set(
                conn, change_set_id, district_id, request_id, self._store.clock(), self._ttl
            )
            return change_set_id

        return self._refresh(district_id, self._store.retrying(work))

    def get(self, district_id: str, change_set_id: str) -> ChangeSet:
        """A change set with its state and counts."""
        return self._refresh(district_id, change_set_id)

    def stage(
        self, district_id: str, change_set_id: str, batch_number: int, changes: Sequence[Change]
    ) -> ChangeSet:
        """Stage one batch; a batch number staged before is a no-op."""
        if not 1 <= batch_number <= MAX_BATCH_NUMBER:
            raise bad_field("batch_number", f"must be between 1 and {MAX_BATCH_NUMBER}, got {batch_number}")
        check_batch_size(len(changes), "changes")
        check_each(changes, _check_change)
        self._check_batch_duplicates(changes)
        try:
            with self._store.transaction() as conn:
                current = self._current(conn, district_id, change_set_id)
                if current.state is ChangeSetState.OPEN and not repo.batch_staged(
                    conn, change_set_id, batch_number
                ):
                    rows = _resolve(conn, district_id, change_set_id, batch_number, changes)
                    repo.stage(conn, change_set_id, batch_number, rows)
                    expire = self._store.clock() + self._ttl
                    repo.add_staged_counts(conn, change_set_id, rows.counts, expire)
                    current = self._current(conn, district_id, change_set_id)
        except IntegrityError:
            # The staged rows' unique constraints are the check (a query per batch would scan them).
            self._explain_clash(change_set_id, batch_number, changes)
            current = self._refresh(district_id, change_set_id)
        # Outside the transaction, so an expiry noticed here is stored before the refusal.
        self._require_open(current)
        return current

    def _explain_clash(self, change_set_id: str, batch_number: int, changes: Sequence[Change]) -> None:
        """Say which earlier staged change a refused batch overlaps; a raced same batch is a no-op."""
        upserts = [c for c in changes if isinstance(c, UpsertTeacherChange)]
        with self._store.transaction() as conn:
            if repo.batch_staged(conn, change_set_id, batch_number):
                return
            clashes = repo.staged_teacher_clashes(
                conn,
                change_set_id,
                [t for t in map(_named_teacher_id, changes) if t],
                [c.ref for c in upserts],
                [email_key(c.email) for c in upserts],
            )
            schools = repo.staged_school_ids(
                conn, change_set_id, [c.ref for c in changes if isinstance(c, CreateSchoolChange)]
            )
            changed = repo.staged_school_change_ids(
                conn, change_set_id, [c.school_id for _, c in _school_changes(changes)]
            )
        if changed:
            raise InvalidArgument(
                f"Schools {sorted(changed)[:10]} are already renamed, archived or merged by an earlier batch "
                "of this change set; a change set changes each school at most once."
            )
        if schools:
            raise bad_field(
                "changes.create_school.ref", f"refs already staged in this change set: {sorted(schools)[:10]}"
            )
        if clashes:
            raise InvalidArgument(
                "This batch touches a teacher, ref or email that an earlier batch of the change set "
                f"already staged (for example ref {clashes[0].ref!r}, email {clashes[0].upsert_email_key!r}, "
                f"teacher {clashes[0].teacher_id!r}); a change set touches each teacher at most once."
            )
        raise Aborted("Another batch was staged into this change set at the same time; retry this batch.")

    @staticmethod
    def _check_batch_duplicates(changes: Sequence[Change]) -> None:
        school_refs = [c.ref if isinstance(c, CreateSchoolChange) else None for c in changes]
        teacher_refs = [c.ref if isinstance(c, UpsertTeacherChange) else None for c in changes]
        emails = [email_key(c.email) if isinstance(c, UpsertTeacherChange) else None for c in changes]
        ids = [_named_teacher_id(c) for c in changes]
        changed_schools = [c.school_id if isinstance(c, _SCHOOL_CHANGES) else None for c in changes]
        problems = (
            duplicate_positions(school_refs, "changes[{}].create_school.ref")
            + duplicate_positions(teacher_refs, "changes[{}].upsert_teacher.ref")
            + duplicate_positions(emails, "changes[{}].upsert_teacher.email")
            + duplicate_positions(ids, "changes[{}].teacher_id")
            + duplicate_positions(changed_schools, "changes[{}].school_id (same school)")
        )
        if problems:
            raise InvalidArgument.for_fields(problems)

    def commit(self, district_id: str, change_set_id: str) -> ChangeSet:
        """Land every staged change in one transaction; ABORTED (and abandoned) on a conflict.

        Committing a committed change set returns it, so a caller may retry a commit whose answer
        it lost. Staged rows of committed change sets are purged by ``clean_up`` later, off the
        commit's critical path.
        """
        try:
            with self._store.transaction() as conn:
                current = self._current(conn, district_id, change_set_id)
                if current.state is ChangeSetState.OPEN:
                    self._apply(conn, current)
                    current = self._current(conn, district_id, change_set_id)
        except _Conflict as conflict:
            reason = str(conflict)
            with self._store.transaction() as conn:
                repo.abandon(conn, change_set_id, self._store.clock(), reason)
                repo.purge_staged(conn, change_set_id)
            raise Aborted(
                f"Change set {change_set_id!r} was not committed and is now abandoned: {reason} "
                "Nothing was written; read the roster again and stage a new change set.",
                reason="CHANGE_SET_CONFLICT",
            ) from None
        if current.state is not ChangeSetState.COMMITTED:
            self._require_open(current)
        return current

    def _apply(self, conn: Connection, change_set: ChangeSet) -> None:
        change_set_id = change_set.change_set_id
        changed = repo.revision_conflict(conn, change_set_id)
        if changed is not None:
            raise _Conflict(f"teacher {changed!r} changed after the change set read it.")
        changed = repo.school_revision_conflict(conn, change_set_id)
        if changed is not None:
            raise _Conflict(f"school {changed!r} changed after the change set read it.")
        taken = repo.email_conflict(conn, change_set_id, change_set.district_id)
        if taken is not None:
            ref, email = taken
            raise _Conflict(f"email {email!r} (ref {ref!r}) now belongs to another teacher.")
        now = self._store.clock()
        try:
            written = repo.apply_change_set(
                conn, change_set_id, change_set.district_id, now, change_set.staged
            )
        except IntegrityError:
            raise _Conflict("a concurrent writer took an email this change set creates.") from None
        for name, count in written.items():
            if count != getattr(change_set.staged, name):
                raise _Conflict("a teacher this change set touches changed while it was committing.")
        staged = change_set.staged
        if repo.apply_school_changes(conn, change_set_id, now) != {
            "schools_renamed": staged.schools_renamed,
            "schools_retired": staged.schools_archived + staged.schools_merged,
        }:
            raise _Conflict("a school this change set touches changed while it was committing.")
        if staged.schools_removed and repo.remove_schools(conn, change_set_id, now) != staged.schools_removed:
            raise _Conflict("a school this change set removes changed while it was committing.")
        applied = {f"applied_{f.name}": getattr(change_set.staged, f.name) for f in fields(ChangeCounts)}
        repo.update_change_set(
            conn, change_set_id, state=ChangeSetState.COMMITTED.value, end_time=now, **applied
        )

    def abandon(self, district_id: str, change_set_id: str, reason: str) -> ChangeSet:
        """Abandon an open change set; nothing it staged lands. Ended ones are returned as they are."""
        check_text(reason, "reason", maximum=MAX_REASON, required=False)
        with self._store.transaction() as conn:
            current = self._current(conn, district_id, change_set_id)
            if current.state is ChangeSetState.OPEN:
                repo.abandon(conn, change_set_id, self._store.clock(), reason or "Abandoned by the caller.")
                repo.purge_staged(conn, change_set_id)
                current = self._current(conn, district_id, change_set_id)
        if current.state is ChangeSetState.COMMITTED:
            raise FailedPrecondition(
                f"Change set {change_set_id!r} is committed; it can no longer be abandoned.",
                reason="CHANGE_SET_COMMITTED",
            )
        return current

    def list_results(
        self, district_id: str, change_set_id: str, page_size: int, page_token: str
    ) -> Page[ChangeSetResult]:
        """A page of a committed change set's results, by kind then ref."""
        limit = check_page_size(page_size, default=DEFAULT_RESULTS_PAGE, maximum=MAX_RESULTS_PAGE)
        query: list[str | int | None] = ["results", district_id, change_set_id]
        cursor = self._store.tokens.decode(page_token, query, [int, str])
        change_set = self._refresh(district_id, change_set_id)
        if change_set.state is not ChangeSetState.COMMITTED:
            raise FailedPrecondition(
                f"Change set {change_set_id!r} is {change_set.state.value.lower()}; only committed "
                "change sets have results.",
                reason=f"CHANGE_SET_{change_set.state.value}",
            )
        with self._store.transaction() as conn:
            after = (int(cursor[0]), str(cursor[1])) if cursor else None
            items = repo.list_results(conn, change_set_id, after, limit + 1)
        token = ""
        if len(items) > limit:
            items = items[:limit]
            token = self._store.tokens.encode(query, [int(items[-1].kind), items[-1].ref])
        return Page(items, token)

    def apply_one(self, district_id: str, change: Change) -> None:
        """One change in a change set of its own, committed: the convenience RPCs' path, same rules.

        A change malformed on its own is refused before any change set exists; one the roster
        refuses abandons its change set, so nothing stays open.
        """
        check_each([change], _check_change)
        change_set_id = self.create(district_id, None).change_set_id
        try:
            self.stage(district_id, change_set_id, 1, [change])
        except DomainError:
            self.abandon(district_id, change_set_id, "The change was refused.")
            raise
        self.commit(district_id, change_set_id)

    def clean_up(self) -> int:
        """Expire idle open change sets; purge staged rows of ended ones (commits leave theirs here)."""
        with self._store.transaction() as conn:
            due = repo.due_change_sets(conn, self._store.clock())
        for change_set_id in due:
            with self._store.transaction() as conn:
                repo.expire(conn, change_set_id)
                repo.purge_staged(conn, change_set_id)
        with self._store.transaction() as conn:
            leftovers = repo.change_sets_with_staged_rows(conn)
        for change_set_id in leftovers:
            with self._store.transaction() as conn:
                repo.purge_staged(conn, change_set_id)
        return len(due)
