"""The one place where domain errors become gRPC statuses (STYLE G4).

``DomainError`` → its status code with ``google.rpc.ErrorInfo`` (and ``BadRequest`` when it lists
field violations: the first ``MAX_LISTED_VIOLATIONS``, clipped, so the status fits in the 8 KB of
trailing metadata clients accept). A database that cannot be reached (SQLAlchemy's
``OperationalError``: refused, restarting, connection dropped) is ``UNAVAILABLE``, so clients retry
or re-attach instead of giving up. Anything else is logged with its traceback and answered
``INTERNAL`` with a generic message, so internals never leak to callers.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import grpc
import sqlalchemy.exc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.common.errors import (
    ERROR_DOMAIN,
    MAX_LISTED_VIOLATIONS,
    DomainError,
    InvalidArgument,
    Unavailable,
    clip,
    listed_violations,
)
from services.common.grpc_handlers import (
    AsyncWrappingInterceptor,
    Handler,
    UndecodableRequest,
    WrappingInterceptor,
    decoding_leniently,
    rebuild_handler,
)

log = logging.getLogger(__name__)

# The message travels twice (grpc-message and inside grpc-status-details-bin).
MAX_MESSAGE_BYTES = 768
INTERNAL_MESSAGE = "Internal server error; the failure was logged. Retry later or contact support."
DATABASE_UNAVAILABLE = "The service's database cannot be reached right now; retry in a few seconds."


def to_status(error: DomainError, extra: Sequence[Message] = ()) -> grpc.Status:
    """Build the rich status for a domain error, with ``extra`` details (``RetryInfo``) after its own."""
    details: list[Message] = [
        error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata)
    ]
    if error.violations:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                    for v in listed_violations(error.violations, MAX_LISTED_VIOLATIONS)
                ]
            )
        )
    packed = []
    for detail in [*details, *extra]:
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    code: int = error.code.value[0]
    status: grpc.Status = rpc_status.to_status(
        status_pb2.Status(code=code, message=clip(error.message, MAX_MESSAGE_BYTES), details=packed)
    )
    return status


def _decoded(request: Any) -> Any:
    """The request, or INVALID_ARGUMENT when the server could not decode it."""
    if isinstance(request, UndecodableRequest):
        raise InvalidArgument(
            f"The request could not be decoded: {request.problem}. Send a complete, valid message; "
            "string fields must be UTF-8.",
            reason="UNDECODABLE_REQUEST",
        )
    return request


def _internal_status() -> grpc.Status:
    status: grpc.Status = rpc_status.to_status(
        status_pb2.Status(code=code_pb2.INTERNAL, message=INTERNAL_MESSAGE)
    )
    return status


def _status_for(error: Exception, method: str) -> grpc.Status:
    if isinstance(error, DomainError):
        return to_status(error)
    if isinstance(error, sqlalchemy.exc.OperationalError):
        log.warning("database unavailable in %s", method, exc_info=error)
        return to_status(Unavailable(DATABASE_UNAVAILABLE, reason="DATABASE_UNAVAILABLE"))
    log.error("unhandled error in %s", method, exc_info=error)
    return _internal_status()


def _already_aborted(context: grpc.ServicerContext) -> bool:
    """True when the handler aborted the call itself (its abort raises a bare Exception)."""
    code = context.code()  # type: ignore[attr-defined]  # on every server context; missing from typeshed
    return code is not None


class ErrorInterceptor(WrappingInterceptor):
    """Maps exceptions raised by servicers of a thread-pool server, and requests it cannot decode."""

    def wrap(self, handler: Handler, method: str) -> Handler:
        """The handler, wrapped so its exceptions become gRPC statuses."""

        def unary_response(inner: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
            def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    return inner(_decoded(request), context)
                except Exception as error:
                    if _already_aborted(context):
                        raise
                    context.abort_with_status(_status_for(error, method))

            return behaviour

        def stream_response(
            inner: Callable[[Any, grpc.ServicerContext], Iterator[Any]],
        ) -> Callable[..., Any]:
            def behaviour(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                try:
                    yield from inner(_decoded(request), context)
                except Exception as error:
                    if _already_aborted(context):
                        raise
                    context.abort_with_status(_status_for(error, method))

            return behaviour

        return rebuild_handler(decoding_leniently(handler), unary_response, stream_response)


class AsyncErrorInterceptor(AsyncWrappingInterceptor):
    """Maps exceptions raised by servicers of a ``grpc.aio`` server, and requests it cannot decode."""

    def wrap(self, handler: Handler, method: str) -> Handler:
        """The handler, wrapped so its exceptions become gRPC statuses."""

        def unary_response(inner: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
            async def behaviour(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                try:
                    return await inner(_decoded(request), context)
                except grpc.aio.AbortError:
                    raise
                except Exception as error:
                    await context.abort_with_status(_status_for(error, method))

            return behaviour

        def stream_response(inner: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
            async def behaviour(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                try:
                    produced = inner(_decoded(request), context)
                    if inspect.isawaitable(produced):
                        # A servicer that writes with context.write (grpc's aio Health.Watch).
                        await produced
                        return
                    async for response in produced:
                        yield response
                except grpc.aio.AbortError:
                    raise
                except Exception as error:
                    await context.abort_with_status(_status_for(error, method))

            return behaviour

        return rebuild_handler(decoding_leniently(handler), unary_response, stream_response)
