"""Where a caller's right to act on a district is decided: the security plug-in point.

Every RPC calls ``authorize`` once, right after reading the district from its request and before
touching any data, so a refused call changes nothing and reveals nothing. Today every call is
allowed; JWT authentication (the token's ``district`` claim and role) plugs in here.
"""

from __future__ import annotations

import enum

import grpc


class Action(enum.Enum):
    """What a call wants to do in a district."""

    READ = "read"
    WRITE = "write"
    UNARCHIVE = "unarchive"
    CREATE_DISTRICT = "create_district"


def authorize(context: grpc.ServicerContext, district_id: str, action: Action) -> None:
    """Allow the call, or raise Unauthenticated / PermissionDenied (services.common.errors)."""
