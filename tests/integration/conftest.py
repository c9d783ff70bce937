"""Fixtures of the integration-only suite: the end-to-end deployment, on a broker the test names.

``make test-integration`` runs this directory (``make test`` does not: it needs this machine's
Redis and RabbitMQ, ``EW_TEST_BROKER_URL`` and ``EW_TEST_RABBITMQ_URL``). A server that does not
answer fails the test; nothing is skipped.
"""

from __future__ import annotations

from tests.e2e.conftest import deploy

__all__ = ["deploy"]
