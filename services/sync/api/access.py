"""Who may act on a district's ClassLink sync: the one check every sync RPC makes.

Every RPC calls ``authorize_sync_admin`` right after parsing the district from its request and
before touching any data, so a refused call changes nothing and reveals nothing about the district.
The caller was authenticated by ``AsyncAuthInterceptor``; the rule itself lives in
``services.common.authz.require_sync_admin`` (district administrator, District Premium, same district).
"""

from __future__ import annotations

from services.common.auth import Principal
from services.common.auth_interceptor import current_principal
from services.common.authz import require_sync_admin


def authorize_sync_admin(district_id: str) -> Principal:
    """The caller, when it may administer ``district_id``'s sync; PermissionDenied otherwise."""
    principal = current_principal()
    require_sync_admin(principal, district_id)
    return principal
