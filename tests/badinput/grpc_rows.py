"""A bad gRPC request as a table row, and how a row is sent and judged.

Requests go through a generic channel call (``channel.unary_unary(method)`` with no serializer),
so a row may send any bytes: a message, or wire bytes no stub would produce (invalid UTF-8 in a
string field, a request beyond the server's receive limit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.protobuf.message import Message

from tests.badinput import tally
from tests.badinput.world import Snapshot, World

Metadata = tuple[tuple[str, str], ...]
# Above the servers' 16 MB receive limit (services.common.grpc_server.MAX_MESSAGE).
OVERSIZED = 17 * 1024 * 1024
MB = 1024 * 1024
KB10 = 10 * 1024


@dataclass(frozen=True)
class Row:
    """One request, the status it must get and a fragment its message must hold (case-insensitive)."""

    id: str
    method: str
    request: Callable[[World], Message | bytes]
    code: grpc.StatusCode
    fragment: str
    # The caller; None is the method's usual caller (the service identity on the roster, the
    # district administrator on the sync service).
    metadata: Callable[[World], Metadata] | None = None
    stream: bool = False
    # Tables the refusal records by design (an abandoned change set); every other table must not change.
    records: frozenset[str] = frozenset()


def string_field(number: int, value: bytes) -> bytes:
    """The wire bytes of a length-delimited field ``number`` holding ``value`` (any bytes)."""
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _raw(data: bytes) -> bytes:
    """The wire bytes as they are, both ways."""
    return data


def send(
    channel: grpc.Channel, method: str, payload: bytes, metadata: Metadata, *, stream: bool
) -> tuple[grpc.StatusCode, str]:
    """Send ``payload`` as the request of ``method``; the status and message that came back."""
    try:
        if stream:
            list(channel.unary_stream(method, _raw, _raw)(payload, metadata=metadata, timeout=60))
        else:
            channel.unary_unary(method, _raw, _raw)(payload, metadata=metadata, timeout=60)
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def judge(table: str, world: World, channel: grpc.Channel, service: str, row: Row, default: Metadata) -> None:
    """Send ``row``; record and assert its status, its message and that no stored row changed."""
    request = row.request(world)
    payload = request if isinstance(request, bytes) else request.SerializeToString()
    metadata = row.metadata(world) if row.metadata else default
    before = world.snapshot()
    code, message = send(channel, f"/{service}/{row.method}", payload, metadata, stream=row.stream)
    changed = [name for name in changed_tables(before, world.snapshot()) if name not in row.records]
    right = code == row.code and row.fragment.lower() in message.lower()
    tally.record(table, right=right, unchanged=not changed)
    assert right, f"{code.name}: {message[:300]!r}; expected {row.code.name} with {row.fragment!r}"
    assert not changed, f"{row.id} changed {changed}"


def changed_tables(before: Snapshot, after: Snapshot) -> list[str]:
    """The tables whose rows differ between two snapshots."""
    return [
        name
        for old, new in zip(before, after, strict=True)
        for name in sorted(set(old) | set(new))
        if old.get(name) != new.get(name)
    ]
