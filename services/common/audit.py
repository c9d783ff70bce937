"""What both services' audit hooks share: the district a request names and the outcome of a call."""

from __future__ import annotations

import re
from typing import Any

import grpc

from services.common.errors import DomainError

OK = "OK"
_DISTRICT = re.compile(r"^districts/([A-Za-z0-9_-]{1,64})(?:/|$)")


def request_name(request: Any) -> str:
    """The resource name a request acts on: its ``name``, else its ``parent``, else its resource's.

    A set or update request such as ``SetAutoSync`` carries the resource itself, which names itself.
    """
    named = getattr(request, "name", "") or getattr(request, "parent", "")
    if named:
        return str(named)
    for field, value in request.ListFields():
        if field.message_type is not None and "name" in field.message_type.fields_by_name:
            return str(value.name)
    return ""


def requested_district(request: Any) -> str | None:
    """The district the request names, or None when it names none (such a call is not audited)."""
    match = _DISTRICT.match(request_name(request))
    return match.group(1) if match else None


def outcome(error: BaseException | None) -> tuple[str, str]:
    """``OK`` and no message, or the status name and message the error interceptor answers with."""
    if error is None:
        return OK, ""
    if isinstance(error, DomainError):
        return error.code.name, error.message
    return grpc.StatusCode.INTERNAL.name, ""
