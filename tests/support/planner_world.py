"""ClassLink's roster, EW's district and the sync's records as plain values: the planner's test world.

``World.apply`` does what a committed change set and the sync's bookkeeping do, so a test can sync,
change ClassLink and sync again without servers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from services.sync.planning.planner import (
    Approval,
    EwRoster,
    EwSchool,
    EwTeacher,
    GuardConfig,
    MappingOrigin,
    MappingState,
    Plan,
    SchoolProblem,
    SchoolRef,
    SourceProblem,
    SourceRoster,
    SourceSchool,
    SourceStaff,
    SourceTeacher,
    SyncState,
    plan_sync,
)


def school(sourced_id: str, name: str, status: str = "active") -> SourceSchool:
    return SourceSchool(sourced_id, name, status)


def teacher(
    sourced_id: str,
    email: str | None = "",
    *orgs: str,
    given: str = "Ann",
    family: str | None = None,
    status: str = "active",
    enabled: bool = True,
) -> SourceTeacher:
    return SourceTeacher(
        sourced_id=sourced_id,
        given_name=given,
        family_name=family or f"Family {sourced_id}",
        email=f"{sourced_id}@district.example" if email == "" else email,
        status=status,
        enabled=enabled,
        org_sourced_ids=orgs,
    )


@dataclass
class World:
    """ClassLink's roster, EW's district and the sync's records; ``apply`` does what a commit does."""

    schools: list[SourceSchool] = field(default_factory=list)
    teachers: list[SourceTeacher] = field(default_factory=list)
    problems: list[SourceProblem] = field(default_factory=list)
    staff: list[SourceStaff] = field(default_factory=list)
    school_problems: list[SchoolProblem] = field(default_factory=list)
    ew_schools: dict[str, str] = field(default_factory=dict)
    ew_teachers: dict[str, EwTeacher] = field(default_factory=dict)
    mappings: dict[str, MappingState] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def plan(self, guard: GuardConfig | None = None, approved: Approval | None = None) -> Plan:
        return plan_sync(
            SourceRoster(self.schools, self.teachers, self.problems, self.staff, self.school_problems),
            EwRoster(
                [EwSchool(school_id, name) for school_id, name in self.ew_schools.items()],
                list(self.ew_teachers.values()),
            ),
            SyncState(self.mappings, self.links, guard or GuardConfig(), approved),
        )

    def hand_made(self, teacher_id: str, email: str, *school_ids: str, active: bool = True) -> EwTeacher:
        made = EwTeacher(teacher_id, "Hand", f"Made {teacher_id}", email, frozenset(school_ids), active)
        self.ew_teachers[teacher_id] = made
        return made

    def apply(self, plan: Plan) -> None:
        created: dict[str, str] = {}
        for create in plan.school_creates:
            created[create.classlink_id] = f"ew-{create.classlink_id}"
            self.ew_schools[f"ew-{create.classlink_id}"] = create.name
            self.mappings[create.classlink_id] = MappingState(
                f"ew-{create.classlink_id}", MappingOrigin.CREATED
            )
        for classlink_id, ew_school_id in plan.new_auto_mappings:
            self.mappings[classlink_id] = MappingState(ew_school_id, MappingOrigin.AUTO)

        def school_ids(refs: tuple[SchoolRef, ...]) -> frozenset[str]:
            return frozenset(ref.school_id or created[ref.create_ref] for ref in refs)

        new_links: dict[str, str] = dict(plan.new_links)
        for add in plan.adds:
            teacher_id = f"ew-{add.classlink_id}"
            self.ew_teachers[teacher_id] = EwTeacher(
                teacher_id, add.given_name, add.family_name, add.email, school_ids(add.schools), True
            )
            new_links.update(dict.fromkeys(add.classlink_ids, teacher_id))
        for upsert in plan.updates + plan.reactivations:
            assert upsert.ew_teacher_id is not None
            self.ew_teachers[upsert.ew_teacher_id] = EwTeacher(
                upsert.ew_teacher_id,
                upsert.given_name,
                upsert.family_name,
                upsert.email,
                school_ids(upsert.schools),
                True,
            )
        for archive in plan.archives:
            teacher_id = archive.ew_teacher_id
            self.ew_teachers[teacher_id] = dataclasses.replace(self.ew_teachers[teacher_id], active=False)
        # As the store does: the users given for a teacher are all of its links.
        relinked = set(new_links.values())
        self.links = {cl: ew for cl, ew in self.links.items() if ew not in relinked} | new_links

    def sync(self) -> Plan:
        plan = self.plan()
        self.apply(plan)
        again = self.plan()
        assert not again.has_changes, again
        assert again.new_auto_mappings == () and again.new_links == ()
        return plan
