"""The Dramatiq broker of the sync service, chosen once per process before any actor is declared.

``EW_BROKER_URL`` empty (the embedded default): a ``StubBroker`` whose messages an in-process
``Worker`` executes inside the sync server (see ``services.sync.runs.lifecycle``). A ``redis://``
(or ``rediss://``) URL: a ``RedisBroker`` whose keys live under ``EW_BROKER_NAMESPACE`` (default
``ew-rostersync``), so the service can share a Redis with other applications, and test sessions can
keep to themselves. An ``amqp://`` (or ``amqps://``) URL: a ``RabbitmqBroker``, whose queues are
named ``<namespace>.<queue>`` for the same reason. Actors bind to the global broker when they are
declared, so ``services.sync.runs.tasks`` imports this module first (STYLE D1).
"""

from __future__ import annotations

import os
from typing import Protocol

import dramatiq
import pika
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from services.common.health import Dependency
from services.common.secret_files import secret_value
from services.common.tracing import TraceContextMiddleware

BROKER_URL_ENV = "EW_BROKER_URL"
BROKER_NAMESPACE_ENV = "EW_BROKER_NAMESPACE"
DEFAULT_NAMESPACE = "ew-rostersync"
REDIS_SCHEMES = ("redis", "rediss")
RABBITMQ_SCHEMES = ("amqp", "amqps")


def broker_url() -> str:
    """The Redis or RabbitMQ URL of the broker, or "" for the embedded stub broker."""
    return (secret_value(BROKER_URL_ENV) or "").strip()


def broker_namespace() -> str:
    """The key prefix of the Redis broker, and the queue name prefix of the RabbitMQ broker."""
    return os.environ.get(BROKER_NAMESPACE_ENV, "").strip() or DEFAULT_NAMESPACE


def _scheme(url: str) -> str:
    return url.partition("://")[0].lower()


def _make_broker() -> dramatiq.Broker:
    url = broker_url()
    if not url:
        made: dramatiq.Broker = StubBroker()
        made.emit_after("process_boot")
    elif _scheme(url) in RABBITMQ_SCHEMES:
        made = RabbitmqBroker(url=url)
    elif _scheme(url) in REDIS_SCHEMES:
        # dramatiq's RedisBroker constructor has no annotations.
        made = RedisBroker(url=url, namespace=broker_namespace())  # type: ignore[no-untyped-call]
    else:
        raise RuntimeError(
            f"{BROKER_URL_ENV} must be empty (in-process stub broker), a redis:// URL or an amqp:// URL; "
            f"got one starting with {_scheme(url)!r}"
        )
    made.add_middleware(TraceContextMiddleware())
    return made


broker: dramatiq.Broker = _make_broker()
dramatiq.set_broker(broker)


def broker_dependencies(chosen: dramatiq.Broker) -> list[Dependency]:
    """What the health service probes for ``chosen``: a PING, a connection, nothing.

    Redis answers PING; RabbitMQ accepts a connection; the stub broker is in-process.
    """
    if isinstance(chosen, RedisBroker):
        client = chosen.client

        def ping() -> None:
            client.ping()

        return [Dependency("broker", ping)]
    if isinstance(chosen, RabbitmqBroker):
        parameters = pika.URLParameters(broker_url())

        def connect() -> None:
            # A connection of its own: the broker's are per thread and belong to its workers.
            pika.BlockingConnection(parameters).close()

        return [Dependency("broker", connect)]
    return []


def is_embedded() -> bool:
    """True when runs execute in the sync server process (stub broker)."""
    return isinstance(broker, StubBroker)


def queue_name(name: str) -> str:
    """The broker's name of the queue ``name``: prefixed with the namespace on RabbitMQ.

    Redis keys are namespaced by the broker itself; RabbitMQ queues share the virtual host.
    """
    return f"{broker_namespace()}.{name}" if isinstance(broker, RabbitmqBroker) else name


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
