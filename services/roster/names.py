"""Parsing of resource names (``districts/{district}/...``) into ids, INVALID_ARGUMENT when malformed."""

from __future__ import annotations

from services.common.errors import bad_field
from services.roster.validation import check_district_id, check_uuid


def _parts(name: str, field: str, collection: str | None) -> list[str]:
    expected = "districts/{district}" + (f"/{collection}/{{id}}" if collection else "")
    parts = name.split("/")
    size = 4 if collection else 2
    if len(parts) != size or parts[0] != "districts" or (collection and parts[2] != collection):
        shown = name[:120] if name else "an empty string"
        raise bad_field(field, f"expected a resource name like {expected!r}, got {shown!r}")
    check_district_id(parts[1], field)
    return parts


def district(name: str, field: str = "name") -> str:
    """The district id of ``districts/{district}``."""
    return _parts(name, field, None)[1]


def child(name: str, collection: str, field: str = "name") -> tuple[str, str]:
    """The district id and child id of ``districts/{district}/{collection}/{id}``."""
    parts = _parts(name, field, collection)
    return parts[1], check_uuid(parts[3], field)
