"""The sandbox's generator, filters and fault plan, without a server."""

from __future__ import annotations

import datetime as dt

import pytest

from services.oneroster_sandbox.faults import FaultPlan
from services.oneroster_sandbox.filters import FilterError, compile_filter, parse_filter
from services.oneroster_sandbox.generator import generate_district
from services.oneroster_sandbox.model import MutationError, SandboxUser

FIELDS = {
    "role": lambda u: u.role,
    "status": lambda u: u.status,
    "dateLastModified": lambda u: u.date_last_modified,
    "givenName": lambda u: u.given_name,
}


def test_same_seed_same_district_other_seed_other_district() -> None:
    first = generate_district(seed=5, tenant_index=0, schools=30, teachers=500)
    again = generate_district(seed=5, tenant_index=0, schools=30, teachers=500)
    other = generate_district(seed=6, tenant_index=0, schools=30, teachers=500)
    assert first.users == again.users and first.orgs == again.orgs
    assert first.client_secret == again.client_secret
    assert set(first.users).isdisjoint(other.users)


@pytest.mark.parametrize("schools", [0, 1, 2])
def test_tiny_districts_generate_with_every_teacher_in_existing_schools(schools: int) -> None:
    district = generate_district(seed=7, tenant_index=0, schools=schools, teachers=200)
    orgs = set(district.orgs)
    teachers = [u for u in district.users.values() if u.role == "teacher"]
    assert len(teachers) == 200
    assert all(set(u.orgs) <= orgs for u in teachers)


def test_generated_district_is_realistic() -> None:
    district = generate_district(seed=7, tenant_index=0, schools=200, teachers=2000)
    teachers = [u for u in district.users.values() if u.role == "teacher"]
    schools = [o for o in district.orgs.values() if o.type == "school"]
    assert len(teachers) == 2000 and len(schools) == 200
    multi = sum(len(u.orgs) >= 2 for u in teachers) / len(teachers)
    assert 0.10 < multi < 0.20
    names = [s.name for s in schools]
    assert len(set(names)) == len(names)
    assert any(n.endswith((" HS", " MS", " ES", " Elem")) for n in names)
    stems: dict[str, list[str]] = {}
    for name in names:
        stems.setdefault(name.split(" ")[0], []).append(name)
    assert any(len(group) > 1 for group in stems.values()), "no near-duplicate school names"
    assert {u.role for u in district.users.values()} == {"teacher", "student", "administrator"}
    assert any(u.status == "tobedeleted" for u in teachers) and any(not u.enabled_user for u in teachers)
    emails = [u.email for u in teachers if u.email]
    assert len(emails) < len(teachers)
    assert len({e.lower() for e in emails}) < len(set(emails))


@pytest.mark.parametrize(
    ("expression", "matches"),
    [
        ("role='teacher'", {"t1", "t2"}),
        ("role='teacher' AND status='active'", {"t1"}),
        ("role='student' OR status='tobedeleted'", {"s1", "t2"}),
        ("dateLastModified>'2026-09-01'", {"t2"}),
        ("dateLastModified>='2026-08-15T00:00:00Z'", {"t2", "s1"}),
        ("givenName~'zo'", {"t1"}),
        ("role!='teacher'", {"s1"}),
    ],
)
def test_filters(expression: str, matches: set[str]) -> None:
    when = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)

    def user(sid: str, role: str, status: str, days: int, given: str) -> SandboxUser:
        return SandboxUser(
            sid, status, True, given, "X", None, role, (), sid, sid, when + dt.timedelta(days=days)
        )

    users = [
        user("t1", "teacher", "active", 0, "Zoë"),
        user("t2", "teacher", "tobedeleted", 40, "Ann"),
        user("s1", "student", "active", 20, "Bo"),
    ]
    test = compile_filter(expression, FIELDS)
    assert {u.sourced_id for u in users if test(u)} == matches


@pytest.mark.parametrize(
    "expression",
    [
        "shoeSize='9'",
        "role=teacher",
        "role='a' AND status='b' AND role='c'",
        "role='a' AND status='b' OR x='c'",
    ],
)
def test_bad_filters_are_refused(expression: str) -> None:
    with pytest.raises(FilterError):
        compile_filter(expression, FIELDS)


def test_quoted_quotes_in_filter_values() -> None:
    predicates, _ = parse_filter("familyName='O''Brien'")
    assert predicates[0].value == "O'Brien"


def test_fault_plan_skips_then_hits_then_runs_out() -> None:
    plan = FaultPlan()
    plan.replace([{"kind": "status", "status": 503, "times": 2, "skip": 1, "path": "teachers"}])
    assert plan.take("/x/schools") is None
    assert plan.take("/x/teachers") is None  # skipped
    assert plan.take("/x/teachers") is not None
    assert plan.take("/x/teachers") is not None
    assert plan.take("/x/teachers") is None
    with pytest.raises(ValueError, match="unknown fault kind"):
        plan.replace([{"kind": "explode"}])


def test_mutation_batches_are_atomic() -> None:
    district = generate_district(seed=1, tenant_index=0, schools=3, teachers=10)
    before = dict(district.users)
    teacher = next(u for u in district.users.values() if u.role == "teacher")
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(MutationError, match="operation 1"):
        district.apply(
            [{"op": "remove_user", "sourcedId": teacher.sourced_id}, {"op": "update_user", "sourcedId": "?"}],
            now,
        )
    assert district.users == before
    district.apply(
        [{"op": "update_user", "sourcedId": teacher.sourced_id, "set": {"email": "NEW@x.org"}}], now
    )
    assert district.users[teacher.sourced_id].email == "NEW@x.org"
    assert district.users[teacher.sourced_id].date_last_modified == now
