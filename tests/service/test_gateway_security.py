"""The security matrix through the gateway: every HTTP route refuses exactly as its RPC does.

For every annotated route and every caller the rules refuse (no or unverifiable token, teacher,
school admin, basic plan, another district's admin, the service identity where it may not), the
HTTP answer is the gRPC refusal: the status AIP-193 gives its code, the same code and message in
the google.rpc.Status body. Another district's caller cannot tell a real district from a ghost.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from services.gateway.errors import HTTP_STATUS
from services.gateway.routes import Route, build_routes
from tests.service.test_security_matrix import (
    GHOST,
    ROSTER,
    SYNC,
    UNVERIFIABLE,
    Caller,
    World,
    call,
    row_of,
    world,
)
from tests.support.gateway import gateway_settings, running_gateway
from tests.support.sync_stack import DISTRICT

pytestmark = pytest.mark.timeout(300)

ROUTES = build_routes()
# The matrix's module fixture: the same district, resources, callers and tokens.
__all__ = ["world"]


@pytest.fixture(scope="module")
def http(world: World) -> Iterator[httpx.Client]:
    with (
        running_gateway(gateway_settings(world.stack)) as base_url,
        httpx.Client(base_url=base_url, timeout=60) as client,
    ):
        yield client


def _field(message: Message, dotted: str) -> Any:
    value: Any = message
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def http_request(route: Route, message: Message) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    """The path, query and JSON body that carry ``message`` on ``route`` (transcoding reversed)."""
    path = route.template
    for variable in route.variables:
        path = path.replace(variable.text, str(_field(message, variable.field)))
    in_path = {variable.field.split(".")[0] for variable in route.variables}
    fields = {
        field.json_name: value
        for field, value in (
            (message.DESCRIPTOR.fields_by_name[name], value)
            for name, value in json_format.MessageToDict(message, preserving_proto_field_name=True).items()
        )
        if field.name not in in_path or route.body == field.name
    }
    if route.body == "*":
        return path, {}, fields
    if route.body:
        return path, {}, json_format.MessageToDict(_field(message, route.body))
    return path, fields, None


def over_http(http: httpx.Client, route: Route, message: Message, token: str | None) -> httpx.Response:
    path, query, body = http_request(route, message)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return http.request(route.http_method, path, params=query, json=body, headers=headers)


def service_of(route: Route) -> Any:
    return SYNC if route.method.containing_service.full_name == SYNC.full_name else ROSTER


def route_id(route: Route) -> str:
    return f"{route.http_method} {route.template}"


@pytest.mark.parametrize("route", ROUTES, ids=[route_id(r) for r in ROUTES])
def test_every_refused_caller_gets_the_grpc_refusal_over_http(
    world: World, http: httpx.Client, route: Route
) -> None:
    service = service_of(route)
    row = row_of(service, route.method)
    refused = [caller for caller in Caller if caller in UNVERIFIABLE or caller not in row.allowed]
    assert Caller.OTHER_DISTRICT in refused and Caller.NO_TOKEN in refused
    for caller in refused:
        request = row.request(world, DISTRICT)
        token = world.tokens[caller]
        code, details = call(world, service, route.method, request, token)
        response = over_http(http, route, request, token)
        assert (caller, response.status_code) == (caller, HTTP_STATUS[code.value[0]])
        assert response.json()["code"] == code.value[0]
        assert response.json()["message"] == details


@pytest.mark.parametrize("route", ROUTES, ids=[route_id(r) for r in ROUTES])
def test_another_districts_caller_cannot_tell_a_real_district_from_a_ghost_over_http(
    world: World, http: httpx.Client, route: Route
) -> None:
    row = row_of(service_of(route), route.method)
    token = world.tokens[Caller.OTHER_DISTRICT]
    answers = {
        district: over_http(http, route, row.request(world, district), token)
        for district in (DISTRICT, GHOST)
    }

    assert answers[DISTRICT].status_code == answers[GHOST].status_code == 403
    assert answers[DISTRICT].json() == answers[GHOST].json()
    assert DISTRICT not in answers[DISTRICT].text
