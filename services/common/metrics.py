"""Prometheus metrics every process shares: the ``/metrics`` endpoint and the RPC interceptors.

Each process calls ``start_metrics_server()`` once at startup: with ``EW_METRICS_PORT`` set to a
port it serves ``/metrics`` (the default registry) on ``EW_METRICS_ADDRESS`` (default ``0.0.0.0``);
0 or unset keeps it off. Both gRPC servers put ``MetricsInterceptor`` (threads) or
``AsyncMetricsInterceptor`` (``grpc.aio``) first, so every call is counted with the status the
caller received, refused ones included. Names follow the conventions of grpc-ecosystem's
go-grpc-prometheus, so existing dashboards read them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import Counter, Histogram, start_http_server
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.grpc_handlers import (
    AsyncWrappingInterceptor,
    Handler,
    WrappingInterceptor,
    rebuild_handler,
)

RPC_LABELS = ("grpc_service", "grpc_method", "grpc_type", "grpc_code")

RPC_HANDLED = Counter(
    "grpc_server_handled_total", "RPCs completed on the server, by status code.", RPC_LABELS
)
RPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC to its status, by status code.",
    RPC_LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


class MetricsSettings(BaseSettings):
    """``EW_METRICS_PORT`` and ``EW_METRICS_ADDRESS``."""

    model_config = SettingsConfigDict(env_prefix="EW_METRICS_", extra="ignore")

    port: int = Field(default=0, ge=0, le=65535, description="Port of /metrics; 0 = no metrics endpoint.")
    address: str = Field(default="0.0.0.0", description="Address the metrics endpoint binds.")


def start_metrics_server(settings: MetricsSettings | None = None) -> WSGIServer | None:
    """Serve ``/metrics`` on a daemon thread when a port is configured; None when off."""
    settings = settings or MetricsSettings()
    if settings.port == 0:
        return None
    server, _thread = start_http_server(settings.port, addr=settings.address)
    return server


def _labels(method: str, kind: str) -> tuple[str, str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return service, name, kind


def _code_name(code: object, failed: bool) -> str:
    """The name of the status the context carries; OK, or UNKNOWN for an escaping exception, when unset."""
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):
        return next((status.name for status in grpc.StatusCode if status.value[0] == code), "UNKNOWN")
    return "UNKNOWN" if failed else "OK"


def _status(context: grpc.ServicerContext | grpc.aio.ServicerContext[Any, Any]) -> object:
    """The code set on the call's context (types-grpcio lacks the thread-pool one)."""
    return context.code()  # type: ignore[union-attr]


def _observe(labels: tuple[str, str, str], code: str, started: float) -> None:
    RPC_HANDLED.labels(*labels, code).inc()
    RPC_SECONDS.labels(*labels, code).observe(time.perf_counter() - started)


def _kind(handler: Handler) -> tuple[str, str]:
    """(unary-response kind, streaming-response kind) of the handler's RPC shape."""
    request = "client_stream" if handler.request_streaming else "unary"
    return request, "bidi_stream" if handler.request_streaming else "server_stream"


class MetricsInterceptor(WrappingInterceptor):
    """Counts and times every RPC of a thread-pool server."""

    def wrap(self, handler: Handler, method: str) -> Handler:
        """The handler, wrapped to record its status and duration."""
        unary_kind, stream_kind = _kind(handler)

        def unary_response(inner: Callable[..., Any]) -> Callable[..., Any]:
            def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
                started, failed = time.perf_counter(), True
                try:
                    response = inner(request, context)
                    failed = False
                    return response
                finally:
                    _observe(_labels(method, unary_kind), _code_name(_status(context), failed), started)

            return behaviour

        def stream_response(inner: Callable[..., Iterator[Any]]) -> Callable[..., Any]:
            def behaviour(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                started, failed = time.perf_counter(), True
                try:
                    yield from inner(request, context)
                    failed = False
                finally:
                    _observe(_labels(method, stream_kind), _code_name(_status(context), failed), started)

            return behaviour

        return rebuild_handler(handler, unary_response, stream_response)


class AsyncMetricsInterceptor(AsyncWrappingInterceptor):
    """Counts and times every RPC of a ``grpc.aio`` server; a stream its caller left is CANCELLED."""

    def wrap(self, handler: Handler, method: str) -> Handler:
        """The handler, wrapped to record its status and duration."""
        unary_kind, stream_kind = _kind(handler)

        def unary_response(inner: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
            async def behaviour(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                started, failed = time.perf_counter(), True
                try:
                    response = await inner(request, context)
                    failed = False
                    return response
                finally:
                    _observe(_labels(method, unary_kind), _code_name(_status(context), failed), started)

            return behaviour

        def stream_response(inner: Callable[..., Any]) -> Callable[..., Any]:
            async def behaviour(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                started, code = time.perf_counter(), None
                try:
                    produced = inner(request, context)
                    if isinstance(produced, Awaitable):
                        await produced
                    else:
                        async for response in produced:
                            yield response
                    code = _code_name(context.code(), failed=False)
                except asyncio.CancelledError:
                    code = grpc.StatusCode.CANCELLED.name
                    raise
                finally:
                    _observe(
                        _labels(method, stream_kind), code or _code_name(context.code(), failed=True), started
                    )

            return behaviour

        return rebuild_handler(handler, unary_response, stream_response)
