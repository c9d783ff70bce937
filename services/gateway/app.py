"""The gateway's Starlette application: /v1 routes from the annotations, health, OpenAPI, the page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from google.protobuf.message import Message
from google.rpc import code_pb2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount
from starlette.routing import Route as HttpRoute
from starlette.staticfiles import StaticFiles

from services.common.tls import TlsSettings
from services.gateway import sse
from services.gateway.backends import Backends, Metadata
from services.gateway.errors import GatewayError, gateway_error_response, rpc_error_response
from services.gateway.openapi import openapi_document
from services.gateway.routes import Route, build_routes
from services.gateway.settings import GatewaySettings, GatewayTlsSettings
from services.gateway.transcode import build_request, message_class, to_json

HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# What gRPC allows in an ASCII metadata value.
_PRINTABLE_ASCII = re.compile("[\x20-\x7e]*")
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _metadata(request: Request, route: Route) -> Metadata:
    """The caller's bearer token, passed through as it came (the gateway never mints one).

    A browser's EventSource cannot set headers, so streaming routes also take ``?access_token=``.
    """
    authorization = request.headers.get("authorization")
    token = request.query_params.get("access_token")
    if authorization is None and token and route.server_streaming:
        authorization = f"Bearer {token}"
    if not authorization:
        return []
    if not _PRINTABLE_ASCII.fullmatch(authorization):
        raise GatewayError(
            code_pb2.UNAUTHENTICATED, "the Authorization header must be 'Bearer <token>' in ASCII"
        )
    return [("authorization", authorization)]


def _resume_after(request: Request, message: Message) -> None:
    """``Last-Event-ID`` (sent by a reconnecting SSE client) sets ``after_sequence``."""
    last_event_id = request.headers.get("last-event-id")
    if last_event_id is None or "after_sequence" not in message.DESCRIPTOR.fields_by_name:
        return
    if not last_event_id.strip().isdigit():
        raise GatewayError(
            code_pb2.INVALID_ARGUMENT,
            f"Last-Event-ID must be an event sequence number, got {last_event_id!r}",
            field="after_sequence",
        )
    message.after_sequence = int(last_event_id)  # type: ignore[attr-defined]


class Gateway:
    """The routes, the backends and the request handling between them."""

    def __init__(self, settings: GatewaySettings, tls: TlsSettings) -> None:
        self.settings = settings
        self.tls = tls
        self.routes = build_routes()
        self._backends: Backends | None = None
        self.openapi = openapi_document(self.routes)

    @property
    def backends(self) -> Backends:
        """The backend channels (opened at start-up, inside the server's event loop)."""
        if self._backends is None:
            raise RuntimeError("the gateway has not started")
        return self._backends

    @asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        """Open the channels at start-up and close them at shutdown."""
        self._backends = Backends(self.settings, self.tls)
        try:
            yield
        finally:
            await self._backends.close()

    def _route(self, request: Request) -> tuple[Route, dict[str, str]]:
        allowed = []
        for route in self.routes:
            fields = route.match(request.url.path)
            if fields is None:
                continue
            if route.http_method == request.method:
                return route, fields
            allowed.append(route.http_method)
        if allowed:
            raise GatewayError(
                code_pb2.UNIMPLEMENTED,
                f"{request.method} is not allowed here; use {', '.join(allowed)}",
                http_status=405,
                headers={"Allow": ", ".join(allowed)},
            )
        raise GatewayError(code_pb2.NOT_FOUND, f"no API route matches {request.url.path}")

    async def _body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        too_large = GatewayError(
            code_pb2.RESOURCE_EXHAUSTED, f"the body is larger than {limit} bytes", http_status=413
        )
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large
        return bytes(body)

    async def handle(self, request: Request) -> Response:
        """Transcode one /v1 request to its RPC and the answer back."""
        try:
            route, path_fields = self._route(request)
            metadata = _metadata(request, route)
            if metadata:
                message = build_request(
                    route, path_fields, request.query_params.multi_items(), await self._body(request)
                )
            else:
                # Without credentials the backend refuses before reading the request, exactly as
                # it does over gRPC; the gateway does not judge the request first.
                message = message_class(route.method.input_type)()
            if route.server_streaming:
                _resume_after(request, message)
                return await self._stream(route, message, metadata)
            response = await self.backends.unary(route, message, metadata)
        except GatewayError as error:
            return gateway_error_response(error)
        except grpc.aio.AioRpcError as error:
            return rpc_error_response(error)
        return JSONResponse(to_json(response))

    async def _stream(self, route: Route, message: Message, metadata: Metadata) -> Response:
        call = self.backends.stream(route, message, metadata)
        pending = await sse.first_read(call, self.settings.heartbeat_seconds)
        refused = pending.exception() if pending.done() else None
        if isinstance(refused, grpc.aio.AioRpcError):
            return rpc_error_response(refused)
        return StreamingResponse(
            sse.events(call, pending, self.settings.heartbeat_seconds),
            media_type="text/event-stream",
            headers=_SSE_HEADERS,
        )

    async def healthz(self, _request: Request) -> Response:
        """Liveness: the process answers."""
        return JSONResponse({"status": "ok"})

    async def readyz(self, _request: Request) -> Response:
        """Readiness: both gRPC backends report SERVING."""
        backends = await self.backends.ready()
        ready = all(backends.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "backends": backends},
            status_code=200 if ready else 503,
        )

    async def openapi_json(self, _request: Request) -> Response:
        """The OpenAPI 3.1 document of the /v1 routes."""
        return JSONResponse(self.openapi)


_CODE_OF_HTTP = {404: code_pb2.NOT_FOUND, 405: code_pb2.UNIMPLEMENTED}


async def _http_error(_request: Request, error: Exception) -> Response:
    """Starlette's own refusals (no route at all, a method a route lacks) as Status JSON too."""
    assert isinstance(error, HTTPException)
    code = _CODE_OF_HTTP.get(error.status_code, code_pb2.INVALID_ARGUMENT)
    return gateway_error_response(
        GatewayError(
            code, str(error.detail), http_status=error.status_code, headers=dict(error.headers or {})
        )
    )


def create_app(settings: GatewaySettings, tls: TlsSettings | None = None) -> Starlette:
    """The ASGI application; ``tls`` (default: ``EW_GATEWAY_TLS_*``) secures the backend channels."""
    gateway = Gateway(settings, tls or GatewayTlsSettings())
    middleware: list[Middleware] = []
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=HTTP_METHODS,
                allow_headers=["authorization", "content-type", "last-event-id"],
            )
        )
    routes: list[Any] = [
        HttpRoute("/healthz", gateway.healthz, methods=["GET"]),
        HttpRoute("/readyz", gateway.readyz, methods=["GET"]),
        HttpRoute("/openapi.json", gateway.openapi_json, methods=["GET"]),
        HttpRoute("/", lambda _request: RedirectResponse("/settings/"), methods=["GET"]),
        HttpRoute("/v1/{rest:path}", gateway.handle, methods=[*HTTP_METHODS, "HEAD", "OPTIONS"]),
        Mount(
            "/settings",
            StaticFiles(directory=settings.static_dir, html=True, check_dir=False),
            name="settings",
        ),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=gateway.lifespan,
        exception_handlers={HTTPException: _http_error},
    )
