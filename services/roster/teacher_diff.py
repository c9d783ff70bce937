"""What writing a teacher's requested fields and schools over their current state changes (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from services.roster.domain import Teacher, TeacherInput, TeacherState

TEACHER_FIELDS = ("given_name", "family_name", "email")


@dataclass(frozen=True)
class TeacherDiff:
    """The changes one upsert makes; a created teacher has every field and school as a change.

    ``fields`` names the writable fields that differ (compared exactly, so a changed case of the
    email is a change); ``schools_added`` and ``schools_removed`` are sorted school ids;
    ``reactivates`` is set when the caller asked to reactivate a teacher that is archived.
    """

    creates: bool
    fields: tuple[str, ...] = ()
    schools_added: tuple[str, ...] = ()
    schools_removed: tuple[str, ...] = ()
    reactivates: bool = False

    @property
    def schools_changed(self) -> bool:
        """Whether an existing teacher's school list changes."""
        return not self.creates and bool(self.schools_added or self.schools_removed)

    @property
    def updates(self) -> bool:
        """Whether an existing teacher's fields or schools change (reactivation aside)."""
        return not self.creates and bool(self.fields or self.schools_changed)


def diff_teacher(
    current: Teacher | None, requested: TeacherInput, *, reactivate: bool = False
) -> TeacherDiff:
    """Compare ``requested`` (trimmed email, school ids) with ``current`` (None: no such teacher)."""
    wanted = set(requested.school_ids)
    if current is None:
        return TeacherDiff(creates=True, fields=TEACHER_FIELDS, schools_added=tuple(sorted(wanted)))
    have = set(current.school_ids)
    return TeacherDiff(
        creates=False,
        fields=tuple(name for name in TEACHER_FIELDS if getattr(current, name) != getattr(requested, name)),
        schools_added=tuple(sorted(wanted - have)),
        schools_removed=tuple(sorted(have - wanted)),
        reactivates=reactivate and current.state is TeacherState.ARCHIVED,
    )
