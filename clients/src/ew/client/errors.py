"""Errors a client call raises: the gRPC status plus the server's ErrorInfo reason and field violations."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2  # type: ignore[import-untyped,unused-ignore]
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    """One bad request field, as the server named it."""

    field: str
    description: str


class RosterError(Exception):
    """A failed call: ``code`` (gRPC status), ``reason`` (ErrorInfo reason) and ``message``."""

    def __init__(
        self, code: grpc.StatusCode, reason: str, message: str, violations: tuple[FieldViolation, ...] = ()
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.violations = violations


class InvalidArgumentError(RosterError):
    """The request is wrong; retrying it unchanged fails again."""


class NotFoundError(RosterError):
    """The named resource does not exist (or is not visible to the caller)."""


class AlreadyExistsError(RosterError):
    """The resource to create exists already."""


class FailedPreconditionError(RosterError):
    """The resource is not in a state that allows the call."""


class AbortedError(RosterError):
    """A concurrency conflict: re-read and retry at a higher level."""


class UnauthenticatedError(RosterError):
    """Missing or invalid credentials."""


class PermissionDeniedError(RosterError):
    """The credentials do not allow the call."""


class UnavailableError(RosterError):
    """The service could not be reached or is shutting down; the same call may succeed later."""


class DeadlineExceededError(RosterError):
    """The call did not finish within its timeout."""


_BY_CODE: dict[grpc.StatusCode, type[RosterError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
}


def from_rpc_error(error: grpc.RpcError) -> RosterError:
    """The client error for a failed call (sync ``grpc.RpcError`` or ``grpc.aio.AioRpcError``)."""
    call: grpc.Call = error  # type: ignore[assignment]
    code = call.code()
    message = call.details() or code.name
    reason = code.name
    violations: list[FieldViolation] = []
    status = rpc_status.from_call(call)
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
    return _BY_CODE.get(code, RosterError)(code, reason, message, tuple(violations))


def retry_delay(error: grpc.RpcError) -> float | None:
    """The seconds the server's ``RetryInfo`` asks to wait before trying again; None without one."""
    call: grpc.Call = error  # type: ignore[assignment]
    status = rpc_status.from_call(call)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            seconds: float = info.retry_delay.ToTimedelta().total_seconds()
            return seconds
    return None
