"""One server interceptor per server authenticates every RPC except health and reflection.

The interceptor wraps the handler's behaviour so the token is verified, and the ``Principal`` set,
inside the call itself: a thread server runs handlers on pool threads where a context variable
set in ``intercept_service`` is not visible, and each aio RPC runs in its own task. A failure
aborts the call with ``UNAUTHENTICATED`` and an ``ErrorInfo`` before the servicer runs.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc

from services.common.auth import Principal, TokenVerifier, parse_bearer
from services.common.errors import Unauthenticated
from services.common.grpc_errors import to_status
from services.common.grpc_handlers import (
    AsyncWrappingInterceptor,
    Handler,
    WrappingInterceptor,
    rebuild_handler,
)

PUBLIC_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("ew_principal", default=None)


def current_principal() -> Principal:
    """The verified caller of the RPC being served."""
    principal = _principal.get()
    if principal is None:
        raise Unauthenticated("missing bearer token", reason="MISSING_TOKEN")
    return principal


def _is_public(method: str) -> bool:
    return method.startswith(PUBLIC_METHOD_PREFIXES)


def _authorization(metadata: Any) -> list[str]:
    return [str(value) for key, value in (metadata or ()) if key == "authorization"]


def _authenticate(verifier: TokenVerifier, metadata: Any) -> Principal:
    return verifier.verify(parse_bearer(_authorization(metadata)))


class AuthInterceptor(WrappingInterceptor):
    """Authenticates RPCs of a thread-pool server."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    def wrap(self, handler: Handler, method: str) -> Handler:
        """The handler, wrapped to authenticate first; health and reflection pass unwrapped."""
        if _is_public(method):
            return handler
        verifier = self._verifier

        def call_context(context: grpc.ServicerContext) -> contextvars.Context:
            try:
                principal = _authenticate(verifier, context.invocation_metadata())
            except Unauthenticated as error:
                context.abort_with_status(to_status(error))
            call = contextvars.copy_context()
            call.run(_principal.set, principal)
            return call

        def unary_response(inner: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
            def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
                return call_context(context).run(inner, request, context)

            return behaviour

        def stream_response(
            inner: Callable[[Any, grpc.ServicerContext], Iterator[Any]],
        ) -> Callable[..., Any]:
            def behaviour(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                call = call_context(context)
                responses = call.run(inner, request, context)
                try:
                    while True:
                        try:
                            response = call.run(next, responses)
                        except StopIteration:
                            return
                        yield response
                finally:
                    close = getattr(responses, "close", None)
                    if close is not None:
                        call.run(close)

            return behaviour

        return rebuild_handler(handler, unary_response, stream_response)


class AsyncAuthInterceptor(AsyncWrappingInterceptor):
    """Authenticates RPCs of a ``grpc.aio`` server."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    def wrap(self, handler: Handler, method: str) -> Handler:
        """The handler, wrapped to authenticate first; health and reflection pass unwrapped."""
        if _is_public(method):
            return handler
        verifier = self._verifier

        async def authenticate(context: grpc.aio.ServicerContext[Any, Any]) -> Principal:
            try:
                return _authenticate(verifier, context.invocation_metadata())
            except Unauthenticated as error:
                await context.abort_with_status(to_status(error))

        def unary_response(inner: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
            async def behaviour(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                reset = _principal.set(await authenticate(context))
                try:
                    return await inner(request, context)
                finally:
                    _principal.reset(reset)

            return behaviour

        def stream_response(inner: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
            async def behaviour(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                reset = _principal.set(await authenticate(context))
                try:
                    async for response in inner(request, context):
                        yield response
                finally:
                    _principal.reset(reset)

            return behaviour

        return rebuild_handler(handler, unary_response, stream_response)
