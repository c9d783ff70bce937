"""Resource names and page sizes of SyncService requests: parsed, or INVALID_ARGUMENT saying what is wrong."""

from __future__ import annotations

import re

from services.common.errors import bad_field, check_page_size

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

_DISTRICT = r"[A-Za-z0-9_-]{1,64}"
_PARENT = re.compile(rf"^districts/({_DISTRICT})$")
_CONNECTION = re.compile(rf"^districts/({_DISTRICT})/connection$")
_AUTOSYNC = re.compile(rf"^districts/({_DISTRICT})/autoSync$")
_SCHOOL_MAPPING = re.compile(rf"^districts/({_DISTRICT})/schoolMappings/(.+)$", re.DOTALL)


def _shown(value: str) -> str:
    return repr(value[:120]) if value else "an empty string"


def parse_parent(value: str, field: str = "parent") -> str:
    """The district of ``districts/{district}``."""
    match = _PARENT.match(value)
    if match is None:
        raise bad_field(field, f"expected 'districts/{{district}}', got {_shown(value)}")
    return match.group(1)


def parse_connection_name(value: str, field: str = "name") -> str:
    """The district of ``districts/{district}/connection``."""
    match = _CONNECTION.match(value)
    if match is None:
        raise bad_field(field, f"expected 'districts/{{district}}/connection', got {_shown(value)}")
    return match.group(1)


def parse_autosync_name(value: str, field: str = "name") -> str:
    """The district of ``districts/{district}/autoSync``."""
    match = _AUTOSYNC.match(value)
    if match is None:
        raise bad_field(field, f"expected 'districts/{{district}}/autoSync', got {_shown(value)}")
    return match.group(1)


def autosync_name(district_id: str) -> str:
    """The resource name of a district's AutoSync settings."""
    return f"districts/{district_id}/autoSync"


def parse_school_mapping_name(value: str, field: str = "name") -> tuple[str, str]:
    """(district, ClassLink sourcedId) of ``districts/{district}/schoolMappings/{classlink_school}``."""
    match = _SCHOOL_MAPPING.match(value)
    if match is None or not match.group(2).strip():
        raise bad_field(
            field,
            f"expected 'districts/{{district}}/schoolMappings/{{classlink_school}}', got {_shown(value)}",
        )
    return match.group(1), match.group(2).strip()


def school_mapping_name(district_id: str, classlink_school_id: str) -> str:
    """The resource name of a ClassLink school's mapping."""
    return f"districts/{district_id}/schoolMappings/{classlink_school_id}"


def connection_name(district_id: str) -> str:
    """The resource name of a district's connection."""
    return f"districts/{district_id}/connection"


def page_size(value: int) -> int:
    """The page size of a SyncService List call: 50 when unset, at most 500, never negative."""
    return check_page_size(value, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
