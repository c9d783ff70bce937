"""The gateway against its own OpenAPI document, by schemathesis (property-based, bounded).

Generated requests, valid and malformed, go to a running gateway in front of real sync and roster
servers: no answer is a 5xx, every answer conforms to the document (a 2xx to its response schema,
anything else to google.rpc.Status), and data the document forbids is refused with a 4xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from services.gateway.openapi import openapi_document
from services.gateway.routes import build_routes
from tests.support.gateway import gateway_settings, running_gateway
from tests.support.sync_stack import sync_stack

pytestmark = pytest.mark.timeout(300)


@dataclass
class Gateway:
    """A running gateway and the token of its district's administrator."""

    base_url: str
    district_id: str
    token: str


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("schemathesis")
    with (
        sync_stack(
            f"sqlite:///{folder}/roster.db", f"sqlite:///{folder}/sync.db", schools=2, teachers=6
        ) as stack,
        running_gateway(gateway_settings(stack)) as base_url,
    ):
        yield Gateway(base_url, stack.district_id, stack.token())


# The document the gateway serves at /openapi.json (test_gateway_openapi checks they are equal).
schema = schemathesis.openapi.from_dict(openapi_document(build_routes()))


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_5xx_and_every_answer_matches_the_document(case: schemathesis.Case[Any], gateway: Gateway) -> None:
    positive = case.meta is None or case.meta.generation.mode == schemathesis.GenerationMode.POSITIVE
    # Half the valid cases act on the token's own district, so they reach the service's own
    # validation rather than stopping at its district check; malformed cases are sent as made.
    if positive and "district" in (case.path_parameters or {}) and hash(str(case.path_parameters)) % 2:
        case.path_parameters["district"] = gateway.district_id
    headers = {} if "Authorization" in (case.headers or {}) else {"Authorization": f"Bearer {gateway.token}"}
    # The document cannot say which well-formed requests the services refuse (an unknown run,
    # a school that is not the district's): those are 4xx by design, so that check stays off.
    case.call_and_validate(
        base_url=gateway.base_url, headers=headers, excluded_checks=[positive_data_acceptance], timeout=60
    )
