"""Routes from the ``google.api.http`` annotations of the services the gateway fronts.

Each annotated method becomes one :class:`Route`: its HTTP method, its path template compiled to a
regular expression whose groups fill request fields, and its ``body`` option. Custom methods
(``:verb``) are matched before plain ones, so ``GET …/syncRuns/r1:watch`` never reads as a run id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ew.roster.v1 import roster_service_pb2
from ew.sync.v1 import sync_service_pb2
from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

SERVICES: tuple[ServiceDescriptor, ...] = (
    sync_service_pb2.DESCRIPTOR.services_by_name["SyncService"],
    roster_service_pb2.DESCRIPTOR.services_by_name["RosterService"],
)
_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_.]*)(?:=([^}]*))?\}")
# One path segment of a resource name: never a slash, never the colon that starts a custom verb.
SEGMENT = "[^/:]+"


@dataclass(frozen=True)
class PathVariable:
    """A ``{field=pattern}`` of a template: the request field and the segments it spans."""

    field: str
    pattern: str
    text: str


@dataclass(frozen=True)
class Route:
    """One HTTP binding of an RPC."""

    method: MethodDescriptor
    http_method: str
    template: str
    body: str
    regex: re.Pattern[str]
    variables: tuple[PathVariable, ...]

    @property
    def rpc_path(self) -> str:
        """The gRPC method path, ``/package.Service/Method``."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def server_streaming(self) -> bool:
        """Whether the RPC streams its responses (served as Server-Sent Events)."""
        return bool(self.method.server_streaming)

    @property
    def has_verb(self) -> bool:
        """Whether the template ends in a custom ``:verb``."""
        return ":" in self.template.rsplit("}", 1)[-1].rsplit("/", 1)[-1]

    def match(self, path: str) -> dict[str, str] | None:
        """The request fields the path fills (dotted field path → value), or None."""
        found = self.regex.fullmatch(path)
        if found is None:
            return None
        return {variable.field: found.group(f"v{index}") for index, variable in enumerate(self.variables)}


def _segments_regex(pattern: str) -> str:
    parts = []
    for segment in pattern.split("/"):
        if segment == "**":
            parts.append(".+")
        elif segment == "*":
            parts.append(SEGMENT)
        else:
            parts.append(re.escape(segment))
    return "/".join(parts)


def compile_template(template: str) -> tuple[re.Pattern[str], tuple[PathVariable, ...]]:
    """The regular expression of an http rule path template and its variables, in order."""
    variables: list[PathVariable] = []
    regex = []
    position = 0
    for found in _VARIABLE.finditer(template):
        regex.append(re.escape(template[position : found.start()]))
        pattern = found.group(2) or "*"
        regex.append(f"(?P<v{len(variables)}>{_segments_regex(pattern)})")
        variables.append(PathVariable(found.group(1), pattern, found.group(0)))
        position = found.end()
    regex.append(re.escape(template[position:]))
    return re.compile("".join(regex)), tuple(variables)


def _bindings(rule: http_pb2.HttpRule) -> Iterable[tuple[str, str, str]]:
    kind = rule.WhichOneof("pattern")
    if kind == "custom":
        yield rule.custom.kind, rule.custom.path, rule.body
    elif kind is not None:
        yield kind.upper(), getattr(rule, kind), rule.body
    for extra in rule.additional_bindings:
        yield from _bindings(extra)


def build_routes(services: Iterable[ServiceDescriptor] = SERVICES) -> list[Route]:
    """Every annotated method of ``services`` as routes, custom verbs first."""
    routes = []
    for service in services:
        for method in service.methods:
            options = method.GetOptions()
            if not options.HasExtension(annotations_pb2.http):
                continue
            for http_method, template, body in _bindings(options.Extensions[annotations_pb2.http]):
                regex, variables = compile_template(template)
                routes.append(Route(method, http_method, template, body, regex, variables))
    return sorted(routes, key=lambda route: not route.has_verb)
