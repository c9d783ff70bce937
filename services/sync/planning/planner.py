"""The sync planner: what a sync changes in EW, computed from both rosters and the sync's own state.

Preview and sync call the same ``plan_sync`` with the same inputs, so they agree by construction.
It is a pure function (no I/O) and every output list is sorted, so identical inputs in any order
give identical plans. Rules decided here (the README's sync rules say the same in words):

- Schools: a stored mapping (any origin) whose EW school still exists wins; otherwise an identical
  normalised name, unique on both sides, maps it (never for a school an administrator unmapped);
  everything else is created with ClassLink's name. ``tobedeleted`` ClassLink schools are neither
  created nor mapped, and no teacher belongs to them. A school row without a name is unreadable:
  never created, and the memberships of its mapped EW school stay exactly as they are; a school row
  without any identity means no teacher loses a membership in this run.
- The sync owns a teacher's memberships only in EW schools mapped from (or created for) a ClassLink
  school; memberships in every other EW school are kept as they are, and shown as kept.
- One person, several rows: present (active, enabled) staff accounts sharing an email key under the
  same name key (``person_names.name_key``) are one person. Its teacher rows become one EW teacher
  with the union of their schools, linked to every one of their sourcedIds; a non-teacher account of
  that person changes nothing. The same email under different names is a conflict: every teacher
  row with it is ``DUPLICATE_EMAIL``. A ``tobedeleted`` account never conflicts.
- Rows without an email, with an invalid one (control characters included), or without a given or
  family name are skipped, as are unreadable rows. A skipped row protects the EW teacher it names
  (by link or by email): it is not archived. Names lose control characters and are cut to
  ``MAX_NAME``, with a warning on the item.
- A person matches by stored link (any of its sourcedIds), then by email key. An email owned by an EW
  teacher linked to another ClassLink user is ``EMAIL_TAKEN`` while that user is still present (or
  unreadable) in this pull; otherwise the teacher is relinked. A linked person whose new email
  belongs to another EW teacher is ``EMAIL_TAKEN``; both teachers are protected.
- Every active EW teacher of the district that no person matches and no skipped row protects is
  archived, hand-made EW teachers included, unless some teacher row carries no identity at all:
  then nobody can be shown to have left, and nobody is archived.
- Guard: ``threshold = max(minimum, floor(max_fraction * active teachers))``; the plan needs review
  when the archives, or the teachers losing a school membership, not already approved number more
  than the threshold, or when ClassLink lists no active school while the district has mapped ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import islice
from typing import NamedTuple

from services.sync.planning.emails import email_key, is_valid_email
from services.sync.planning.matching import auto_map
from services.sync.planning.person_names import MAX_NAME, clean_name, name_key, name_warnings
from services.sync.vocabulary import MappingOrigin, PlanItemKind, SkipReason

__all__ = ["MAX_NAME", "MappingOrigin", "PlanItemKind", "SkipReason"]

ACTIVE = "active"
NO_LONGER_IN_CLASSLINK = "No longer in ClassLink"
TOBEDELETED_IN_CLASSLINK = "Marked tobedeleted in ClassLink"
DISABLED_IN_CLASSLINK = "Disabled in ClassLink"
BACK_IN_CLASSLINK = "Back in ClassLink"
# How often the planner reports progress: often enough for a bar, rarely enough to cost nothing.
PROGRESS_EVERY = 2_000

Progress = Callable[[int, int], None]
"""Told ``(decided, persons)``: how many of the roster's people the planner has decided."""

_NO_LINKS: frozenset[str] = frozenset()


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
class SourceStaff:
    """A ClassLink staff account that is not a teacher (administrator, aide, proctor)."""

    sourced_id: str
    role: str
    given_name: str
    family_name: str
    email: str | None
    status: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """A ClassLink teacher row the OneRoster client could not read, with what identity it still had."""

    sourced_id: str | None
    reason_text: str
    email: str | None = None

    @property
    def anonymous(self) -> bool:
        """Whether the row names nobody: no sourcedId and no email."""
        return not self.sourced_id and not (self.email and self.email.strip())


@dataclass(frozen=True, slots=True)
class SchoolProblem:
    """A ClassLink school row that could not be read."""

    sourced_id: str | None
    reason_text: str


@dataclass(frozen=True, slots=True)
class SourceRoster:
    """A complete ClassLink pull (schools already filtered to orgs of type school)."""

    schools: Sequence[SourceSchool]
    teachers: Sequence[SourceTeacher]
    problems: Sequence[SourceProblem] = ()
    staff: Sequence[SourceStaff] = ()
    school_problems: Sequence[SchoolProblem] = ()


@dataclass(frozen=True, slots=True)
class EwSchool:
    """A school of the district in EW.

    Archived ones are never matched; ``merged_into`` names the school an archived one was merged into.
    """

    school_id: str
    name: str
    active: bool = True
    merged_into: str = ""


def live_school_id(school_id: str | None, schools: Mapping[str, EwSchool]) -> str | None:
    """The active EW school a stored mapping's school stands for now.

    Itself while active; the school it was merged into (through further merges) once merged; None
    when it is archived without a merge or gone, so the mapping is void.
    """
    seen: set[str] = set()
    while school_id is not None and school_id not in seen:
        school = schools.get(school_id)
        if school is None:
            return None
        if school.active:
            return school_id
        seen.add(school_id)
        school_id = school.merged_into or None
    return None


@dataclass(frozen=True, slots=True)
class EwTeacher:
    """A teacher of the district in EW, active or archived."""

    teacher_id: str
    given_name: str
    family_name: str
    email: str
    school_ids: frozenset[str]
    active: bool
    archive_reason: str = ""


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
    """The safety guard's limits: above ``max(minimum, floor(max_fraction * active))``, review.

    Archiving, or removing school memberships from, more teachers than that waits for approval.
    """

    max_fraction: float = 0.10
    minimum: int = 5


@dataclass(frozen=True, slots=True)
class Approval:
    """What an administrator approved by approving a NEEDS_REVIEW run (EW teacher ids)."""

    archives: frozenset[str] = frozenset()
    membership_removals: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SyncState:
    """The sync service's own records for the district."""

    mappings: Mapping[str, MappingState] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    guard: GuardConfig = GuardConfig()
    # What the reviewed run listed, when this run is an approval; None otherwise.
    approval: Approval | None = None


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

    ``classlink_id`` is the person's first sourcedId (the change set ref) and ``classlink_ids`` all of
    them. ``schools`` is the complete school list to send; the ``schools_*`` fields describe the
    difference from EW for display (names) and counting; ``schools_kept_names`` are the memberships
    the sync does not own and keeps.
    """

    classlink_id: str
    classlink_ids: tuple[str, ...]
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
    schools_kept_names: tuple[str, ...]
    warnings: tuple[str, ...]

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
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    """The safety guard's verdict, as in ``ew.sync.v1.GuardVerdict`` plus how many changes counted."""

    needs_review: bool
    archive_count: int
    counted_archives: int
    active_count: int
    threshold: int
    message: str
    membership_removal_count: int = 0
    counted_membership_removals: int = 0


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything one sync changes, sorted; ``unchanged`` counts matched teachers already up to date.

    ``new_links`` holds, for each EW teacher whose links change, every sourcedId of its person: those
    are the teacher's complete links once the plan is applied.
    """

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
    schools_kept: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Schools:
    refs: tuple[SchoolRef, ...]
    existing: frozenset[str]
    creates_any: bool
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _SchoolPlan:
    targets: dict[str, SchoolRef]
    names: dict[SchoolRef, str]
    creates: tuple[SchoolCreate, ...]
    auto_mappings: tuple[tuple[str, str], ...]
    # EW schools whose memberships the sync leaves exactly as they are: neither mapped from nor
    # created for a ClassLink school, or mapped from a school row that could not be read.
    kept: frozenset[str]
    mapped_count: int


def _plan_schools(
    classlink: Sequence[SourceSchool],
    ew: Sequence[EwSchool],
    mappings: Mapping[str, MappingState],
    unreadable: Sequence[SchoolProblem],
) -> _SchoolPlan:
    by_id = {school.school_id: school for school in ew}
    ew_names = {school.school_id: school.name for school in ew if school.active}
    active = {school.sourced_id: school for school in classlink if school.status == ACTIVE}
    # A mapping follows its EW school's merges; one to a school that no longer exists, or that was
    # archived without a merge, is void: the school is matched or created again.
    stored = {
        classlink_id: live
        for classlink_id, mapping in mappings.items()
        if mapping.origin != MappingOrigin.UNMAPPED
        and (live := live_school_id(mapping.ew_school_id, by_id)) is not None
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
            names[ref] = clean_name(active[classlink_id].name)
            creates.append(SchoolCreate(classlink_id, names[ref]))
        else:
            ref = SchoolRef(school_id=ew_school_id)
            names[ref] = ew_names[ew_school_id]
        targets[classlink_id] = ref
    for school in ew:
        names.setdefault(SchoolRef(school_id=school.school_id), school.name)
    frozen = {stored[problem.sourced_id] for problem in unreadable if problem.sourced_id in stored}
    if any(not problem.sourced_id for problem in unreadable):
        # A school row that names no school could be any of them: no membership goes this run.
        frozen = set(ew_names)
    # Memberships in archived schools are history the sync leaves as they are.
    archived = frozenset(by_id) - frozenset(ew_names)
    kept = (frozenset(ew_names) - frozenset(mapped.values())) | frozen | archived
    return _SchoolPlan(targets, names, tuple(creates), tuple(auto_pairs), kept, len(stored))


def _departure_reason(row: SourceTeacher) -> str | None:
    if row.status != ACTIVE:
        return TOBEDELETED_IN_CLASSLINK
    if not row.enabled:
        return DISABLED_IN_CLASSLINK
    return None


class _Person(NamedTuple):
    """The teacher rows of one person (sorted by sourcedId): one EW teacher (one per row: a NamedTuple)."""

    rows: tuple[SourceTeacher, ...]
    key: str
    sourced_ids: tuple[str, ...]
    orgs: tuple[str, ...]

    @classmethod
    def of(cls, rows: Sequence[SourceTeacher], key: str) -> _Person:
        orgs = (
            rows[0].org_sourced_ids
            if len(rows) == 1
            else tuple({o: None for r in rows for o in r.org_sourced_ids})
        )
        return cls(tuple(rows), key, tuple(row.sourced_id for row in rows), orgs)

    @property
    def first(self) -> SourceTeacher:
        return self.rows[0]


@dataclass(frozen=True, slots=True)
class _Account:
    """A present account (teacher or other staff) that has an email, as the conflict check sees it."""

    sourced_id: str
    role: str
    names: tuple[str, str]

    @property
    def label(self) -> str:
        """The account as a skip reason names it: its sourcedId, and its role unless teacher."""
        return self.sourced_id if self.role == "teacher" else f"{self.sourced_id} ({self.role})"


def _warnings(row: SourceTeacher) -> tuple[str, ...]:
    return name_warnings(row.given_name, "given name") + name_warnings(row.family_name, "family name")


class _TeacherPlanner:
    """One pass over the rows; every lookup is a dict, so the plan is linear in the roster size."""

    def __init__(self, source: SourceRoster, ew: EwRoster, state: SyncState, schools: _SchoolPlan) -> None:
        self.schools = schools
        self.ew_by_id = {teacher.teacher_id: teacher for teacher in ew.teachers}
        self.ew_by_key = {email_key(teacher.email): teacher for teacher in ew.teachers}
        # Links to teachers that no longer exist are ignored; the row falls back to its email.
        self.links = {cl: ew_id for cl, ew_id in state.links.items() if ew_id in self.ew_by_id}
        self.linked_from: dict[str, set[str]] = {}
        for classlink_id, ew_id in self.links.items():
            self.linked_from.setdefault(ew_id, set()).add(classlink_id)
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
            problem.sourced_id for problem in source.problems if problem.sourced_id
        }

    def run(self, progress: Progress) -> None:
        """Skip, match or add every person, then note why departed rows' teachers go.

        ``progress(decided, persons)`` hears how many people are decided, every few thousand.
        """
        for problem in self.source.problems:
            self._skip_unreadable(problem)
        by_email: list[_Person] = []
        persons = self._persons()
        for index, person in enumerate(persons):
            if index % PROGRESS_EVERY == 0:
                progress(index - len(by_email), len(persons))
            linked_id = self._linked_teacher(person)
            if linked_id is None:
                by_email.append(person)
                continue
            owner = self.ew_by_key.get(person.key)
            if owner is not None and owner.teacher_id != linked_id:
                self._skip_person(
                    person,
                    SkipReason.EMAIL_TAKEN,
                    f"The new email already belongs to EW teacher {owner.teacher_id}",
                )
                self.protected.update((linked_id, owner.teacher_id))
                continue
            self._match(person, self.ew_by_id[linked_id])
        for index, person in enumerate(by_email):
            if index % PROGRESS_EVERY == 0:
                progress(len(persons) - len(by_email) + index, len(persons))
            owner = self.ew_by_key.get(person.key)
            if owner is None:
                self._add(person)
                continue
            others = self.linked_from.get(owner.teacher_id, set()) - set(person.sourced_ids)
            if owner.teacher_id in self.claimed or not others.isdisjoint(self.owners):
                self._skip_person(
                    person,
                    SkipReason.EMAIL_TAKEN,
                    "The email belongs to an EW teacher linked to another ClassLink user",
                )
                self.protected.add(owner.teacher_id)
                continue
            self._match(person, owner)
        for row, reason in self.departed:
            self._note_departure(row, reason)
        progress(len(persons), len(persons))

    def _linked_teacher(self, person: _Person) -> str | None:
        """The unclaimed EW teacher a person's links name: the one with its email, else the first."""
        if len(person.sourced_ids) == 1:
            linked_id = self.links.get(person.sourced_ids[0])
            return None if linked_id is None or linked_id in self.claimed else linked_id
        # A comprehension, not ``set - dict.keys()``: that walks every claimed teacher per person.
        linked = {self.links[s] for s in person.sourced_ids if s in self.links}
        candidates = sorted(ew_id for ew_id in linked if ew_id not in self.claimed)
        if not candidates:
            return None
        owner = self.ew_by_key.get(person.key)
        return owner.teacher_id if owner is not None and owner.teacher_id in candidates else candidates[0]

    def _persons(self) -> list[_Person]:
        """Present rows grouped into people, in sourcedId order; skips rows that cannot be one."""
        # One row per email is the rule and a list per email the exception: at 100,000 rows the
        # allocations (and the collector passes they cause) are most of the planner's time.
        first: dict[str, SourceTeacher] = {}
        shared: dict[str, list[SourceTeacher]] = {}
        for row in self.present:
            email = row.email.strip() if row.email else ""
            if not email:
                self._skip(row, SkipReason.MISSING_EMAIL, "No email in ClassLink")
            elif not is_valid_email(row.email or ""):
                self._skip(row, SkipReason.INVALID_EMAIL, "The email is not a valid address")
            elif not clean_name(row.given_name) or not clean_name(row.family_name):
                self._skip(row, SkipReason.MISSING_NAME, "No given or family name in ClassLink")
            elif (key := email_key(email)) in first:
                shared.setdefault(key, [first[key]]).append(row)
            else:
                first[key] = row
        staff = self._staff_by_key()
        persons: list[_Person] = []
        # ``first`` is in the order of each email's first row, and the rows are in sourcedId order.
        for key, row in first.items():
            rows = shared.get(key, [row])
            if len(rows) == 1 and key not in staff:
                persons.append(_Person.of(rows, key))
                continue
            accounts = [
                _Account(other.sourced_id, "teacher", name_key(other.given_name, other.family_name))
                for other in rows
            ]
            accounts += staff.get(key, [])
            if len({account.names for account in accounts}) == 1:
                persons.append(_Person.of(rows, key))
                continue
            for conflicted in rows:
                # A shared placeholder address can cover thousands of rows: name only a few others.
                others = (account for account in accounts if account.sourced_id != conflicted.sourced_id)
                named = [other.label for other in islice(others, 3)]
                more = len(accounts) - 1 - len(named)
                detail = f"Shares its email with ClassLink user(s) {', '.join(named)}"
                detail += f" and {more} more" if more else ""
                self._skip(conflicted, SkipReason.DUPLICATE_EMAIL, detail)
        return persons

    def _staff_by_key(self) -> dict[str, list[_Account]]:
        """Present non-teacher accounts with a readable email and a name, by email key."""
        teacher_ids = {row.sourced_id for row in self.source.teachers}
        found: dict[str, list[_Account]] = {}
        for account in sorted(self.source.staff, key=lambda staff: staff.sourced_id):
            email = account.email.strip() if account.email else ""
            names = name_key(account.given_name, account.family_name)
            # 1.2 lists a user with several roles under each of them: its teacher row already counts.
            if account.sourced_id in teacher_ids or account.status != ACTIVE or not account.enabled:
                continue
            if not email or not is_valid_email(account.email or "") or not all(names):
                continue
            found.setdefault(email_key(email), []).append(_Account(account.sourced_id, account.role, names))
        return found

    def _skip_person(self, person: _Person, reason: SkipReason, detail: str) -> None:
        for row in person.rows:
            self._skip(row, reason, detail)

    def _skip(self, row: SourceTeacher, reason: SkipReason, detail: str) -> None:
        self.skips.append(
            SkippedRow(row.sourced_id, row.given_name, row.family_name, row.email or "", reason, detail)
        )
        self._protect(row.sourced_id, row.email)

    def _protect(self, sourced_id: str | None, email: str | None) -> None:
        """The EW teacher a skipped or unreadable row names, by link or by email, is not archived."""
        linked_id = self.links.get(sourced_id) if sourced_id else None
        if linked_id is not None:
            self.protected.add(linked_id)
        if email and email.strip():
            same_email = self.ew_by_key.get(email_key(email))
            if same_email is not None:
                self.protected.add(same_email.teacher_id)

    def _skip_unreadable(self, problem: SourceProblem) -> None:
        self.skips.append(
            SkippedRow(
                problem.sourced_id or "",
                "",
                "",
                problem.email or "",
                SkipReason.UNREADABLE_ROW,
                problem.reason_text,
            )
        )
        self._protect(problem.sourced_id, problem.email)

    def _school_refs(self, orgs: tuple[str, ...]) -> _Schools:
        """The schools of a person's orgs; cached per org list, which thousands of teachers share."""
        cached = self.schools_by_orgs.get(orgs)
        if cached is None:
            targets = self.schools.targets
            refs = tuple(sorted({targets[org] for org in orgs if org in targets}))
            existing = frozenset(ref.school_id for ref in refs if ref.school_id)
            cached = _Schools(refs, existing, len(existing) < len(refs), self._display(refs))
            self.schools_by_orgs[orgs] = cached
        return cached

    def _add(self, person: _Person) -> None:
        given, family = clean_name(person.first.given_name), clean_name(person.first.family_name)
        cached = self._school_refs(person.orgs)
        schools = cached.refs
        self.adds.append(
            TeacherUpsert(
                classlink_id=person.first.sourced_id,
                classlink_ids=person.sourced_ids,
                ew_teacher_id=None,
                given_name=given,
                family_name=family,
                email=(person.first.email or "").strip(),
                schools=schools,
                field_changes=(),
                schools_added=schools,
                schools_removed=(),
                schools_added_names=cached.names,
                schools_removed_names=(),
                schools_kept_names=(),
                warnings=_warnings(person.first),
            )
        )

    def _display(self, refs: Sequence[SchoolRef]) -> tuple[str, ...]:
        return tuple(sorted(self.schools.names[ref] for ref in refs))

    def _match(self, person: _Person, teacher: EwTeacher) -> None:
        self.claimed[teacher.teacher_id] = person.first.sourced_id
        linked_from = self.linked_from.get(teacher.teacher_id, _NO_LINKS)
        if not all(classlink_id in linked_from for classlink_id in person.sourced_ids):
            self.new_links.extend((classlink_id, teacher.teacher_id) for classlink_id in person.sourced_ids)
        given, family = clean_name(person.first.given_name), clean_name(person.first.family_name)
        email = (person.first.email or "").strip()
        targets = self._school_refs(person.orgs)
        kept = teacher.school_ids & self.schools.kept
        wanted = targets.existing | kept
        if (
            teacher.active
            and not targets.creates_any
            and wanted == teacher.school_ids
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
        schools = tuple(sorted(set(targets.refs) | {SchoolRef(school_id=school_id) for school_id in kept}))
        added = tuple(ref for ref in schools if ref.create_ref or ref.school_id not in teacher.school_ids)
        removed = tuple(sorted(teacher.school_ids - wanted))
        upsert = TeacherUpsert(
            classlink_id=person.first.sourced_id,
            classlink_ids=person.sourced_ids,
            ew_teacher_id=teacher.teacher_id,
            given_name=given,
            family_name=family,
            email=email,
            schools=schools,
            field_changes=changes,
            schools_added=added,
            schools_removed=removed,
            schools_added_names=self._display(added),
            schools_removed_names=self._display([SchoolRef(school_id=school_id) for school_id in removed]),
            schools_kept_names=self._display(
                [SchoolRef(school_id=school_id) for school_id in kept - targets.existing]
            ),
            warnings=_warnings(person.first),
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
            if by_email is not None and self.linked_from.get(by_email.teacher_id, set()) <= {row.sourced_id}:
                teacher_id = by_email.teacher_id
        if teacher_id is not None:
            self.departures.setdefault(teacher_id, (row.sourced_id, reason))

    def archives(self) -> list[TeacherArchive]:
        """Active EW teachers no person matched and no skipped row protects."""
        archives: list[TeacherArchive] = []
        for teacher_id in sorted(self.ew_by_id):
            teacher = self.ew_by_id[teacher_id]
            if not teacher.active or teacher_id in self.claimed or teacher_id in self.protected:
                continue
            classlink_id, reason = self.departures.get(
                teacher_id, (min(self.linked_from.get(teacher_id, {""})), NO_LONGER_IN_CLASSLINK)
            )
            archives.append(
                TeacherArchive(
                    teacher_id, classlink_id, teacher.given_name, teacher.family_name, teacher.email, reason
                )
            )
        return archives


@dataclass(frozen=True, slots=True)
class _GuardInput:
    archives: Sequence[TeacherArchive]
    removals: Sequence[str]
    active_count: int
    no_active_schools: bool
    withheld_note: str


def _guard(facts: _GuardInput, config: GuardConfig, approval: Approval | None) -> GuardVerdict:
    # Fraction(str(...)) keeps 0.1 exact, so 10% of 50 is exactly 5.
    threshold = max(config.minimum, math.floor(Fraction(str(config.max_fraction)) * facts.active_count))
    approved = approval or Approval()
    counted = sum(1 for archive in facts.archives if archive.ew_teacher_id not in approved.archives)
    stripped = sum(1 for teacher_id in facts.removals if teacher_id not in approved.membership_removals)
    active = facts.active_count
    reasons: list[str] = []
    if counted > threshold:
        reasons.append(f"This sync would archive {counted} of {active} active teachers")
    if stripped > threshold:
        reasons.append(
            f"This sync would remove school memberships from {stripped} of {active} active teachers"
        )
    if facts.no_active_schools and approval is None:
        reasons.append("ClassLink lists no active school while the district has mapped schools")
    if reasons:
        message = (
            "; ".join(reasons) + f", more than the {threshold} allowed without review. "
            "Check the list and approve the run to go ahead."
        )
    elif approval is not None and counted < len(facts.archives):
        approved_count = len(facts.archives) - counted
        message = (
            f"Archives {len(facts.archives)} teachers, {approved_count} of them approved by an administrator."
        )
    else:
        message = (
            f"Archives {len(facts.archives)} of {active} active teachers (up to {threshold} without review)."
        )
    if facts.withheld_note:
        message = f"{message} {facts.withheld_note}"
    return GuardVerdict(
        needs_review=bool(reasons),
        archive_count=len(facts.archives),
        counted_archives=counted,
        active_count=active,
        threshold=threshold,
        message=message,
        membership_removal_count=len(facts.removals),
        counted_membership_removals=stripped,
    )


def _rows(count: int, what: str) -> str:
    return f"{count} ClassLink {what} row{'s' if count != 1 else ''}"


def plan_sync(
    source: SourceRoster, ew: EwRoster, state: SyncState, progress: Progress = lambda decided, persons: None
) -> Plan:
    """The changes that make EW's district match ClassLink's roster, with the guard's verdict.

    ``progress(decided, persons)`` is told how far the teachers are, so a caller's bar can move.
    """
    nameless = [
        SchoolProblem(school.sourced_id, "The school has no name in ClassLink")
        for school in source.schools
        if not clean_name(school.name)
    ]
    school_problems = [*source.school_problems, *nameless]
    readable = [school for school in source.schools if clean_name(school.name)]
    schools = _plan_schools(readable, ew.schools, state.mappings, school_problems)
    teachers = _TeacherPlanner(source, ew, state, schools)
    teachers.run(progress)
    notes: list[str] = []
    anonymous = sum(1 for problem in source.problems if problem.anonymous)
    withheld = ""
    archives = teachers.archives()
    if anonymous:
        withheld = f"{_rows(anonymous, 'teacher')} could not be read; no one was archived."
        notes.append(withheld)
        archives = []
    if school_problems:
        notes.append(
            f"{_rows(len(school_problems), 'school')} could not be read; their teachers keep their schools."
        )
    skips = sorted(teachers.skips, key=lambda skip: (skip.classlink_id, skip.reason, skip.detail, skip.email))
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
        notes=tuple(notes),
    )
    guard_input = _GuardInput(
        archives=archives,
        removals=[upsert.ew_teacher_id or "" for upsert in updates if upsert.schools_removed],
        active_count=sum(1 for teacher in ew.teachers if teacher.active),
        no_active_schools=schools.mapped_count > 0 and not schools.targets,
        withheld_note=withheld,
    )
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
        guard=_guard(guard_input, state.guard, state.approval),
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
        schools_kept=upsert.schools_kept_names,
        warnings=upsert.warnings,
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
