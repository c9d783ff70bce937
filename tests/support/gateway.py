"""A real gateway (uvicorn on a free port, in a thread) in front of a sync stack's servers."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from services.common.tls import TlsSettings
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from tests.support.sync_stack import SyncStack


@contextmanager
def running_gateway(settings: GatewaySettings, tls: TlsSettings | None = None) -> Iterator[str]:
    """Serve the gateway on 127.0.0.1 at a free port and yield its base URL.

    The socket listens before the server thread starts, so a request made at once waits in the
    backlog until the gateway accepts it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, tls or TlsSettings()),
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def gateway_settings(stack: SyncStack, **overrides: Any) -> GatewaySettings:
    """Settings pointing the gateway at ``stack``'s sync and roster servers."""
    values: dict[str, Any] = {
        "listen_address": "127.0.0.1:0",
        "sync_target": stack.server.target,
        "roster_target": stack.roster.address,
    }
    return GatewaySettings(**(values | overrides))


@contextmanager
def gateway_client(stack: SyncStack, **overrides: Any) -> Iterator[httpx.Client]:
    """An httpx client on a gateway in front of ``stack``, as the district's administrator."""
    with (
        running_gateway(gateway_settings(stack, **overrides)) as base_url,
        httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {stack.token()}"}, timeout=60
        ) as client,
    ):
        yield client
