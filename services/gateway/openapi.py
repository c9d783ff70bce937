"""The OpenAPI 3.1 document, generated from the routes, their descriptors and the proto comments.

Message schemas follow the proto3 JSON mapping (lowerCamelCase names, enums by name, 64-bit
integers as decimal strings, Timestamps as RFC 3339 strings); every non-2xx answer is a
``google.rpc.Status``.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from services.gateway.comments import comment_of
from services.gateway.routes import SEGMENT, Route

_REF = "#/components/schemas/"
_INT64 = {"type": "string", "pattern": "^-?[0-9]+$", "format": "int64"}
_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_UINT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_FIXED64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int32", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int32", "minimum": 0},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
}
STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "google.rpc.Status: the gRPC code, a message for people, and typed details.",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "integer", "description": "The google.rpc.Code."},
        "message": {"type": "string"},
        "details": {
            "type": "array",
            "items": {"type": "object", "required": ["@type"], "properties": {"@type": {"type": "string"}}},
        },
    },
}


class _Schemas:
    """Component schemas of every message the routes reach, collected as they are referenced."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {"google.rpc.Status": STATUS_SCHEMA}

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            schema: dict[str, Any] = {"type": "object", "additionalProperties": self._single(value)}
        elif field.is_repeated:
            schema = {"type": "array", "items": self._single(field)}
        else:
            schema = self._single(field)
        description = comment_of(field)
        return schema | {"description": description} if description else schema

    def _single(self, field: FieldDescriptor) -> dict[str, Any]:
        """A field's value; proto3 JSON reads ``null`` as the default value of any field."""
        if field.enum_type is not None:
            return {
                "type": ["string", "null"],
                "enum": [value.name for value in field.enum_type.values] + [None],
            }
        if field.message_type is not None:
            return {"anyOf": [self.ref(field.message_type), {"type": "null"}]}
        scalar = dict(_SCALARS[field.type])
        return scalar | {"type": [scalar["type"], "null"]}

    def ref(self, message: Descriptor) -> dict[str, Any]:
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        if message.full_name not in self.components:
            self.components[message.full_name] = {}
            self.components[message.full_name] = self.object(message)
        return {"$ref": _REF + message.full_name}

    def object(self, message: Descriptor, *, without: frozenset[str] = frozenset()) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {f.json_name: self.field(f) for f in message.fields if f.name not in without},
            "additionalProperties": False,
        }
        exclusive = [
            {"required": [first.json_name, second.json_name]}
            for oneof in message.oneofs
            for index, first in enumerate(oneof.fields)
            for second in oneof.fields[index + 1 :]
            if first.name not in without and second.name not in without
        ]
        if exclusive:
            schema["not"] = {"anyOf": exclusive}
        description = comment_of(message)
        return schema | {"description": description} if description else schema


def _openapi_path(route: Route) -> tuple[str, list[dict[str, Any]]]:
    """The OpenAPI path of a route (one parameter per resource id) and those parameters."""
    path = route.template
    parameters = []
    for variable in route.variables:
        segments = []
        for index, segment in enumerate(variable.pattern.split("/")):
            if segment != "*":
                segments.append(segment)
                continue
            collection = variable.pattern.split("/")[index - 1] if index else variable.field
            name = collection[:-1] if collection.endswith("s") else collection
            segments.append("{" + name + "}")
            parameters.append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": f"^{SEGMENT}$"},
                }
            )
        path = path.replace(variable.text, "/".join(segments), 1)
    return path, parameters


def _path_fields(route: Route) -> frozenset[str]:
    return frozenset(variable.field.split(".")[0] for variable in route.variables)


def _query_parameters(route: Route, schemas: _Schemas) -> list[dict[str, Any]]:
    if route.body == "*":
        return []
    taken = _path_fields(route) | {route.body.split(".")[0]}
    parameters = []
    for field in route.method.input_type.fields:
        if field.name in taken:
            continue
        if field.message_type is not None and field.message_type.full_name not in _WELL_KNOWN:
            continue
        parameters.append(
            {"name": field.json_name, "in": "query", "required": False, "schema": schemas.field(field)}
        )
    return parameters


def _request_body(route: Route, schemas: _Schemas) -> dict[str, Any] | None:
    if not route.body:
        return None
    message = route.method.input_type
    if route.body == "*":
        schema = schemas.object(message, without=_path_fields(route))
    else:
        schema = schemas.field(message.fields_by_name[route.body])
    # An empty body reads as {} (every field at its default), so a body is never required.
    return {"required": False, "content": {"application/json": {"schema": schema}}}


def _sse_event_schema(data: dict[str, Any]) -> dict[str, Any]:
    """One Server-Sent Event: a response (``progress``), ``end``, or a Status (``error``)."""
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"enum": ["progress", "end", "error"]},
            "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The run event's sequence."},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"anyOf": [data, {"$ref": _REF + "google.rpc.Status"}, {"const": {}}]},
            },
        },
    }


def _operation(route: Route, schemas: _Schemas) -> dict[str, Any]:
    output = route.method.output_type
    if route.server_streaming:
        success = {
            "description": f"Server-Sent Events: each `data` is a {output.name} in proto3 JSON.",
            "content": {"text/event-stream": {"schema": _sse_event_schema(schemas.ref(output))}},
        }
    else:
        success = {
            "description": output.name,
            "content": {"application/json": {"schema": schemas.ref(output)}},
        }
    path, path_parameters = _openapi_path(route)
    operation: dict[str, Any] = {
        "operationId": f"{route.method.containing_service.name}_{route.method.name}",
        "tags": [route.method.containing_service.name],
        "summary": route.method.name,
        "description": comment_of(route.method),
        "parameters": path_parameters + _query_parameters(route, schemas),
        "responses": {
            "200": success,
            "default": {
                "description": "An error: google.rpc.Status with the HTTP status AIP-193 gives its code.",
                "content": {"application/json": {"schema": {"$ref": _REF + "google.rpc.Status"}}},
            },
        },
    }
    body = _request_body(route, schemas)
    if body is not None:
        operation["requestBody"] = body
    return operation


def openapi_path(route: Route) -> str:
    """The path a route has in the OpenAPI document."""
    return _openapi_path(route)[0]


def openapi_document(routes: list[Route]) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document of ``routes``."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(openapi_path(route), {})[route.http_method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "EW roster sync API",
            "version": "v1",
            "description": "HTTP/JSON over SyncService and the RosterService reads, from the protos' "
            "google.api.http annotations. Send the EW product's bearer token in Authorization.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearer": []}],
    }
