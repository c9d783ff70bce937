"""The Dramatiq broker of the sync service, chosen once per process before any actor is declared.

``EW_BROKER_URL`` empty (the embedded default): a ``StubBroker`` whose messages an in-process
``Worker`` executes inside the sync server (see ``services.sync.runs.lifecycle``). Otherwise a
``RedisBroker`` whose keys live under ``EW_BROKER_NAMESPACE`` (default ``ew-rostersync``), so the
service can share a Redis with other applications, and test sessions can keep to themselves.
Actors bind to the global broker when they are declared, so ``services.sync.runs.tasks`` imports this
module first (STYLE D1).
"""

from __future__ import annotations

import os
from typing import Protocol

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from services.common.health import Dependency
from services.common.secret_files import secret_value
from services.common.tracing import TraceContextMiddleware

BROKER_URL_ENV = "EW_BROKER_URL"
BROKER_NAMESPACE_ENV = "EW_BROKER_NAMESPACE"
DEFAULT_NAMESPACE = "ew-rostersync"


def broker_url() -> str:
    """The Redis URL of the broker, or "" for the embedded stub broker."""
    return (secret_value(BROKER_URL_ENV) or "").strip()


def broker_namespace() -> str:
    """The key prefix of the Redis broker."""
    return os.environ.get(BROKER_NAMESPACE_ENV, "").strip() or DEFAULT_NAMESPACE


def _make_broker() -> dramatiq.Broker:
    url = broker_url()
    if not url:
        made: dramatiq.Broker = StubBroker()
        made.emit_after("process_boot")
    else:
        # dramatiq's RedisBroker constructor has no annotations.
        made = RedisBroker(url=url, namespace=broker_namespace())  # type: ignore[no-untyped-call]
    made.add_middleware(TraceContextMiddleware())
    return made


broker: dramatiq.Broker = _make_broker()
dramatiq.set_broker(broker)


def broker_dependencies(chosen: dramatiq.Broker) -> list[Dependency]:
    """What the health service probes for ``chosen``: Redis answers PING; the stub broker is in-process."""
    if isinstance(chosen, RedisBroker):
        client = chosen.client

        def ping() -> None:
            client.ping()

        return [Dependency("broker", ping)]
    return []


def is_embedded() -> bool:
    """True when runs execute in the sync server process (stub broker)."""
    return isinstance(broker, StubBroker)


class _HasBrokerUrl(Protocol):
    broker_url: str


def create_broker(settings: _HasBrokerUrl) -> dramatiq.Broker:
    """The process's broker, after checking the settings name the same one."""
    if settings.broker_url.strip() != broker_url():
        raise RuntimeError(
            f"the settings' broker URL differs from {BROKER_URL_ENV}, from which this process chose "
            "its Dramatiq broker when services.sync.runs.broker was first imported; set "
            f"{BROKER_URL_ENV} in the environment (empty for the in-process stub broker) before "
            "the process starts"
        )
    return broker
