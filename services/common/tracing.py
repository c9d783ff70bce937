"""Tracing with OpenTelemetry, off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Every process calls ``configure_tracing(name)`` at startup, before it creates servers, channels or
engines: with an endpoint it installs a tracer provider that exports spans over OTLP/gRPC in
batches (the standard ``OTEL_*`` variables tune the exporter) and instruments gRPC (servers and
clients, threaded and aio), httpx and SQLAlchemy. gRPC carries the context between the services in
``traceparent`` metadata; ``TraceContextMiddleware`` carries it through Dramatiq in the message's
options, so one trace follows a sync from the RPC that started it through the worker to the roster
service's commit. Log lines written inside a span carry its ``trace_id`` (``services.common.logs``).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware
from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.grpc import (
    GrpcAioInstrumentorClient,
    GrpcAioInstrumentorServer,
    GrpcInstrumentorClient,
    GrpcInstrumentorServer,
)
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACE_OPTION = "trace_context"

_lock = threading.Lock()
_instrumented = False


def configure_tracing(service_name: str, processor: SpanProcessor | None = None) -> bool:
    """Trace this process when an OTLP endpoint is configured (or ``processor`` is given: tests).

    Returns whether tracing is on.
    """
    global _instrumented
    if processor is None:
        if not os.environ.get(ENDPOINT_VARIABLE, "").strip():
            return False
        processor = BatchSpanProcessor(OTLPSpanExporter())
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    with _lock:
        if not _instrumented:
            # The gRPC instrumentors' constructors have no annotations.
            for instrumentor in (
                GrpcInstrumentorServer(),  # type: ignore[no-untyped-call]
                GrpcInstrumentorClient(),  # type: ignore[no-untyped-call]
                GrpcAioInstrumentorServer(),  # type: ignore[no-untyped-call]
                GrpcAioInstrumentorClient(),  # type: ignore[no-untyped-call]
                HTTPXClientInstrumentor(),
            ):
                instrumentor.instrument()
            # The instrumentation declares SQLAlchemy < 2.1; the engine events it hooks are unchanged
            # in 2.1 (tests/service/test_tracing.py sees the statements' spans).
            SQLAlchemyInstrumentor().instrument(enable_commenter=False, skip_dep_check=True)
            _instrumented = True
    return True


class TraceContextMiddleware(Middleware):
    """Carries the sender's trace context in each message's options to the worker that runs it."""

    def __init__(self) -> None:
        self._attached = threading.local()

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int) -> None:
        """Write the current context (``traceparent``) into the message's options."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if carrier:
            message.options[TRACE_OPTION] = carrier

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        """Make the sender's context current while the worker thread processes the message."""
        carrier: dict[str, Any] = message.options.get(TRACE_OPTION) or {}
        self._attached.token = context.attach(propagate.extract(carrier))

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        """Restore the worker thread's own context."""
        self._detach()

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        """Restore the worker thread's own context (a skipped message)."""
        self._detach()

    def _detach(self) -> None:
        token = getattr(self._attached, "token", None)
        if token is not None:
            context.detach(token)
            self._attached.token = None
