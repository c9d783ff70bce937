"""Server reflection under both names clients ask for: ``grpc.reflection.v1`` and ``v1alpha``.

grpcio-reflection (1.85) serves only ``grpc.reflection.v1alpha.ServerReflection``; current tools
(grpcurl, Postman, grpcui) ask for ``grpc.reflection.v1`` first. The two protocols are the same
messages under another package name, so the v1 method is served by a second instance of the same
servicer, decoding and encoding with the v1alpha message classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
V1ALPHA_SERVICE_NAME = reflection.SERVICE_NAME


def enable_reflection(service_names: Sequence[str], server: grpc.Server | grpc.aio.Server) -> None:
    """Serve reflection of ``service_names`` (and of reflection itself) under v1 and v1alpha."""
    names = [*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
    servicer = (
        reflection.aio.ReflectionServicer(names)
        if isinstance(server, grpc.aio.Server)
        else reflection.ReflectionServicer(names)
    )
    handler = grpc.method_handlers_generic_handler(
        V1_SERVICE_NAME,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
