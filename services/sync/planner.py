"""The sync planner: what a sync changes in EW, computed from both rosters and the sync's own state.

Preview and sync call the same ``plan_sync`` with the same inputs, so they agree by construction.
It is a pure function (no I/O) and every output list is sorted, so identical inputs give identical
plans. Rules decided here (see the README's sync notes):

- Schools: a stored mapping (any origin) whose EW school still exists wins; otherwise an identical
  normalised name, unique on both sides, maps it (never for a school an administrator unmapped);
  everything else is created with ClassLink's name (trimmed, at most 200 characters).
  ``tobedeleted`` ClassLink schools are neither created nor mapped, and no teacher belongs to them.
- Teachers match by stored link, then by email key. Rows without an email, with an invalid one, or
  sharing an email key with another active, enabled row are skipped (a ``tobedeleted`` account
  sharing the email of its replacement is not a duplicate); so are unreadable and nameless rows. A
  skipped row protects the EW teacher it would match (by link or by email): it is not archived, and
  only a row linked to it may change it.
- An email owned by an EW teacher linked to another ClassLink user is ``EMAIL_TAKEN`` while that
  user is still an active row (or an unreadable one) in this pull; when that user is absent,
  ``tobedeleted`` or disabled, the teacher is relinked to the row that carries the email now.
- A linked row whose new email belongs to another EW teacher is ``EMAIL_TAKEN``; both teachers are
  protected (swapping two emails in one sync is therefore not possible).
- Every active EW teacher of the district that no valid, active, enabled row matches and no skipped
  row protects is archived, hand-made EW teachers included.
- Guard: ``threshold = max(minimum, floor(max_fraction * active teachers))``; the plan needs review
  when the archives not already approved number more than the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from itertools import islice
from typing import NamedTuple

from services.sync.emails import email_key, is_valid_email
from services.sync.matching import auto_map

ACTIVE = "active"
NO_LONGER_IN_CLASSLINK = "No longer in ClassLink"
TOBEDELETED_IN_CLASSLINK = "Marked tobedeleted in ClassLink"
DISABLED_IN_CLASSLINK = "Disabled in ClassLink"
BACK_IN_CLASSLINK = "Back in ClassLink"
# RosterService rejects a blank name or one longer than this, which would fail the whole change set.
MAX_NAME = 200


class MappingOrigin(StrEnum):
    """How a ClassLink school's mapping came about; ``UNMAPPED`` records an administrator's unmap."""

    AUTO = "AUTO"
    MANUAL = "MANUAL"
    CREATED = "CREATED"
    UNMAPPED = "UNMAPPED"


class SkipReason(StrEnum):
    """Why a ClassLink row was skipped (the names of ``ew.sync.v1.SkipReason`` without prefix)."""

    MISSING_EMAIL = "MISSING_EMAIL"
    INVALID_EMAIL = "INVALID_EMAIL"
    DUPLICATE_EMAIL = "DUPLICATE_EMAIL"
    UNREADABLE_ROW = "UNREADABLE_ROW"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    MISSING_NAME = "MISSING_NAME"


class PlanItemKind(StrEnum):
    """The kind of a display row (the names of ``ew.sync.v1.PlanItemKind`` without prefix)."""

    CREATE_SCHOOL = "CREATE_SCHOOL"
    ADD_TEACHER = "ADD_TEACHER"
    UPDATE_TEACHER = "UPDATE_TEACHER"
    REACTIVATE_TEACHER = "REACTIVATE_TEACHER"
    ARCHIVE_TEACHER = "ARCHIVE_TEACHER"
    SKIP = "SKIP"


@dataclass(frozen=True, slots=True)
class SourceSchool:
    """A ClassLink org of type school; ``status`` is ``active`` or ``tobedeleted``."""

    sourced_id: str
    name: str
    status: str


@dataclass(frozen=True, slots=True)
class SourceTeacher:
    """A ClassLink user with role teacher."""

    sourced_id: str
    given_name: str
    family_name: str
    email: str | None
    status: str
    enabled: bool
    org_sourced_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """A ClassLink teacher row the OneRoster client could not read."""

    sourced_id: str | None
    reason_text: str


@dataclass(frozen=True, slots=True)
class SourceRoster:
    """A complete ClassLink pull (schools already filtered to orgs of type school)."""

    schools: Sequence[SourceSchool]
    teachers: Sequence[SourceTeacher]
    problems: Sequence[SourceProblem] = ()


@dataclass(frozen=True, slots=True)
class EwSchool:
    """A school of the district in EW."""

    school_id: str
    name: str


@dataclass(frozen=True, slots=True)
class EwTeacher:
    """A teacher of the district in EW, active or archived."""

    teacher_id: str
    given_name: str
    family_name: str
    email: str
    school_ids: frozenset[str]
    active: bool


@dataclass(frozen=True, slots=True)
class EwRoster:
    """The district as EW has it now."""

    schools: Sequence[EwSchool]
    teachers: Sequence[EwTeacher]


@dataclass(frozen=True, slots=True)
class MappingState:
    """A stored school mapping; ``ew_school_id`` is None for ``UNMAPPED``."""

    ew_school_id: str | None
    origin: MappingOrigin


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """Archive more than ``max(minimum, floor(max_fraction * active))`` teachers only after review."""

    max_fraction: float = 0.10
    minimum: int = 5


@dataclass(frozen=True, slots=True)
class SyncState:
    """The sync service's own records for the district."""

    mappings: Mapping[str, MappingState] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    guard: GuardConfig = GuardConfig()
    # The archives of an approved NEEDS_REVIEW run; None when this run is not an approval.
    approved_archives: frozenset[str] | None = None


class SchoolRef(NamedTuple):
    """An existing EW school (``school_id``) or one this plan creates (``create_ref``, a ClassLink id)."""

    school_id: str = ""
    create_ref: str = ""


@dataclass(frozen=True, slots=True)
class SchoolCreate:
    """A ClassLink school created in EW under its ClassLink name; the change set ref is ``classlink_id``."""

    classlink_id: str
    name: str


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One changed teacher field (``given_name``, ``family_name`` or ``email``)."""

    field: str
    old_value: str
    new_value: str


@dataclass(frozen=True, slots=True)
class TeacherUpsert:
    """A teacher to add (``ew_teacher_id`` None), update or reactivate, with its complete new state.

    ``schools`` is the complete school list to send; the ``schools_*`` fields describe the
    difference from EW for display (names) and counting.
    """

    classlink_id: str
    ew_teacher_id: str | None
    given_name: str
    family_name: str
    email: str
    schools: tuple[SchoolRef, ...]
    field_changes: tuple[FieldChange, ...]
    schools_added: tuple[SchoolRef, ...]
    schools_removed: tuple[str, ...]
    schools_added_names: tuple[str, ...]
    schools_removed_names: tuple[str, ...]

    @property
    def changes_schools(self) -> bool:
        """Whether the teacher's school list changes."""
        return bool(self.schools_added or self.schools_removed)

    @property
    def changes_anything(self) -> bool:
        """Whether EW would change for this teacher apart from a reactivation."""
        return bool(self.field_changes) or self.changes_schools


@dataclass(frozen=True, slots=True)
class TeacherArchive:
    """An active EW teacher to archive, and why."""

    ew_teacher_id: str
    classlink_id: str
    given_name: str
    family_name: str
    email: str
    reason: str


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A ClassLink row left out of the sync; ``email`` is exactly what ClassLink sent."""

    classlink_id: str
    given_name: str
    family_name: str
    email: str
    reason: SkipReason
    detail: str


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts as in ``ew.sync.v1.SyncSummary``; ``skipped`` has only non-zero reasons, in enum order."""

    schools_created: int
    teachers_added: int
    teachers_updated: int
    teachers_archived: int
    teachers_reactivated: int
    teachers_unchanged: int
    skipped: tuple[tuple[SkipReason, int], ...]
    membership_changes: int


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    """The safety guard's verdict, as in ``ew.sync.v1.GuardVerdict`` plus how many archives counted."""

    needs_review: bool
    archive_count: int
    counted_archives: int
    active_count: int
    threshold: int
    message: str


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything one sync changes, sorted; ``unchanged`` counts matched teachers already up to date."""

    school_creates: tuple[SchoolCreate, ...]
    new_auto_mappings: tuple[tuple[str, str], ...]
    adds: tuple[TeacherUpsert, ...]
    updates: tuple[TeacherUpsert, ...]
    reactivations: tuple[TeacherUpsert, ...]
    archives: tuple[TeacherArchive, ...]
    unchanged: int
    skips: tuple[SkippedRow, ...]
    new_links: tuple[tuple[str, str], ...]
    summary: Summary
    guard: GuardVerdict

    @property
    def has_changes(self) -> bool:
        """Whether committing the plan would change EW (skips and bookkeeping do not)."""
        return bool(self.school_creates or self.adds or self.updates or self.reactivations or self.archives)


@dataclass(frozen=True, slots=True)
class PlanItemData:
    """One display row of a plan, shaped like ``ew.sync.v1.PlanItem``."""

    kind: PlanItemKind
    classlink_id: str
    ew_id: str
    display_name: str
    email: str
    field_changes: tuple[FieldChange, ...]
    schools_added: tuple[str, ...]
    schools_removed: tuple[str, ...]
    reason: str
    skip_reason: SkipReason | None


@dataclass(frozen=True, slots=True)
class _Schools:
    refs: tuple[SchoolRef, ...]
    existing: frozenset[str]
    creates_any: bool


@dataclass(frozen=True, slots=True)
class _SchoolPlan:
    targets: dict[str, SchoolRef]
    names: dict[SchoolRef, str]
    creates: tuple[SchoolCreate, ...]
    auto_mappings: tuple[tuple[str, str], ...]


def _plan_schools(
    classlink: Sequence[SourceSchool], ew: Sequence[EwSchool], mappings: Mapping[str, MappingState]
) -> _SchoolPlan:
    ew_names = {school.school_id: school.name for school in ew}
    active = {school.sourced_id: school for school in classlink if school.status == ACTIVE}
    # A mapping to an EW school that no longer exists is void: the school is matched or created again.
    stored = {
        classlink_id: mapping.ew_school_id
        for classlink_id, mapping in mappings.items()
        if mapping.origin != MappingOrigin.UNMAPPED and mapping.ew_school_id in ew_names
    }
    blocked = [
        classlink_id for classlink_id, mapping in mappings.items() if mapping.origin == MappingOrigin.UNMAPPED
    ]
    auto_pairs = auto_map(
        {classlink_id: school.name for classlink_id, school in active.items()},
        ew_names,
        mapped_classlink_ids=stored.keys(),
        mapped_ew_ids=stored.values(),
        blocked_classlink_ids=blocked,
    )
    mapped = dict(stored) | dict(auto_pairs)
    targets: dict[str, SchoolRef] = {}
    names: dict[SchoolRef, str] = {}
    creates: list[SchoolCreate] = []
    for classlink_id in sorted(active):
        ew_school_id = mapped.get(classlink_id)
        if ew_school_id is None:
            ref = SchoolRef(create_ref=classlink_id)
            # A nameless ClassLink school still needs a name EW accepts; its id lets an admin find it.
            name = _clean_name(active[classlink_id].name) or f"ClassLink school {classlink_id}"[:MAX_NAME]
            names[ref] = name
            creates.append(SchoolCreate(classlink_id, name))
        else:
            ref = SchoolRef(school_id=ew_school_id)
            names[ref] = ew_names[ew_school_id]
        targets[classlink_id] = ref
    for school_id, name in ew_names.items():
        names.setdefault(SchoolRef(school_id=school_id), name)
    return _SchoolPlan(targets, names, tuple(creates), tuple(auto_pairs))


def _clean_name(name: str) -> str:
    """A name as sent to EW: trimmed, and cut to the roster's limit."""
    return name.strip()[:MAX_NAME].rstrip()


def _departure_reason(row: SourceTeacher) -> str | None:
    if row.status != ACTIVE:
        return TOBEDELETED_IN_CLASSLINK
    if not row.enabled:
        return DISABLED_IN_CLASSLINK
    return None


class _TeacherPlanner:
    """One pass over the rows; every lookup is a dict, so the plan is linear in the roster size."""

    def __init__(self, source: SourceRoster, ew: EwRoster, state: SyncState, schools: _SchoolPlan) -> None:
        self.schools = schools
        self.ew_by_id = {teacher.teacher_id: teacher for teacher in ew.teachers}
        self.ew_by_key = {email_key(teacher.email): teacher for teacher in ew.teachers}
        # Links to teachers that no longer exist are ignored; the row falls back to its email.
        self.links = {cl: ew_id for cl, ew_id in sorted(state.links.items()) if ew_id in self.ew_by_id}
        self.linked_to: dict[str, str] = {}
        for classlink_id, ew_id in self.links.items():
            self.linked_to.setdefault(ew_id, classlink_id)
        self.claimed: dict[str, str] = {}
        self.protected: set[str] = set()
        self.departures: dict[str, tuple[str, str]] = {}
        self.adds: list[TeacherUpsert] = []
        self.updates: list[TeacherUpsert] = []
        self.reactivations: list[TeacherUpsert] = []
        self.unchanged = 0
        self.skips: list[SkippedRow] = []
        self.new_links: list[tuple[str, str]] = []
        self.schools_by_orgs: dict[tuple[str, ...], _Schools] = {}
        self.source = source
        rows = sorted(source.teachers, key=lambda row: row.sourced_id)
        self.departed = [(row, reason) for row in rows if (reason := _departure_reason(row)) is not None]
        gone = {row.sourced_id for row, _ in self.departed}
        self.present = [row for row in rows if row.sourced_id not in gone]
        # Users who still own their linked EW teacher: present rows, valid or not, and unreadable rows.
        self.owners = {row.sourced_id for row in self.present} | {
            problem.sourced_id for problem in source.problems if problem.sourced_id is not None
        }

    def run(self) -> None:
        """Match, skip or add every row, then note why departed rows' teachers go."""
        for problem in self.source.problems:
            self._skip_unreadable(problem)
        valid = self._valid_rows(self.present)
        by_email: list[tuple[SourceTeacher, str]] = []
        for row, key in valid:
            linked_id = self.links.get(row.sourced_id)
            if linked_id is None or linked_id in self.claimed:
                by_email.append((row, key))
                continue
            owner = self.ew_by_key.get(key)
            if owner is not None and owner.teacher_id != linked_id:
                self._skip(
                    row,
                    SkipReason.EMAIL_TAKEN,
                    f"The new email already belongs to EW teacher {owner.teacher_id}",
                )
                self.protected.update((linked_id, owner.teacher_id))
                continue
            self._match(row, self.ew_by_id[linked_id], linked=True)
        for row, key in by_email:
            owner = self.ew_by_key.get(key)
            if owner is None:
                self._add(row)
                continue
            other = self.linked_to.get(owner.teacher_id)
            if owner.teacher_id in self.claimed or (
                other is not None and other != row.sourced_id and other in self.owners
            ):
                self._skip(
                    row,
                    SkipReason.EMAIL_TAKEN,
                    "The email belongs to an EW teacher linked to another ClassLink user",
                )
                self.protected.add(owner.teacher_id)
                continue
            self._match(row, owner, linked=False)
        for row, reason in self.departed:
            self._note_departure(row, reason)

    def _valid_rows(self, present: list[SourceTeacher]) -> list[tuple[SourceTeacher, str]]:
        """Rows with a valid email no other present row shares, in sourcedId order; skips the rest."""
        first: dict[str, SourceTeacher] = {}
        shared: dict[str, list[SourceTeacher]] = {}
        for row in present:
            email = row.email.strip() if row.email else ""
            if not email:
                self._skip(row, SkipReason.MISSING_EMAIL, "No email in ClassLink")
            elif not is_valid_email(email):
                self._skip(row, SkipReason.INVALID_EMAIL, "The email is not a valid address")
            elif not _clean_name(row.given_name) or not _clean_name(row.family_name):
                self._skip(row, SkipReason.MISSING_NAME, "No given or family name in ClassLink")
            else:
                key = email_key(email)
                if key in first:
                    shared.setdefault(key, [first[key]]).append(row)
                else:
                    first[key] = row
        for key, sharing in shared.items():
            del first[key]
            for row in sharing:
                # A shared placeholder address can cover thousands of rows: name only a few others.
                named = list(islice((other.sourced_id for other in sharing if other is not row), 3))
                more = len(sharing) - 1 - len(named)
                others = ", ".join(named) + (f" and {more} more" if more else "")
                self._skip(
                    row, SkipReason.DUPLICATE_EMAIL, f"Shares its email with ClassLink user(s) {others}"
                )
        return [(row, key) for key, row in first.items()]

    def _skip(self, row: SourceTeacher, reason: SkipReason, detail: str) -> None:
        self.skips.append(
            SkippedRow(row.sourced_id, row.given_name, row.family_name, row.email or "", reason, detail)
        )
        linked_id = self.links.get(row.sourced_id)
        if linked_id is not None:
            self.protected.add(linked_id)
        if row.email and row.email.strip():
            same_email = self.ew_by_key.get(email_key(row.email))
            if same_email is not None:
                self.protected.add(same_email.teacher_id)

    def _skip_unreadable(self, problem: SourceProblem) -> None:
        classlink_id = problem.sourced_id or ""
        self.skips.append(
            SkippedRow(classlink_id, "", "", "", SkipReason.UNREADABLE_ROW, problem.reason_text)
        )
        linked_id = self.links.get(classlink_id)
        if linked_id is not None:
            self.protected.add(linked_id)

    def _school_refs(self, row: SourceTeacher) -> _Schools:
        """The row's schools; cached per org list, which thousands of teachers share."""
        cached = self.schools_by_orgs.get(row.org_sourced_ids)
        if cached is None:
            targets = self.schools.targets
            refs = tuple(sorted({targets[org] for org in row.org_sourced_ids if org in targets}))
            existing = frozenset(ref.school_id for ref in refs if ref.school_id)
            cached = _Schools(refs, existing, len(existing) < len(refs))
            self.schools_by_orgs[row.org_sourced_ids] = cached
        return cached

    def _add(self, row: SourceTeacher) -> None:
        schools = self._school_refs(row).refs
        self.adds.append(
            TeacherUpsert(
                classlink_id=row.sourced_id,
                ew_teacher_id=None,
                given_name=_clean_name(row.given_name),
                family_name=_clean_name(row.family_name),
                email=(row.email or "").strip(),
                schools=schools,
                field_changes=(),
                schools_added=schools,
                schools_removed=(),
                schools_added_names=self._names(schools),
                schools_removed_names=(),
            )
        )

    def _names(self, refs: Sequence[SchoolRef]) -> tuple[str, ...]:
        return tuple(sorted(self.schools.names[ref] for ref in refs))

    def _match(self, row: SourceTeacher, teacher: EwTeacher, *, linked: bool) -> None:
        self.claimed[teacher.teacher_id] = row.sourced_id
        if not linked:
            self.new_links.append((row.sourced_id, teacher.teacher_id))
        given, family, email = (
            _clean_name(row.given_name),
            _clean_name(row.family_name),
            (row.email or "").strip(),
        )
        wanted = self._school_refs(row)
        if (
            teacher.active
            and not wanted.creates_any
            and wanted.existing == teacher.school_ids
            and (given, family, email) == (teacher.given_name, teacher.family_name, teacher.email)
        ):
            self.unchanged += 1
            return
        changes = tuple(
            FieldChange(name, old, new)
            for name, old, new in (
                ("given_name", teacher.given_name, given),
                ("family_name", teacher.family_name, family),
                ("email", teacher.email, email),
            )
            if old != new
        )
        schools = wanted.refs
        added = tuple(ref for ref in schools if ref.create_ref or ref.school_id not in teacher.school_ids)
        removed = tuple(sorted(teacher.school_ids - wanted.existing))
        upsert = TeacherUpsert(
            classlink_id=row.sourced_id,
            ew_teacher_id=teacher.teacher_id,
            given_name=given,
            family_name=family,
            email=email,
            schools=schools,
            field_changes=changes,
            schools_added=added,
            schools_removed=removed,
            schools_added_names=self._names(added),
            schools_removed_names=self._names([SchoolRef(school_id=school_id) for school_id in removed]),
        )
        if not teacher.active:
            self.reactivations.append(upsert)
        elif upsert.changes_anything:
            self.updates.append(upsert)
        else:
            self.unchanged += 1

    def _note_departure(self, row: SourceTeacher, reason: str) -> None:
        """Remember why a departed row's EW teacher goes, to give the archive its reason."""
        teacher_id = self.links.get(row.sourced_id)
        if teacher_id is None and row.email and is_valid_email(row.email):
            by_email = self.ew_by_key.get(email_key(row.email))
            if by_email is not None and self.linked_to.get(by_email.teacher_id) in (None, row.sourced_id):
                teacher_id = by_email.teacher_id
        if teacher_id is not None:
            self.departures.setdefault(teacher_id, (row.sourced_id, reason))

    def archives(self) -> list[TeacherArchive]:
        """Active EW teachers no valid row matched and no skipped row protects."""
        archives: list[TeacherArchive] = []
        for teacher_id in sorted(self.ew_by_id):
            teacher = self.ew_by_id[teacher_id]
            if not teacher.active or teacher_id in self.claimed or teacher_id in self.protected:
                continue
            classlink_id, reason = self.departures.get(
                teacher_id, (self.linked_to.get(teacher_id, ""), NO_LONGER_IN_CLASSLINK)
            )
            archives.append(
                TeacherArchive(
                    teacher_id, classlink_id, teacher.given_name, teacher.family_name, teacher.email, reason
                )
            )
        return archives


def _guard(
    archives: Sequence[TeacherArchive],
    active_count: int,
    config: GuardConfig,
    approved: frozenset[str] | None,
) -> GuardVerdict:
    # Fraction(str(...)) keeps 0.1 exact, so 10% of 50 is exactly 5.
    threshold = max(config.minimum, math.floor(Fraction(str(config.max_fraction)) * active_count))
    counted = sum(1 for archive in archives if approved is None or archive.ew_teacher_id not in approved)
    needs_review = counted > threshold
    if needs_review:
        message = (
            f"This sync would archive {counted} of {active_count} active teachers, more than the "
            f"{threshold} allowed without review. Check the list and approve the run to go ahead."
        )
    elif approved is not None and counted < len(archives):
        approved_count = len(archives) - counted
        message = f"Archives {len(archives)} teachers, {approved_count} of them approved by an administrator."
    else:
        message = (
            f"Archives {len(archives)} of {active_count} active teachers (up to {threshold} without review)."
        )
    return GuardVerdict(needs_review, len(archives), counted, active_count, threshold, message)


def plan_sync(source: SourceRoster, ew: EwRoster, state: SyncState) -> Plan:
    """The changes that make EW's district match ClassLink's roster, with the guard's verdict."""
    schools = _plan_schools(source.schools, ew.schools, state.mappings)
    teachers = _TeacherPlanner(source, ew, state, schools)
    teachers.run()
    archives = teachers.archives()
    skips = sorted(teachers.skips, key=lambda skip: (skip.classlink_id, skip.reason, skip.detail))
    updates = sorted(teachers.updates, key=lambda upsert: upsert.classlink_id)
    skip_counts = dict.fromkeys(SkipReason, 0)
    for skip in skips:
        skip_counts[skip.reason] += 1
    summary = Summary(
        schools_created=len(schools.creates),
        teachers_added=len(teachers.adds),
        teachers_updated=len(updates),
        teachers_archived=len(archives),
        teachers_reactivated=len(teachers.reactivations),
        teachers_unchanged=teachers.unchanged,
        skipped=tuple((reason, count) for reason, count in skip_counts.items() if count),
        membership_changes=sum(1 for upsert in updates if upsert.changes_schools),
    )
    active_count = sum(1 for teacher in ew.teachers if teacher.active)
    return Plan(
        school_creates=schools.creates,
        new_auto_mappings=schools.auto_mappings,
        adds=tuple(sorted(teachers.adds, key=lambda upsert: upsert.classlink_id)),
        updates=tuple(updates),
        reactivations=tuple(sorted(teachers.reactivations, key=lambda upsert: upsert.classlink_id)),
        archives=tuple(archives),
        unchanged=teachers.unchanged,
        skips=tuple(skips),
        new_links=tuple(sorted(teachers.new_links)),
        summary=summary,
        guard=_guard(archives, active_count, state.guard, state.approved_archives),
    )


def _teacher_item(kind: PlanItemKind, upsert: TeacherUpsert, reason: str) -> PlanItemData:
    return PlanItemData(
        kind=kind,
        classlink_id=upsert.classlink_id,
        ew_id=upsert.ew_teacher_id or "",
        display_name=f"{upsert.given_name} {upsert.family_name}",
        email=upsert.email,
        field_changes=upsert.field_changes,
        schools_added=upsert.schools_added_names,
        schools_removed=upsert.schools_removed_names,
        reason=reason,
        skip_reason=None,
    )


def plan_items(plan: Plan) -> Iterator[PlanItemData]:
    """Display rows: schools created, then teachers added, updated, reactivated, archived, skipped."""
    for create in plan.school_creates:
        yield PlanItemData(
            PlanItemKind.CREATE_SCHOOL, create.classlink_id, "", create.name, "", (), (), (), "", None
        )
    for upsert in plan.adds:
        yield _teacher_item(PlanItemKind.ADD_TEACHER, upsert, "")
    for upsert in plan.updates:
        yield _teacher_item(PlanItemKind.UPDATE_TEACHER, upsert, "")
    for upsert in plan.reactivations:
        yield _teacher_item(PlanItemKind.REACTIVATE_TEACHER, upsert, BACK_IN_CLASSLINK)
    for archive in plan.archives:
        yield PlanItemData(
            kind=PlanItemKind.ARCHIVE_TEACHER,
            classlink_id=archive.classlink_id,
            ew_id=archive.ew_teacher_id,
            display_name=f"{archive.given_name} {archive.family_name}",
            email=archive.email,
            field_changes=(),
            schools_added=(),
            schools_removed=(),
            reason=archive.reason,
            skip_reason=None,
        )
    for skip in plan.skips:
        yield PlanItemData(
            kind=PlanItemKind.SKIP,
            classlink_id=skip.classlink_id,
            ew_id="",
            display_name=f"{skip.given_name} {skip.family_name}".strip(),
            email=skip.email,
            field_changes=(),
            schools_added=(),
            schools_removed=(),
            reason=skip.detail,
            skip_reason=skip.reason,
        )
