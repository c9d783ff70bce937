"""Authorization rules: every role × plan × district combination for every action."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.common.auth import ALL_DISTRICTS, Principal, Role
from services.common.authz import (
    require_district_create,
    require_roster_read,
    require_roster_write,
    require_sync_admin,
    require_unarchive,
    resolve_district,
)
from services.common.errors import InvalidArgument, PermissionDenied

OWN, OTHER = "d1", "d2"
PREMIUM, BASIC = "district_premium", "basic"

Check = Callable[[Principal, str], None]
ACTIONS: dict[str, Check] = {
    "sync_admin": require_sync_admin,
    "roster_read": require_roster_read,
    "roster_write": require_roster_write,
    "unarchive": require_unarchive,
    "district_create": require_district_create,
}

# (role, plan, token district) → the actions allowed on district OWN.
CALLERS: list[tuple[Role, str, str, set[str]]] = [
    (Role.DISTRICT_ADMIN, PREMIUM, OWN, {"sync_admin", "roster_read", "roster_write", "unarchive"}),
    (Role.DISTRICT_ADMIN, BASIC, OWN, {"roster_read", "roster_write", "unarchive"}),
    (Role.SCHOOL_ADMIN, PREMIUM, OWN, {"roster_read"}),
    (Role.SCHOOL_ADMIN, BASIC, OWN, {"roster_read"}),
    (Role.TEACHER, PREMIUM, OWN, {"roster_read"}),
    (Role.TEACHER, BASIC, OWN, {"roster_read"}),
    (Role.DISTRICT_ADMIN, PREMIUM, OTHER, set()),
    (Role.DISTRICT_ADMIN, BASIC, OTHER, set()),
    (Role.SCHOOL_ADMIN, PREMIUM, OTHER, set()),
    (Role.TEACHER, BASIC, OTHER, set()),
    (Role.SERVICE, "service", ALL_DISTRICTS, {"roster_read", "roster_write", "unarchive", "district_create"}),
    (Role.SERVICE, "service", OWN, {"roster_read", "roster_write", "unarchive", "district_create"}),
    (Role.SERVICE, "service", OTHER, set()),
]


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize(("role", "plan", "district", "allowed"), CALLERS)
def test_each_caller_may_do_exactly_what_the_table_says(
    role: Role, plan: str, district: str, allowed: set[str], action: str
) -> None:
    principal = Principal(subject="someone", district_id=district, role=role, plan=plan)
    if action in allowed:
        ACTIONS[action](principal, OWN)
    else:
        with pytest.raises(PermissionDenied):
            ACTIONS[action](principal, OWN)


@pytest.mark.parametrize(
    ("role", "plan", "message"),
    [
        (Role.TEACHER, PREMIUM, "for district administrators; your role is teacher"),
        (Role.SCHOOL_ADMIN, PREMIUM, "for district administrators; your role is school_admin"),
        (Role.SERVICE, "service", "for district administrators; your role is service"),
        (Role.DISTRICT_ADMIN, BASIC, "this district is on the basic plan"),
    ],
)
def test_sync_denials_say_why(role: Role, plan: str, message: str) -> None:
    district = ALL_DISTRICTS if role is Role.SERVICE else OWN
    with pytest.raises(PermissionDenied) as caught:
        require_sync_admin(Principal("someone", district, role, plan), OWN)
    assert caught.value.message.startswith("ClassLink sync is a District Premium feature")
    assert message in caught.value.message


@pytest.mark.parametrize("action", ["sync_admin", "roster_read", "roster_write", "unarchive"])
def test_other_district_denial_is_the_same_whatever_is_asked_for(action: str) -> None:
    """The answer names neither the district nor whether it exists, so it reveals nothing."""
    admin = Principal("alice", OWN, Role.DISTRICT_ADMIN, PREMIUM)
    answers = set()
    for district in ("d2", "no-such-district", "d3"):
        with pytest.raises(PermissionDenied) as caught:
            ACTIONS[action](admin, district)
        answers.add((caught.value.message, caught.value.reason, tuple(caught.value.metadata.items())))
        assert district not in caught.value.message
    assert len(answers) == 1


def test_empty_district_is_never_covered_even_for_the_service() -> None:
    service = Principal("ew-sync", ALL_DISTRICTS, Role.SERVICE, "service")
    with pytest.raises(PermissionDenied):
        require_roster_write(service, "")


def test_request_without_district_acts_on_the_callers_own() -> None:
    assert resolve_district(Principal("alice", OWN, Role.DISTRICT_ADMIN, PREMIUM), "") == OWN
    assert resolve_district(Principal("alice", OWN, Role.DISTRICT_ADMIN, PREMIUM), OTHER) == OTHER


def test_service_identity_must_name_the_district() -> None:
    with pytest.raises(InvalidArgument) as caught:
        resolve_district(Principal("ew-sync", ALL_DISTRICTS, Role.SERVICE, "service"), "")
    assert caught.value.violations[0].field == "district_id"


def test_only_the_service_may_hold_an_all_districts_identity() -> None:
    with pytest.raises(ValueError):
        Principal("alice", ALL_DISTRICTS, Role.DISTRICT_ADMIN, PREMIUM)
