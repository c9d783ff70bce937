"""Errors as ``google.rpc.Status`` JSON with the HTTP status AIP-193 gives each gRPC code."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2
from starlette.responses import JSONResponse

HTTP_STATUS: dict[int, int] = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}
_DETAILS_KEY = "grpc-status-details-bin"
# Details the gateway can decode to JSON; anything else is dropped rather than failing the reply.
_KNOWN_DETAILS = {
    descriptor.full_name for descriptor in error_details_pb2.DESCRIPTOR.message_types_by_name.values()
}


class GatewayError(Exception):
    """A request the gateway refuses itself, before any backend sees it."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        http_status: int | None = None,
        field: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status or HTTP_STATUS[code]
        self.field = field
        self.headers = headers or {}

    def status(self) -> status_pb2.Status:
        """The Status, with a field violation when the error names a field."""
        status = status_pb2.Status(code=self.code, message=self.message)
        if self.field:
            detail = status.details.add()
            detail.Pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=self.field, description=self.message
                        )
                    ]
                )
            )
        return status


def status_of(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The rich status a backend sent, or one built from its code and message."""
    for key, value in error.trailing_metadata() or ():
        if key == _DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            kept = [d for d in status.details if d.TypeName() in _KNOWN_DETAILS]
            del status.details[:]
            status.details.extend(kept)
            return status
    return status_pb2.Status(code=error.code().value[0], message=error.details() or "")


def status_json(status: status_pb2.Status) -> dict[str, Any]:
    """The proto3 JSON of a Status (``code`` and ``message`` always present)."""
    body = json_format.MessageToDict(status)
    return {"code": status.code, "message": status.message} | body


def status_response(
    status: status_pb2.Status, http_status: int | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSON response carrying ``status``."""
    return JSONResponse(
        status_json(status), status_code=http_status or HTTP_STATUS.get(status.code, 500), headers=headers
    )


def rpc_error_response(error: grpc.aio.AioRpcError) -> JSONResponse:
    """The response for a failed backend call."""
    return status_response(status_of(error))


def gateway_error_response(error: GatewayError) -> JSONResponse:
    """The response for a request the gateway refused itself."""
    return status_response(error.status(), error.http_status, error.headers)
