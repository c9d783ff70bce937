"""The gRPC channels to the sync and roster services, and generic calls on them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.tls import TlsSettings
from services.gateway.routes import Route
from services.gateway.settings import GatewaySettings
from services.gateway.transcode import message_class

Metadata = Sequence[tuple[str, str]]


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


class Backends:
    """One ``grpc.aio`` channel per backend service, chosen by the route's service."""

    def __init__(self, settings: GatewaySettings, tls: TlsSettings) -> None:
        self._settings = settings
        credentials = tls.channel_credentials() if tls.client_enabled else None

        def channel(target: str) -> grpc.aio.Channel:
            if credentials is None:
                return grpc.aio.insecure_channel(target)
            return grpc.aio.secure_channel(target, credentials)

        self._channels = {
            "ew.sync.v1.SyncService": channel(settings.sync_target),
            "ew.roster.v1.RosterService": channel(settings.roster_target),
        }

    def _channel(self, route: Route) -> grpc.aio.Channel:
        return self._channels[route.method.containing_service.full_name]

    async def unary(self, route: Route, request: Message, metadata: Metadata) -> Message:
        """Call a unary RPC with the per-call timeout."""
        call = self._channel(route).unary_unary(
            route.rpc_path,
            request_serializer=_serialize,
            response_deserializer=message_class(route.method.output_type).FromString,
        )
        response: Message = await call(request, metadata=metadata, timeout=self._settings.call_timeout)
        return response

    def stream(self, route: Route, request: Message, metadata: Metadata) -> Any:
        """Start a server-streaming RPC (no deadline: it lasts as long as the run)."""
        call = self._channel(route).unary_stream(
            route.rpc_path,
            request_serializer=_serialize,
            response_deserializer=message_class(route.method.output_type).FromString,
        )
        return call(request, metadata=metadata)

    async def _serving(self, channel: grpc.aio.Channel) -> bool:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=self._settings.ready_timeout)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def ready(self) -> dict[str, bool]:
        """Whether each backend's health service says SERVING."""
        names = list(self._channels)
        answers = await asyncio.gather(*(self._serving(self._channels[name]) for name in names))
        return dict(zip(names, answers, strict=True))

    async def close(self) -> None:
        """Close the channels."""
        await asyncio.gather(*(channel.close() for channel in self._channels.values()))
