"""Rebuild a gRPC method handler with its behaviour wrapped, for server interceptors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

Wrapper = Callable[[Any], Callable[..., Any]]


def rebuild_handler(
    handler: grpc.RpcMethodHandler[Any, Any],
    unary_response: Wrapper,
    stream_response: Wrapper,
) -> grpc.RpcMethodHandler[Any, Any]:
    """The same handler with every kind of behaviour wrapped, so no RPC shape escapes the wrapper.

    ``unary_response`` wraps behaviours that return one response, ``stream_response`` those that
    yield responses.
    """
    codecs: dict[str, Any] = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary_response(handler.unary_unary), **codecs)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(stream_response(handler.unary_stream), **codecs)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(unary_response(handler.stream_unary), **codecs)
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(stream_response(handler.stream_stream), **codecs)
    raise ValueError("method handler has no behaviour")
