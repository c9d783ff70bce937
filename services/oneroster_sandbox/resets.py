"""The ``reset`` fault: the sandbox drops a request's TCP connection with a RST, sending nothing.

A handler cannot reach the socket, so it marks the request's ASGI scope instead, and this outermost
middleware, which holds the server's own ``send`` (a bound method of uvicorn's request cycle, whose
``transport`` owns the socket), turns the response it would send into an abortive close
(``SO_LINGER`` with a zero timeout), as a crashed load balancer or a flaky network does.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

RESET_MARK = "ew.sandbox.reset"
_LINGER_ZERO = struct.pack("ii", 1, 0)


def mark_reset(request: Request) -> None:
    """Ask the middleware to reset this request's connection instead of answering."""
    request.scope[RESET_MARK] = True


class ResetMiddleware:
    """Resets the connection of every request a handler marked with ``mark_reset``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, with a ``send`` that resets instead of answering a marked request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        transport: Any = getattr(getattr(send, "__self__", None), "transport", None)

        async def send_or_reset(message: Message) -> None:
            if not scope.get(RESET_MARK):
                await send(message)
                return
            if transport is None:
                raise RuntimeError("the reset fault needs uvicorn's request cycle as the ASGI sender")
            if not transport.is_closing():
                sock: socket.socket | None = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
                transport.abort()

        await self.app(scope, receive, send_or_reset)
