"""Rebuild a gRPC method handler with its behaviour wrapped, for server interceptors."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import DecodeError

Wrapper = Callable[[Any], Callable[..., Any]]
# What a server interceptor's intercept_service receives and returns (generic only in the stubs).
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation: TypeAlias = Callable[[grpc.HandlerCallDetails], "Handler | None"]
AsyncContinuation: TypeAlias = Callable[[grpc.HandlerCallDetails], Awaitable["Handler | None"]]


@dataclass(frozen=True)
class UndecodableRequest:
    """What a lenient deserializer hands the behaviour instead of a request it could not decode."""

    problem: str


def decoding_leniently(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    """The same handler, its request deserializer returning ``UndecodableRequest`` instead of raising.

    gRPC answers a raising deserializer itself, before any interceptor's behaviour runs: INTERNAL
    on a thread-pool server, UNKNOWN naming the exception's class on an aio server. With this the
    behaviour receives the stand-in and can refuse the call as the caller's fault. Handlers that
    take a request stream (only reflection's) keep their deserializer: their behaviour reads
    requests from an iterator the wrappers do not see.
    """
    deserialize = handler.request_deserializer
    if deserialize is None:
        return handler

    def lenient(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError as error:
            return UndecodableRequest(str(error))

    codecs: dict[str, Any] = {
        "request_deserializer": lenient,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(handler.unary_unary, **codecs)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(handler.unary_stream, **codecs)
    return handler


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


class WrappingInterceptor(grpc.ServerInterceptor):
    """A thread-pool server interceptor that hands every known method's handler to ``wrap``."""

    def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        """The handler ``wrap`` makes of the method's; an unknown method (None) passes through."""
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        return self.wrap(handler, handler_call_details.method)

    @abstractmethod
    def wrap(self, handler: Handler, method: str) -> Handler:
        """The handler to serve ``method`` with instead of ``handler``."""


class AsyncWrappingInterceptor(grpc.aio.ServerInterceptor):
    """A ``grpc.aio`` server interceptor that hands every known method's handler to ``wrap``."""

    async def intercept_service(
        self, continuation: AsyncContinuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        """The handler ``wrap`` makes of the method's; an unknown method (None) passes through."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return self.wrap(handler, handler_call_details.method)

    @abstractmethod
    def wrap(self, handler: Handler, method: str) -> Handler:
        """The handler to serve ``method`` with instead of ``handler``."""
