"""An administrator's whole journey against real processes: RosterService ends up exactly as expected.

Connect, map, preview, sync, and the district changing in ClassLink between syncs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2

from services.oneroster_sandbox.truth import (
    TeacherRow,
    active_schools,
    ew_teachers,
    expected_active,
    syncable_teachers,
)
from services.sync.planning.emails import email_key
from tests.support.deployment import Deployment

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ABBREVIATIONS = (("Elementary", "Elem"), ("Middle School", "MS"), ("High School", "HS"))


def look_alike(name: str) -> str:
    for long, short in ABBREVIATIONS:
        if long in name:
            return name.replace(long, short, 1)
    return f"{name} Campus"


def all_mapping(d: Deployment) -> dict[str, sync_pb2.SchoolMapping]:
    response = d.sync.list_school_mappings(d.district_id, page_size=500)
    assert not response.next_page_token
    return {entry.classlink_school_id: entry for entry in response.school_mappings}


def preview_items(d: Deployment) -> tuple[sync_pb2.SyncSummary, list[sync_pb2.PlanItem]]:
    items: list[sync_pb2.PlanItem] = []
    token = ""
    while True:
        page = d.sync.preview_sync(d.district_id, page_size=50, page_token=token)
        summary = page.summary
        items += page.items
        token = page.next_page_token
        if not token:
            return summary, items


def run_items(d: Deployment, run: str) -> list[sync_pb2.PlanItem]:
    items: list[sync_pb2.PlanItem] = []
    token = ""
    while True:
        page = d.sync.list_run_items(run, page_size=50, page_token=token)
        items += page.items
        token = page.next_page_token
        if not token:
            return items


def sync(d: Deployment) -> tuple[str, list[sync_pb2.SyncEvent]]:
    events = d.sync.sync_rosters(d.district_id)
    seen = list(events)
    assert events.run is not None
    assert seen[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, seen[-1].message
    percents = [e.percent for e in seen]
    assert percents == sorted(percents) and percents[-1] == 100
    return events.run.name, seen


def assert_roster(d: Deployment, truth: dict[str, Any], archived: dict[str, TeacherRow]) -> None:
    """EW holds exactly the syncable teachers (active) plus ``archived`` (by email key)."""
    mapping = {cl: entry.ew_school_id for cl, entry in all_mapping(d).items() if entry.ew_school_id}
    expected = expected_active(truth, mapping) | archived
    actual = ew_teachers(d.roster.list_teachers(d.district_id))
    assert actual.keys() == expected.keys()
    assert {k: v for k, v in actual.items() if v != expected[k]} == {}


def test_connect_map_preview_sync_and_follow_classlink_changes(deploy: Callable[..., Deployment]) -> None:
    d = deploy(seed=11, schools=8, teachers=120)
    truth = d.sandbox.roster()
    schools = sorted(active_schools(truth), key=lambda o: o["name"])
    identical, abbreviated, manual = schools[0], schools[1], schools[2]
    ew = d.roster.batch_create_schools(
        d.district_id,
        [identical["name"], look_alike(abbreviated["name"]), "Annex Building", "District Office"],
    )
    ew_identical, ew_abbreviated, ew_annex, ew_office = (s.school_id for s in ew)
    rows = syncable_teachers(truth)
    known = rows[0]
    d.roster.batch_upsert_teachers(
        d.district_id,
        [
            roster_pb2.TeacherInput(given_name="Old", family_name="Name", email=known["email"].upper()),
            roster_pb2.TeacherInput(given_name="Hand", family_name="Made", email="hand.made@ew.example.org"),
        ],
    )
    hand_made = next(
        t for t in d.roster.list_teachers(d.district_id) if t.email == "hand.made@ew.example.org"
    )

    d.connect()

    mapping = all_mapping(d)
    assert mapping[identical["sourcedId"]].origin == sync_pb2.MAPPING_ORIGIN_AUTO
    assert mapping[identical["sourcedId"]].ew_school_id == ew_identical
    suggestions = mapping[abbreviated["sourcedId"]].suggestions
    assert suggestions and suggestions[0].ew_school_id == ew_abbreviated
    d.sync.map_schools(
        d.district_id, [(abbreviated["sourcedId"], ew_abbreviated), (manual["sourcedId"], ew_annex)]
    )
    unmapped = d.sync.unmap_school(d.district_id, manual["sourcedId"])
    assert unmapped.ew_school_id == "" and unmapped.origin == sync_pb2.MAPPING_ORIGIN_NONE
    mapping = all_mapping(d)
    assert mapping[abbreviated["sourcedId"]].origin == sync_pb2.MAPPING_ORIGIN_MANUAL

    summary, previewed = preview_items(d)
    assert summary.teachers_archived == 1 and summary.teachers_updated == 1

    run, events = sync(d)

    assert events[-1].summary == summary
    assert run_items(d, run) == previewed
    assert {e.phase for e in events} >= {
        sync_pb2.SYNC_PHASE_READING_TEACHERS,
        sync_pb2.SYNC_PHASE_CREATING_SCHOOLS,
        sync_pb2.SYNC_PHASE_SYNCING_TEACHERS,
        sync_pb2.SYNC_PHASE_ARCHIVING,
        sync_pb2.SYNC_PHASE_COMMITTING,
    }
    mapping = all_mapping(d)
    assert mapping[manual["sourcedId"]].origin == sync_pb2.MAPPING_ORIGIN_CREATED
    assert mapping[manual["sourcedId"]].ew_school_id not in (ew_annex, ew_office)
    ew_names = {s.display_name for s in d.roster.list_schools(d.district_id)}
    assert ew_names == {look_alike(abbreviated["name"]), "Annex Building", "District Office"} | {
        s["name"].strip() for s in schools if s is not abbreviated
    }
    archived = {
        email_key(hand_made.email): TeacherRow("Hand", "Made", hand_made.email, frozenset(), False),
    }
    assert_roster(d, truth, archived)
    matched = next(t for t in d.roster.list_teachers(d.district_id, email=known["email"]))
    assert (matched.given_name, matched.email) == (known["givenName"], known["email"])

    # ClassLink changes: a school is renamed, one teacher leaves, one is marked tobedeleted.
    leaver, deleted = rows[1], rows[2]
    before = ew_teachers(d.roster.list_teachers(d.district_id))
    d.sandbox.mutate(
        [
            {"op": "update_school", "sourcedId": identical["sourcedId"], "set": {"name": "Renamed Academy"}},
            {"op": "remove_user", "sourcedId": leaver["sourcedId"]},
            {"op": "update_user", "sourcedId": deleted["sourcedId"], "set": {"status": "tobedeleted"}},
        ]
    )
    _, events = sync(d)
    second = events[-1].summary
    assert (second.schools_created, second.teachers_archived, second.teachers_added) == (0, 2, 0)
    assert all_mapping(d)[identical["sourcedId"]].ew_school_id == ew_identical
    for row in (leaver, deleted):
        key = email_key(row["email"])
        archived[key] = replace(before[key], active=False)
    assert_roster(d, d.sandbox.roster(), archived)

    # The leaver comes back with the same ClassLink id and email but a new family name:
    # reactivated and renamed in the same sync, not duplicated.
    d.sandbox.mutate(
        [
            {
                "op": "add_user",
                "sourcedId": leaver["sourcedId"],
                "givenName": leaver["givenName"],
                "familyName": leaver["familyName"] + "-Reyes",
                "email": leaver["email"],
                "orgs": leaver["orgs"],
                "role": "teacher",
            }
        ]
    )
    _, events = sync(d)
    assert events[-1].summary.teachers_reactivated == 1
    del archived[email_key(leaver["email"])]
    assert_roster(d, d.sandbox.roster(), archived)

    _, events = sync(d)
    last = events[-1].summary
    assert (
        last.schools_created,
        last.teachers_added,
        last.teachers_updated,
        last.teachers_archived,
        last.teachers_reactivated,
    ) == (0, 0, 0, 0, 0)
