"""What both gRPC servers share about connections: options (keepalive, connection age), draining.

``EW_GRPC_*`` variables tune them for every server process:

- ``EW_GRPC_KEEPALIVE_TIME`` (60 s) / ``EW_GRPC_KEEPALIVE_TIMEOUT`` (20 s): the server pings an idle
  connection and drops it when the ping goes unanswered, so half-open connections (a NAT or load
  balancer forgot them) do not pin streams forever.
- ``EW_GRPC_MIN_PING_INTERVAL`` (10 s): how often clients may ping without data before the server
  calls it abuse (clients' own keepalives must be slower).
- ``EW_GRPC_MAX_CONNECTION_AGE`` (1800 s; 0 = unlimited) / ``EW_GRPC_MAX_CONNECTION_AGE_GRACE``
  (300 s): a connection older than the age is asked to go away (GOAWAY), so clients reconnect and
  spread over the replicas a load balancer added; calls still running get the grace to finish, and a
  progress stream cut after it re-attaches by itself (``ew.client.sync.RunEvents``).

On SIGTERM a server first ends its response streams with ``shutting_down_status()`` (``UNAVAILABLE``
with ``ErrorInfo`` reason ``SERVER_SHUTTING_DOWN`` and ``RetryInfo``), then stops accepting calls and
lets unary calls finish within its grace period; callers re-attach to another (or the restarted)
server and lose no event.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.errors import Unavailable
from services.common.grpc_errors import to_status
from services.common.grpc_handlers import AsyncWrappingInterceptor, Handler, rebuild_handler

MAX_MESSAGE = 16 * 1024 * 1024


class ServerConnectionSettings(BaseSettings):
    """Keepalive and connection-age settings, in seconds."""

    model_config = SettingsConfigDict(env_prefix="EW_GRPC_", extra="ignore")

    keepalive_time: float = Field(default=60.0, gt=0, description="Ping an idle connection this often.")
    keepalive_timeout: float = Field(default=20.0, gt=0, description="Drop it when a ping is not answered.")
    min_ping_interval: float = Field(default=10.0, gt=0, description="Clients may ping this often.")
    max_connection_age: float = Field(default=1800.0, ge=0, description="GOAWAY after this; 0 = never.")
    max_connection_age_grace: float = Field(default=300.0, ge=0, description="Calls' time after GOAWAY.")


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def server_options(settings: ServerConnectionSettings | None = None) -> list[tuple[str, int]]:
    """The options to create a gRPC server (threaded or aio) with."""
    settings = settings or ServerConnectionSettings()
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_time_ms", _ms(settings.keepalive_time)),
        ("grpc.keepalive_timeout_ms", _ms(settings.keepalive_timeout)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", _ms(settings.min_ping_interval)),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    if settings.max_connection_age > 0:
        options += [
            ("grpc.max_connection_age_ms", _ms(settings.max_connection_age)),
            ("grpc.max_connection_age_grace_ms", _ms(settings.max_connection_age_grace)),
        ]
    return options


SHUTTING_DOWN_REASON = "SERVER_SHUTTING_DOWN"
SHUTTING_DOWN_MESSAGE = (
    "This server is shutting down; re-attach (WatchSyncRun from the last event seen) and the run goes on."
)
RETRY_DELAY = dt.timedelta(seconds=1)


def shutting_down_status() -> grpc.Status:
    """UNAVAILABLE with ``ErrorInfo`` (``SERVER_SHUTTING_DOWN``, ``action: re-attach``) and ``RetryInfo``."""
    retry = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=int(RETRY_DELAY.total_seconds()))
    )
    error = Unavailable(SHUTTING_DOWN_MESSAGE, reason=SHUTTING_DOWN_REASON, metadata={"action": "re-attach"})
    return to_status(error, [retry])


class AsyncStreamDrainer(AsyncWrappingInterceptor):
    """Ends every response stream of a ``grpc.aio`` server with ``shutting_down_status`` on ``drain``.

    Without it, a server stopping with streams open waits out its grace period and then cancels them
    with a bare ``UNAVAILABLE "Cancelling all calls"``. Unary calls pass untouched: ``server.stop``
    lets them finish.
    """

    def __init__(self) -> None:
        self._draining = asyncio.Event()

    def drain(self) -> None:
        """End open streams now, and any stream that starts from now on."""
        self._draining.set()

    def wrap(self, handler: Handler, method: str) -> Handler:
        """The handler with its response stream raced against the drain."""

        def stream_response(inner: Callable[..., Any]) -> Callable[..., Any]:
            async def behaviour(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                produced = inner(request, context)
                if inspect.isawaitable(produced):  # a context.write servicer (Health.Watch) ends by itself
                    await produced
                    return
                drained = asyncio.ensure_future(self._draining.wait())
                try:
                    while True:
                        following = asyncio.ensure_future(anext(produced))
                        await asyncio.wait({following, drained}, return_when=asyncio.FIRST_COMPLETED)
                        if not following.done():
                            following.cancel()
                            await asyncio.gather(following, return_exceptions=True)
                            await context.abort_with_status(shutting_down_status())
                        try:
                            response = following.result()
                        except StopAsyncIteration:
                            return
                        yield response
                finally:
                    drained.cancel()
                    await produced.aclose()

            return behaviour

        return rebuild_handler(handler, lambda inner: inner, stream_response)
