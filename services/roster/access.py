"""Who may act on a district's roster: the one check every RosterService RPC makes.

Every RPC calls ``authorize`` once, right after reading the district from its request and before
touching any data, so a refused call changes nothing and reveals nothing about the district. The
caller was authenticated by the server's ``AuthInterceptor``; the rules themselves live in
``services.common.authz``: reads for any user of the district, writes for its district
administrators and the sync service's identity, unarchiving for district administrators, and
creating districts for the service identity only (and only a district its token covers).
"""

from __future__ import annotations

import enum

from services.common.auth_interceptor import current_principal
from services.common.authz import (
    require_district_create,
    require_roster_read,
    require_roster_write,
    require_unarchive,
)


class Action(enum.Enum):
    """What a call wants to do in a district."""

    READ = "read"
    WRITE = "write"
    UNARCHIVE = "unarchive"
    CREATE_DISTRICT = "create_district"
    READ_AUDIT = "read_audit"


_RULES = {
    Action.READ: require_roster_read,
    Action.WRITE: require_roster_write,
    Action.UNARCHIVE: require_unarchive,
    Action.CREATE_DISTRICT: require_district_create,
    # The audit trail is for those who may change the roster: its district administrators.
    Action.READ_AUDIT: require_roster_write,
}


def authorize(district_id: str, action: Action) -> None:
    """Allow the call, or raise Unauthenticated / PermissionDenied (services.common.errors)."""
    _RULES[action](current_principal(), district_id)
