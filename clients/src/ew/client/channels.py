"""Channels of the client library: gRPC's built-in retry policy for idempotent reads, keepalive.

The service config retries the read methods (``Get*``, ``List*``, ``PreviewSync``) up to 4 attempts
on ``UNAVAILABLE`` (a replica going away, a connection reset before the call reached a server),
with exponential back-off; writes are never retried by the channel, since a write that reached the
server may have happened. Progress streams re-attach by themselves (``ew.client.sync.RunEvents``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import grpc

RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.2s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
KEEPALIVE_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", 120_000),
    ("grpc.keepalive_timeout_ms", 20_000),
]
ROSTER_READS = (
    "GetDistrict",
    "GetSchool",
    "ListSchools",
    "GetTeacher",
    "ListTeachers",
    "GetChangeSet",
    "ListChangeSetResults",
)
SYNC_READS = (
    "GetConnection",
    "ListSchoolMappings",
    "PreviewSync",
    "GetSyncRun",
    "ListSyncRuns",
    "ListSyncRunItems",
)


def channel_options(service: str, read_methods: Sequence[str]) -> list[tuple[str, Any]]:
    """Channel options retrying ``read_methods`` of ``service`` (a full name: ``ew.sync.v1.SyncService``)."""
    config = {
        "methodConfig": [
            {
                "name": [{"service": service, "method": method} for method in read_methods],
                "retryPolicy": RETRY_POLICY,
            }
        ]
    }
    return [("grpc.enable_retries", 1), ("grpc.service_config", json.dumps(config)), *KEEPALIVE_OPTIONS]


class BearerToken(grpc.AuthMetadataPlugin):
    """gRPC call credentials: ``authorization: Bearer <token>`` from ``token()`` on every call."""

    def __init__(self, token: Callable[[], str]) -> None:
        self._token = token

    def __call__(self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback) -> None:
        """Hand gRPC the header, or the error the token provider raised."""
        try:
            callback((("authorization", f"Bearer {self._token()}"),), None)
        except Exception as error:  # the provider's failure fails the call, with its message
            callback((), error)


def open_channel(
    target: str,
    credentials: grpc.ChannelCredentials | None,
    options: list[tuple[str, Any]],
    token: Callable[[], str] | None = None,
) -> grpc.Channel:
    """A blocking channel, secure when ``credentials`` are given.

    On a secure channel ``token`` travels as gRPC call credentials; gRPC sends call credentials
    only over TLS, so on a plaintext channel (local development) callers add the header themselves.
    """
    if credentials is None:
        return grpc.insecure_channel(target, options=options)
    if token is not None:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.metadata_call_credentials(BearerToken(token))
        )
    return grpc.secure_channel(target, credentials, options=options)


def open_aio_channel(
    target: str, credentials: grpc.ChannelCredentials | None, options: list[tuple[str, Any]]
) -> grpc.aio.Channel:
    """An asyncio channel, secure when ``credentials`` are given."""
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, credentials, options=options)
