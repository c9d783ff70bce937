"""The proto comments of the APIs, for the OpenAPI document's descriptions.

Generated Python stubs drop source info, so ``make proto`` also writes a descriptor set with it
(``api.binpb`` beside the sync stubs); this module indexes its leading comments by full name.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path

from ew.sync.v1 import sync_service_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor

DESCRIPTOR_SET = Path(sync_service_pb2.__file__).with_name("api.binpb")
# Field numbers inside FileDescriptorProto / DescriptorProto / ServiceDescriptorProto.
_MESSAGE, _SERVICE, _FIELD, _NESTED, _METHOD = 4, 6, 2, 3, 2


def _messages(
    prefix: str, path: tuple[int, ...], messages: Sequence[descriptor_pb2.DescriptorProto]
) -> Iterator[tuple[tuple[int, ...], str]]:
    for index, message in enumerate(messages):
        name, where = f"{prefix}.{message.name}", (*path, index)
        yield where, name
        for number, field in enumerate(message.field):
            yield (*where, _FIELD, number), f"{name}.{field.name}"
        yield from _messages(name, (*where, _NESTED), message.nested_type)


def _names(file: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[tuple[int, ...], str]]:
    yield from _messages(file.package, (_MESSAGE,), file.message_type)
    for index, service in enumerate(file.service):
        name = f"{file.package}.{service.name}"
        yield (_SERVICE, index), name
        for number, method in enumerate(service.method):
            yield (_SERVICE, index, _METHOD, number), f"{name}.{method.name}"


@cache
def _comments() -> dict[str, str]:
    if not DESCRIPTOR_SET.exists():
        return {}
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    comments = {}
    for file in files.file:
        leading = {tuple(loc.path): loc.leading_comments for loc in file.source_code_info.location}
        for path, name in _names(file):
            text = leading.get(path, "").strip()
            if text:
                comments[name] = " ".join(line.strip() for line in text.splitlines())
    return comments


def comment_of(descriptor: Descriptor | FieldDescriptor | MethodDescriptor) -> str:
    """The leading comment of a message, field or method, on one line ("" when it has none)."""
    return _comments().get(descriptor.full_name, "")
