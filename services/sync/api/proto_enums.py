"""The one conversion between the sync vocabulary and ``ew.sync.v1`` enum numbers, each way.

A proto value is named ``<PREFIX>_<member value>``; the zero value ``*_UNSPECIFIED`` means "not
set" and has no domain member.
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar

from ew.sync.v1 import sync_pb2
from google.protobuf.descriptor import EnumDescriptor

from services.sync import vocabulary as v

E = TypeVar("E", bound=enum.StrEnum)

_ENUMS = sync_pb2.DESCRIPTOR.enum_types_by_name

# Every domain enum that the API carries, with its proto enum and that enum's value prefix.
PROTO_ENUMS: dict[type[enum.StrEnum], tuple[EnumDescriptor, str]] = {
    v.AuthMethod: (_ENUMS["AuthMethod"], "AUTH_METHOD_"),
    v.OneRosterVersion: (_ENUMS["OneRosterVersion"], "ONE_ROSTER_VERSION_"),
    v.ConnectMethod: (_ENUMS["ConnectMethod"], "CONNECT_METHOD_"),
    v.MappingOrigin: (_ENUMS["MappingOrigin"], "MAPPING_ORIGIN_"),
    v.PlanItemKind: (_ENUMS["PlanItemKind"], "PLAN_ITEM_KIND_"),
    v.SkipReason: (_ENUMS["SkipReason"], "SKIP_REASON_"),
    v.SyncTrigger: (_ENUMS["SyncTrigger"], "SYNC_TRIGGER_"),
    v.SyncRunState: (_ENUMS["SyncRunState"], "SYNC_RUN_STATE_"),
    v.SyncPhase: (_ENUMS["SyncPhase"], "SYNC_PHASE_"),
    v.AutoSyncCadence: (_ENUMS["AutoSyncCadence"], "AUTO_SYNC_CADENCE_"),
    v.ChangeSubject: (_ENUMS["ChangeSubject"], "CHANGE_SUBJECT_"),
    v.ChangeAction: (_ENUMS["ChangeAction"], "CHANGE_ACTION_"),
    v.AuditAction: (_ENUMS["AuditAction"], "AUDIT_ACTION_"),
}

# Proto values that say a domain value is absent, so they have no member: a ClassLink school never
# mapped has no stored mapping (``Entry.origin`` None) and reads as MAPPING_ORIGIN_NONE.
API_ONLY_VALUES = frozenset({"MAPPING_ORIGIN_NONE"})


def to_proto(member: enum.StrEnum) -> Any:
    """The proto number of a domain member (``Any``: each proto enum types its numbers apart)."""
    descriptor, prefix = PROTO_ENUMS[type(member)]
    return descriptor.values_by_name[prefix + member.value].number


def from_proto(cls: type[E], number: int) -> E:
    """The domain member of a proto number; ValueError for ``*_UNSPECIFIED`` or an unknown number."""
    descriptor, prefix = PROTO_ENUMS[cls]
    value = descriptor.values_by_number.get(number)
    if value is None or value.name == f"{prefix}UNSPECIFIED" or value.name in API_ONLY_VALUES:
        raise ValueError(f"{number} names no {cls.__name__}")
    return cls(value.name.removeprefix(prefix))
