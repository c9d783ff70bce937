"""Server-Sent Events from a server-streaming RPC.

Each response is an ``event: progress`` whose ``id`` is the sequence of the run event it carries
(so ``Last-Event-ID`` resumes after it); an idle stream gets ``: keep-alive`` comments every
heartbeat; after the RPC's last response comes ``event: end`` and the stream closes. A failure
after the stream started is an ``event: error`` carrying the Status JSON.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.message import Message

from services.gateway.errors import status_json, status_of
from services.gateway.transcode import to_json

KEEP_ALIVE = ": keep-alive\n\n"
END = "event: end\ndata: {}\n\n"


def sequence_of(response: Message) -> int | None:
    """The sequence of the run event a response carries, if it carries one."""
    for field, value in response.ListFields():
        if field.message_type is not None and "sequence" in field.message_type.fields_by_name:
            return int(value.sequence)
    return None


def progress_event(response: Message) -> str:
    """One SSE event for a response."""
    sequence = sequence_of(response)
    lines = [f"id: {sequence}"] if sequence is not None else []
    lines += ["event: progress", f"data: {json.dumps(to_json(response), separators=(',', ':'))}"]
    return "\n".join(lines) + "\n\n"


def error_event(error: grpc.aio.AioRpcError) -> str:
    """The SSE event for an RPC that failed mid-stream."""
    return f"event: error\ndata: {json.dumps(status_json(status_of(error)), separators=(',', ':'))}\n\n"


async def first_read(call: Any, heartbeat: float) -> asyncio.Future[Any]:
    """Start reading the stream and wait up to one heartbeat for its first response.

    When the future is done with an error the caller answers it as a plain JSON Status: the
    stream has not started.
    """
    pending: asyncio.Future[Any] = asyncio.ensure_future(call.read())
    await asyncio.wait({pending}, timeout=heartbeat)
    return pending


async def events(call: Any, pending: asyncio.Future[Any], heartbeat: float) -> AsyncIterator[str]:
    """The SSE text of a streaming call, from its pending first read; cancels the call when done."""
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=heartbeat)
            if not done:
                yield KEEP_ALIVE
                continue
            try:
                response = pending.result()
            except grpc.aio.AioRpcError as error:
                yield error_event(error)
                return
            if response is grpc.aio.EOF:
                yield END
                return
            yield progress_event(response)
            pending = asyncio.ensure_future(call.read())
    finally:
        pending.cancel()
        call.cancel()
