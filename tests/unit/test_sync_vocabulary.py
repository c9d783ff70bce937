"""One vocabulary: every sync enum is defined once and survives storage and the API both ways."""

from __future__ import annotations

import enum
import importlib
import pkgutil
from collections.abc import Iterable, Iterator
from typing import cast

import pytest
from sqlalchemy import Engine, Enum, literal, select

import services.sync
from services.sync import vocabulary
from services.sync.api.proto_enums import API_ONLY_VALUES, PROTO_ENUMS, from_proto, to_proto
from services.sync.store.models import Base

VOCABULARY = [
    value
    for value in vars(vocabulary).values()
    if isinstance(value, type) and issubclass(value, enum.StrEnum) and value.__module__ == vocabulary.__name__
]
STORED: set[type[enum.StrEnum]] = {
    cast(type[enum.StrEnum], column.type.enum_class)
    for table in Base.metadata.tables.values()
    for column in table.columns
    if isinstance(column.type, Enum)
}


def _by_name(classes: Iterable[type[enum.StrEnum]]) -> list[type[enum.StrEnum]]:
    return sorted(classes, key=lambda cls: cls.__name__)


def _sync_modules() -> Iterator[str]:
    for module in pkgutil.walk_packages(services.sync.__path__, prefix="services.sync."):
        if ".migrations." not in module.name and not module.name.endswith(("__main__", ".worker")):
            yield module.name


def test_no_module_defines_a_second_copy_of_a_vocabulary_enum() -> None:
    names = {cls.__name__ for cls in VOCABULARY}
    copies = [
        f"{module}.{name}"
        for module in _sync_modules()
        for name, value in vars(importlib.import_module(module)).items()
        if isinstance(value, type)
        and issubclass(value, enum.Enum)
        and name in names
        and value.__module__ == module
        and module != vocabulary.__name__
    ]
    assert copies == []


def test_every_vocabulary_enum_is_stored_or_carried_by_the_api() -> None:
    assert {cls for cls in VOCABULARY if cls not in STORED and cls not in PROTO_ENUMS} == set()
    assert STORED <= set(VOCABULARY)


@pytest.mark.parametrize("cls", _by_name(PROTO_ENUMS))
def test_every_member_goes_to_the_proto_and_back_and_every_proto_value_has_a_member(
    cls: type[enum.StrEnum],
) -> None:
    assert [from_proto(cls, to_proto(member)) for member in cls] == list(cls)
    descriptor, prefix = PROTO_ENUMS[cls]
    named = {
        value.name.removeprefix(prefix)
        for value in descriptor.values
        if value.number != 0 and value.name not in API_ONLY_VALUES
    }
    assert named == {member.value for member in cls}
    with pytest.raises(ValueError):
        from_proto(cls, 0)
    with pytest.raises(ValueError):
        from_proto(cls, max(value.number for value in descriptor.values) + 1)


@pytest.mark.parametrize("cls", _by_name(STORED))
def test_every_member_is_stored_and_read_back_as_itself(sync_engine: Engine, cls: type[enum.StrEnum]) -> None:
    column_type = next(
        column.type
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, Enum) and column.type.enum_class is cls
    )
    with sync_engine.connect() as connection:
        read = [connection.execute(select(literal(member, column_type))).scalar_one() for member in cls]
    assert read == list(cls)
