"""Who may do what, for both services' access layers.

Pure functions of the verified ``Principal`` and the district a request acts on; each raises
``PermissionDenied`` with a message saying why. A caller naming another district always gets the
same answer whether or not that district or its resources exist.

| action                              | district_admin | school_admin | teacher | service |
|-------------------------------------|----------------|--------------|---------|---------|
| ClassLink sync admin (connect, map, | own district,  | no           | no      | no      |
| preview, sync, AutoSync, runs)      | premium plan   |              |         |         |
| read the roster                     | own district   | own district | own     | yes     |
| write the roster (batch upserts)    | own district   | no           | no      | yes     |
| unarchive a teacher                 | own district   | no           | no      | yes     |
| create a district                   | no             | no           | no      | yes     |

A district admin writes EW's own roster on any plan; only the ClassLink features need
``district_premium``. A service token acts for the district it names, or for every district when
it names ``*``: one scoped to a district cannot create (or write) any other.
"""

from __future__ import annotations

from services.common.auth import ALL_DISTRICTS, PREMIUM_PLAN, Principal, Role
from services.common.errors import FieldViolation, InvalidArgument, PermissionDenied

SYNC_FEATURE = "ClassLink sync is a District Premium feature for district administrators"


def resolve_district(principal: Principal, requested: str) -> str:
    """The district a request acts on: the one it names, else the caller's own."""
    if requested:
        return requested
    if principal.district_id == ALL_DISTRICTS:
        raise InvalidArgument.for_fields(
            [FieldViolation("district_id", "required when calling with the service identity")]
        )
    return principal.district_id


def _covers(principal: Principal, district_id: str) -> bool:
    if not district_id:
        return False
    if principal.is_service and principal.district_id == ALL_DISTRICTS:
        return True
    return principal.district_id == district_id


def _require_district(principal: Principal, district_id: str) -> None:
    if not _covers(principal, district_id):
        raise PermissionDenied(
            "This token does not allow acting on the requested district; "
            "use a token issued for that district.",
            reason="DISTRICT_NOT_ALLOWED",
        )


def require_sync_admin(principal: Principal, district_id: str) -> None:
    """Connect, map, preview, sync, force, AutoSync and run history."""
    if principal.is_service or principal.role is not Role.DISTRICT_ADMIN:
        raise PermissionDenied(
            f"{SYNC_FEATURE}; your role is {principal.role.value}.", reason="SYNC_ROLE_REQUIRED"
        )
    _require_district(principal, district_id)
    if principal.plan != PREMIUM_PLAN:
        raise PermissionDenied(
            f"{SYNC_FEATURE}; this district is on the {principal.plan} plan. "
            "Upgrade to District Premium to use it.",
            reason="SYNC_PLAN_REQUIRED",
        )


def require_roster_read(principal: Principal, district_id: str) -> None:
    """Listing and reading a district's schools and teachers."""
    _require_district(principal, district_id)


def require_roster_write(principal: Principal, district_id: str) -> None:
    """Creating, updating and archiving schools and teachers."""
    _require_district(principal, district_id)
    if not (principal.is_service or principal.role is Role.DISTRICT_ADMIN):
        raise PermissionDenied(
            f"Changing the roster needs a district administrator; your role is {principal.role.value}.",
            reason="ROSTER_WRITE_ROLE_REQUIRED",
        )


def require_unarchive(principal: Principal, district_id: str) -> None:
    """Bringing back a teacher a sync archived."""
    _require_district(principal, district_id)
    if not (principal.is_service or principal.role is Role.DISTRICT_ADMIN):
        raise PermissionDenied(
            f"Unarchiving a teacher needs a district administrator; your role is {principal.role.value}.",
            reason="UNARCHIVE_ROLE_REQUIRED",
        )


def require_district_create(principal: Principal, district_id: str) -> None:
    """Registering a new district, which only the sync service does, for a district its token covers."""
    if not principal.is_service:
        raise PermissionDenied(
            "Only the ew-rostersync service identity may create districts.",
            reason="SERVICE_IDENTITY_REQUIRED",
        )
    _require_district(principal, district_id)
