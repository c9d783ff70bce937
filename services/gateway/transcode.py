"""Transcoding: an HTTP request to the RPC's request message, and its response to proto3 JSON.

Path variables, query parameters and the body (per the rule's ``body``) are merged into one proto3
JSON object and parsed by ``json_format``, which does every type conversion the mapping defines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2

from services.gateway.errors import GatewayError
from services.gateway.routes import Route

# Query parameters the gateway itself reads, never request fields.
RESERVED_QUERY = frozenset({"access_token"})


def message_class(descriptor: Descriptor) -> type[Message]:
    """The generated class of a message descriptor."""
    return message_factory.GetMessageClass(descriptor)


def _field(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    return descriptor.fields_by_name.get(name) or descriptor.fields_by_camelcase_name.get(name)


def _invalid(message: str, field: str = "") -> GatewayError:
    return GatewayError(code_pb2.INVALID_ARGUMENT, message, field=field)


def _resolve(descriptor: Descriptor, dotted: str) -> list[FieldDescriptor]:
    fields = []
    current: Descriptor | None = descriptor
    for part in dotted.split("."):
        field = _field(current, part) if current is not None else None
        if field is None:
            raise _invalid(f"unknown field {dotted!r}", dotted)
        fields.append(field)
        current = field.message_type
    return fields


def _scalar(field: FieldDescriptor, raw: str) -> Any:
    """A query string value as the JSON value the proto3 mapping expects for ``field``."""
    if field.type == FieldDescriptor.TYPE_BOOL:
        if raw.lower() not in ("true", "false"):
            raise _invalid(f"{field.name}: expected true or false, got {raw!r}", field.name)
        return raw.lower() == "true"
    if field.type == FieldDescriptor.TYPE_ENUM and raw.lstrip("-").isdigit():
        return int(raw)
    return raw


def _put(target: dict[str, Any], fields: list[FieldDescriptor], value: Any) -> None:
    for field in fields[:-1]:
        key = field.name if field.name in target else field.json_name
        nested = target.setdefault(key, {})
        if not isinstance(nested, dict):
            raise _invalid(f"{field.name} must be an object", field.name)
        target = nested
    last = fields[-1]
    target.pop(last.name, None)
    target[last.json_name] = value


def _query_value(fields: list[FieldDescriptor], values: list[str]) -> Any:
    field = fields[-1]
    well_known = field.message_type is None or field.message_type.full_name.startswith("google.protobuf.")
    if not well_known:
        raise _invalid(f"{field.name} cannot be given as a query parameter", field.name)
    converted = [_scalar(field, value) for value in values]
    if field.is_repeated:
        return converted
    if len(converted) > 1:
        raise _invalid(f"{field.name} given more than once", field.name)
    return converted[0]


def _body(route: Route, raw: bytes) -> dict[str, Any]:
    if not route.body:
        return {}
    if not raw.strip():
        parsed: Any = {}
    else:
        try:
            parsed = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise _invalid(f"the body is not JSON: {error}") from None
        except RecursionError:
            raise _invalid("the body is JSON nested too deeply to read") from None
    if route.body == "*":
        if not isinstance(parsed, dict):
            raise _invalid("the body must be a JSON object")
        return parsed
    fields = _resolve(route.method.input_type, route.body)
    merged: dict[str, Any] = {}
    _put(merged, fields, parsed)
    return merged


def _reject_boolean_enums(descriptor: Descriptor, value: Any) -> None:
    """json_format reads ``true``/``false`` as enum numbers 1/0; the JSON mapping does not."""
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        field = _field(descriptor, key) if isinstance(key, str) else None
        if field is None:
            continue
        items = item if isinstance(item, list) and field.is_repeated else [item]
        for element in items:
            if field.enum_type is not None and isinstance(element, bool):
                raise _invalid(f"{field.name}: expected an enum name or number, got {element}", field.name)
            if field.message_type is not None:
                _reject_boolean_enums(field.message_type, element)


def build_request(
    route: Route, path_fields: dict[str, str], query: Iterable[tuple[str, str]], raw_body: bytes
) -> Message:
    """The request message for ``route`` from the parts of an HTTP request."""
    descriptor = route.method.input_type
    merged = _body(route, raw_body)
    grouped: dict[str, list[str]] = {}
    for key, value in query:
        if key not in RESERVED_QUERY:
            grouped.setdefault(key, []).append(value)
    if grouped and route.body == "*":
        raise _invalid(f"unexpected query parameters: {', '.join(sorted(grouped))}")
    for key, values in grouped.items():
        fields = _resolve(descriptor, key)
        _put(merged, fields, _query_value(fields, values))
    for dotted, value in path_fields.items():
        _put(merged, _resolve(descriptor, dotted), value)
    _reject_boolean_enums(descriptor, merged)
    request = message_class(descriptor)()
    try:
        json_format.ParseDict(merged, request)
    except json_format.ParseError as error:
        raise _invalid(str(error)) from None
    return request


def to_json(response: Message) -> dict[str, Any]:
    """The proto3 JSON of a response."""
    return json_format.MessageToDict(response)
