"""Fixing a school a sync created by mistake: merge it into the right one, and the sync follows.

Real stack: the sandbox over HTTP, the roster and sync gRPC servers, the client library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import pytest
from ew.client.errors import RosterError
from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2

from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)


@dataclass(frozen=True)
class Mistake:
    """A ClassLink school the first sync created in EW beside the school it should have been mapped to."""

    classlink_id: str
    created_id: str
    intended_id: str


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with sync_stack(database_url("roster"), database_url("sync"), schools=3, teachers=24) as running:
        yield running


def synced(stack: SyncStack) -> sync_pb2.SyncSummary:
    last = list(stack.client.sync_rosters(stack.district_id))[-1]
    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
    return last.summary


def first_sync_with_a_near_duplicate(stack: SyncStack) -> Mistake:
    """EW has "<name> (EW)" for a ClassLink school before the first sync, which creates "<name>" anyway."""
    school = next(org for org in stack.sandbox.roster()["orgs"] if org["type"] == "school")
    intended = stack.roster.client.batch_create_schools(stack.district_id, [f"{school['name']} (EW)"])[0]
    assert synced(stack).schools_created == 3
    entry = next(
        e
        for e in stack.client.list_school_mappings(stack.district_id).school_mappings
        if e.classlink_school_id == school["sourcedId"]
    )
    assert entry.origin == sync_pb2.MAPPING_ORIGIN_CREATED
    return Mistake(school["sourcedId"], entry.ew_school_id, intended.school_id)


def members(stack: SyncStack, school_id: str) -> set[str]:
    return {t.teacher_id for t in stack.roster.client.list_teachers(stack.district_id, school_id=school_id)}


def active_school_ids(stack: SyncStack) -> set[str]:
    return {
        s.school_id
        for s in stack.roster.client.list_schools(stack.district_id)
        if s.state == roster_pb2.SCHOOL_STATE_ACTIVE
    }


def mapped_to(stack: SyncStack, classlink_id: str) -> sync_pb2.SchoolMapping:
    return next(
        e
        for e in stack.client.list_school_mappings(stack.district_id).school_mappings
        if e.classlink_school_id == classlink_id
    )


def assert_fixed(stack: SyncStack, mistake: Mistake, teachers: set[str]) -> None:
    """The created school is merged away, its teachers are in the intended one, and syncs keep it so."""
    merged = stack.roster.client.get_school(f"districts/{stack.district_id}/schools/{mistake.created_id}")
    assert merged.state == roster_pb2.SCHOOL_STATE_ARCHIVED
    assert merged.merged_into_school_id == mistake.intended_id
    assert members(stack, mistake.intended_id) == teachers and not members(stack, mistake.created_id)
    schools_before = active_school_ids(stack)
    assert mistake.created_id not in schools_before
    screen = stack.client.list_school_mappings(stack.district_id)
    shown = {s.ew_school_id for s in screen.ew_only_schools} | {
        s.ew_school_id for e in screen.school_mappings for s in e.suggestions
    }
    assert mistake.created_id not in shown | {e.ew_school_id for e in screen.school_mappings}
    for _ in range(2):
        summary = synced(stack)
        assert (summary.schools_created, summary.teachers_updated, summary.teachers_added) == (0, 0, 0)
        assert active_school_ids(stack) == schools_before
        assert mapped_to(stack, mistake.classlink_id).ew_school_id == mistake.intended_id
    assert members(stack, mistake.intended_id) == teachers


def test_mapping_a_created_school_elsewhere_offers_the_merge_and_does_it_when_asked(stack: SyncStack) -> None:
    mistake = first_sync_with_a_near_duplicate(stack)
    teachers = members(stack, mistake.created_id)
    assert teachers
    with pytest.raises(RosterError) as refused:
        stack.client.unmap_school(stack.district_id, mistake.classlink_id)
    assert (
        refused.value.code == grpc.StatusCode.FAILED_PRECONDITION and "MergeSchool" in refused.value.message
    )

    offered = stack.client.map_schools_response(
        stack.district_id, [(mistake.classlink_id, mistake.intended_id)]
    )
    assert [s.ew_school_id for s in offered.created_schools_left] == [mistake.created_id]
    assert not offered.merged_schools
    # Mapped but not merged: the created school still holds the teachers until the admin says so.
    assert members(stack, mistake.created_id) == teachers
    answer = stack.client.map_schools_response(
        stack.district_id, [(mistake.classlink_id, mistake.intended_id)], merge_created_schools=True
    )
    assert not answer.merged_schools  # the first call already moved the mapping: nothing created is left
    merged = stack.client.merge_school(stack.district_id, mistake.created_id, mistake.intended_id)
    assert merged.into_school.ew_school_id == mistake.intended_id
    assert list(merged.moved_classlink_school_ids) == []
    assert_fixed(stack, mistake, teachers)


def test_map_with_merge_created_schools_merges_in_one_call(stack: SyncStack) -> None:
    mistake = first_sync_with_a_near_duplicate(stack)
    teachers = members(stack, mistake.created_id)
    answer = stack.client.map_schools_response(
        stack.district_id, [(mistake.classlink_id, mistake.intended_id)], merge_created_schools=True
    )
    assert [s.ew_school_id for s in answer.merged_schools] == [mistake.created_id]
    assert not answer.created_schools_left
    assert_fixed(stack, mistake, teachers)


def test_merge_school_moves_the_mapping_and_refuses_what_cannot_merge(stack: SyncStack) -> None:
    mistake = first_sync_with_a_near_duplicate(stack)
    teachers = members(stack, mistake.created_id)
    other_mapped = next(
        e.ew_school_id
        for e in stack.client.list_school_mappings(stack.district_id).school_mappings
        if e.classlink_school_id != mistake.classlink_id
    )
    for school, into, code in [
        (mistake.created_id, mistake.created_id, grpc.StatusCode.INVALID_ARGUMENT),
        (mistake.created_id, "no-such-school", grpc.StatusCode.NOT_FOUND),
        (mistake.created_id, other_mapped, grpc.StatusCode.FAILED_PRECONDITION),
    ]:
        with pytest.raises(RosterError) as refused:
            stack.client.merge_school(stack.district_id, school, into)
        assert refused.value.code == code, refused.value.message
    assert members(stack, mistake.created_id) == teachers

    merged = stack.client.merge_school(stack.district_id, mistake.created_id, mistake.intended_id)
    assert list(merged.moved_classlink_school_ids) == [mistake.classlink_id]
    assert mapped_to(stack, mistake.classlink_id).origin == sync_pb2.MAPPING_ORIGIN_MANUAL
    assert_fixed(stack, mistake, teachers)
    with pytest.raises(RosterError) as again:
        stack.client.merge_school(stack.district_id, mistake.created_id, mistake.intended_id)
    assert again.value.code == grpc.StatusCode.FAILED_PRECONDITION and "archived" in again.value.message


def test_a_merge_made_in_the_roster_alone_is_followed_by_the_mapping(stack: SyncStack) -> None:
    # What the sync sees when it stopped between the roster merge and its own mapping update, or
    # when someone merged the schools through RosterService directly.
    mistake = first_sync_with_a_near_duplicate(stack)
    teachers = members(stack, mistake.created_id)
    roster = stack.roster.client
    change_set = roster.create_change_set(stack.district_id)
    merge = roster_pb2.MergeSchoolChange(school_id=mistake.created_id, into_school_id=mistake.intended_id)
    roster.stage_changes(change_set.name, 1, [roster_pb2.Change(merge_school=merge)])
    roster.commit_change_set(change_set.name)
    assert_fixed(stack, mistake, teachers)
