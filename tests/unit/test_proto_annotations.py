"""Both APIs carry their field behaviors and resource annotations, so generated clients and docs see them."""

from __future__ import annotations

import pytest
from ew.roster.v1 import roster_pb2, roster_service_pb2
from ew.sync.v1 import sync_pb2, sync_service_pb2
from google.api import field_behavior_pb2, resource_pb2  # type: ignore[import-untyped,unused-ignore]
from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor

SERVICES = [
    roster_service_pb2.DESCRIPTOR.services_by_name["RosterService"],
    sync_service_pb2.DESCRIPTOR.services_by_name["SyncService"],
]
RESOURCES = [
    (sync_pb2.SchoolMapping, "districts/{district}/schoolMappings/{classlink_school}"),
    (roster_pb2.District, "districts/{district}"),
    (roster_pb2.School, "districts/{district}/schools/{school}"),
    (roster_pb2.Teacher, "districts/{district}/teachers/{teacher}"),
    (roster_pb2.ChangeSet, "districts/{district}/changeSets/{change_set}"),
    (sync_pb2.Connection, "districts/{district}/connection"),
    (sync_pb2.SyncRun, "districts/{district}/syncRuns/{sync_run}"),
]


def _behaviors(field: FieldDescriptor) -> list[int]:
    return list(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])


def _requests(service: ServiceDescriptor) -> list[Descriptor]:
    return [method.input_type for method in service.methods]


@pytest.mark.parametrize("request_type", [r for s in SERVICES for r in _requests(s)], ids=lambda d: d.name)
def test_every_name_and_parent_is_required_and_references_a_resource(request_type: Descriptor) -> None:
    for field_name in ("name", "parent"):
        field = request_type.fields_by_name.get(field_name)
        if field is None:
            continue
        assert field_behavior_pb2.REQUIRED in _behaviors(field), f"{request_type.name}.{field_name}"
        reference = field.GetOptions().Extensions[resource_pb2.resource_reference]
        assert reference.type or reference.child_type, f"{request_type.name}.{field_name}"


@pytest.mark.parametrize(("message", "pattern"), RESOURCES, ids=lambda v: getattr(v, "__name__", v))
def test_resources_declare_their_pattern_and_output_only_fields(message: type, pattern: str) -> None:
    descriptor: Descriptor = message.DESCRIPTOR  # type: ignore[attr-defined]
    resource = descriptor.GetOptions().Extensions[resource_pb2.resource]
    assert list(resource.pattern) == [pattern]
    assert field_behavior_pb2.IDENTIFIER in _behaviors(descriptor.fields_by_name["name"])
    create_time = descriptor.fields_by_name.get("create_time")
    if create_time is not None:
        assert field_behavior_pb2.OUTPUT_ONLY in _behaviors(create_time)
