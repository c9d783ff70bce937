"""A database that cannot be reached is UNAVAILABLE (retry, re-attach), never a generic INTERNAL."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
import sqlalchemy.exc
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped,unused-ignore]

from services.common.grpc_errors import DATABASE_UNAVAILABLE, INTERNAL_MESSAGE, ErrorInterceptor


class Aborted(Exception):
    """What the test context raises from ``abort_with_status``, as grpc's does."""


class Context:
    """Records the status a handler's call was aborted with."""

    def __init__(self) -> None:
        self.status: grpc.Status | None = None

    def code(self) -> None:
        return None

    def abort_with_status(self, status: grpc.Status) -> None:
        self.status = status
        raise Aborted()


def aborted_with(error: Exception) -> grpc.Status:
    def failing(request: Any, context: Any) -> Any:
        raise error

    handler = ErrorInterceptor().wrap(grpc.unary_unary_rpc_method_handler(failing), "/ew.test.v1.Test/Call")
    context = Context()
    with pytest.raises(Aborted):
        handler.unary_unary(b"", context)  # type: ignore[misc,arg-type]  # a stand-in context
    assert context.status is not None
    return context.status


def test_a_dropped_database_connection_is_unavailable_with_its_reason() -> None:
    dropped = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    status = aborted_with(dropped)

    assert status.code == grpc.StatusCode.UNAVAILABLE
    assert status.details == DATABASE_UNAVAILABLE
    rich = status_pb2.Status.FromString(dict(status.trailing_metadata)["grpc-status-details-bin"])
    info = error_details_pb2.ErrorInfo()
    assert rich.details[0].Unpack(info) and info.reason == "DATABASE_UNAVAILABLE"


def test_any_other_failure_stays_a_generic_internal() -> None:
    status = aborted_with(RuntimeError("secret internals"))

    assert status.code == grpc.StatusCode.INTERNAL
    assert status.details == INTERNAL_MESSAGE
