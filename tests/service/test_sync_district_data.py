"""The sync's rules for real district data, through the real stack.

The OneRoster sandbox serves each shape over HTTP (generator flags, roster mutations, faults), the
roster and sync services run as real gRPC servers, and each test reads back EW's roster, the run's
summary and its items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from ew.client.errors import RosterError
from ew.client.sync import SyncClient
from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2

from services.oneroster_sandbox.truth import syncable_teachers
from services.sync.planning.emails import email_key
from services.sync.planning.person_names import name_key
from services.sync.store import links
from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(180)

NAMES = {"givenName": "Robin", "familyName": "Okafor"}


@pytest.fixture
def stack_factory(database_url: Callable[[str], str]) -> Iterator[Callable[..., SyncStack]]:
    """Starts one stack with the given sandbox flags (defaults: 4 schools, 40 teachers)."""
    opened: list[Any] = []

    def start(**flags: Any) -> SyncStack:
        context = sync_stack(
            database_url("roster"), database_url("sync"), **({"schools": 4, "teachers": 40} | flags)
        )
        opened.append(context)
        return context.__enter__()

    yield start
    for context in reversed(opened):
        context.__exit__(None, None, None)


@pytest.fixture
def stack(stack_factory: Callable[..., SyncStack]) -> SyncStack:
    return stack_factory()


def sync(stack: SyncStack, approve_run: str = "") -> tuple[str, sync_pb2.SyncEvent]:
    events = stack.client.sync_rosters(stack.district_id, approve_run=approve_run)
    last = list(events)[-1]
    assert events.run is not None
    return events.run.name, last


def synced(stack: SyncStack) -> sync_pb2.SyncEvent:
    _, last = sync(stack)
    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
    return last


def teachers(stack: SyncStack) -> dict[str, roster_pb2.Teacher]:
    """EW's teachers of the district by email key."""
    return {email_key(t.email): t for t in stack.roster.client.list_teachers(stack.district_id)}


def school_names(stack: SyncStack, teacher: roster_pb2.Teacher) -> set[str]:
    names = {s.school_id: s.display_name for s in stack.roster.client.list_schools(stack.district_id)}
    return {names[school_id] for school_id in teacher.school_ids}


def truth_teachers(stack: SyncStack) -> list[dict[str, Any]]:
    return [u for u in stack.sandbox.roster()["users"] if u["role"] == "teacher"]


def truth_schools(stack: SyncStack) -> dict[str, str]:
    return {o["sourcedId"]: o["name"] for o in stack.sandbox.roster()["orgs"] if o["type"] == "school"}


def wire_user(row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A sandbox ground-truth user as OneRoster 1.1 sends it, with ``changes`` applied."""
    fields = ("sourcedId", "status", "enabledUser", "givenName", "familyName", "email", "role")
    orgs = [{"sourcedId": org, "type": "org"} for org in row["orgs"]]
    return {field: row[field] for field in fields} | {"orgs": orgs} | changes


def first_teacher(stack: SyncStack) -> dict[str, Any]:
    """The first row of the teachers' first page: the row a ``bad_row`` fault replaces."""
    row = truth_teachers(stack)[0]
    assert row["status"] == "active" and row["enabledUser"] and row["email"], (
        "the seed's first teacher changed"
    )
    return row


def present(stack: SyncStack, start: int = 0) -> list[dict[str, Any]]:
    """Active, enabled teacher rows with an email, from position ``start`` of the page order."""
    return [
        u
        for u in truth_teachers(stack)[start:]
        if u["status"] == "active" and u["enabledUser"] and u["email"]
    ]


def items(stack: SyncStack, run: str, kind: sync_pb2.PlanItemKind.ValueType) -> list[sync_pb2.PlanItem]:
    return list(stack.client.list_run_items(run, kind=kind, page_size=500).items)


def skip_count(event: sync_pb2.SyncEvent, reason: sync_pb2.SkipReason.ValueType) -> int:
    return sum(count.count for count in event.summary.skipped if count.reason == reason)


def active_keys(stack: SyncStack) -> set[str]:
    return {key for key, t in teachers(stack).items() if t.state == roster_pb2.TEACHER_STATE_ACTIVE}


# -- Rule 1: one person, several rows ------------------------------------------------------------


def test_one_row_per_teacher_and_school_becomes_one_teacher_with_all_their_schools(
    stack_factory: Callable[..., SyncStack],
) -> None:
    stack = stack_factory(split_rows=True, seed=11)
    rows = [u for u in truth_teachers(stack) if u["status"] == "active" and u["enabledUser"] and u["email"]]
    by_person: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_person.setdefault(email_key(row["email"]), []).append(row)
    people = {
        key: {name_key(r["givenName"], r["familyName"]) for r in person} for key, person in by_person.items()
    }
    split = [person for key, person in by_person.items() if len(person) > 1 and len(people[key]) == 1]
    conflicts = sum(len(person) for key, person in by_person.items() if len(people[key]) > 1)
    assert split, "the sandbox served no teacher with several rows"

    last = synced(stack)

    assert skip_count(last, sync_pb2.SKIP_REASON_DUPLICATE_EMAIL) == conflicts
    ew = teachers(stack)
    schools = truth_schools(stack)
    for person in split:
        teacher = ew[email_key(person[0]["email"])]
        assert school_names(stack, teacher) == {schools[org] for row in person for org in row["orgs"]}
    with stack.app.sessions() as session:
        linked = links.list_links(session, stack.district_id)
    for person in split:
        teacher_id = ew[email_key(person[0]["email"])].teacher_id
        assert {linked.get(row["sourcedId"]) for row in person} == {teacher_id}
    assert synced(stack).summary.teachers_unchanged == len(ew)

    # One of a person's rows leaves ClassLink: the teacher stays, without that school.
    person = split[0]
    stack.sandbox.mutate([{"op": "remove_user", "sourcedId": person[-1]["sourcedId"]}])
    last = synced(stack)
    teacher = teachers(stack)[email_key(person[0]["email"])]
    assert teacher.state == roster_pb2.TEACHER_STATE_ACTIVE and last.summary.teachers_archived == 0
    assert school_names(stack, teacher) == {schools[org] for row in person[:-1] for org in row["orgs"]}


def test_a_staff_account_with_a_teachers_email_merges_under_the_same_name_and_conflicts_under_another(
    stack: SyncStack,
) -> None:
    synced(stack)
    same, other = present(stack)[:2]
    school = same["orgs"][0]
    twin = {"givenName": same["givenName"].upper(), "familyName": same["familyName"]}
    stack.sandbox.mutate(
        [
            {"op": "add_user", "role": "administrator", "email": same["email"].upper(), "orgs": [school]}
            | twin,
            {"op": "add_user", "role": "administrator", "email": other["email"], "orgs": [school]} | NAMES,
        ]
    )
    before = teachers(stack)

    name, last = sync(stack)

    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
    assert teachers(stack) == before
    skips = {skip.classlink_id: skip for skip in items(stack, name, sync_pb2.PLAN_ITEM_KIND_SKIP)}
    assert same["sourcedId"] not in skips
    skip = skips[other["sourcedId"]]
    assert skip.skip_reason == sync_pb2.SKIP_REASON_DUPLICATE_EMAIL and "(administrator)" in skip.reason


# -- Rule 2: memberships the sync does not own ---------------------------------------------------


def test_a_membership_in_an_ew_only_school_survives_every_sync_and_previews_as_kept(stack: SyncStack) -> None:
    synced(stack)
    (office,) = stack.roster.client.batch_create_schools(stack.district_id, ["District Office"])
    row = present(stack)[0]
    teacher = teachers(stack)[email_key(row["email"])]
    stack.roster.client.batch_upsert_teachers(
        stack.district_id,
        [
            roster_pb2.TeacherInput(
                given_name=teacher.given_name,
                family_name=teacher.family_name,
                email=teacher.email,
                school_ids=[*teacher.school_ids, office.school_id],
            )
        ],
    )
    assert synced(stack).summary.teachers_updated == 0
    moved_to = next(org for org in truth_schools(stack) if org not in row["orgs"])
    stack.sandbox.mutate([{"op": "update_user", "sourcedId": row["sourcedId"], "set": {"orgs": [moved_to]}}])

    preview = stack.client.preview_sync(stack.district_id, kind=sync_pb2.PLAN_ITEM_KIND_UPDATE_TEACHER)
    (item,) = preview.items
    assert list(item.schools_kept) == ["District Office"]
    synced(stack)

    after = teachers(stack)[email_key(row["email"])]
    assert school_names(stack, after) == {"District Office", truth_schools(stack)[moved_to]}


# -- Rule 3: rows without a name, control characters ---------------------------------------------


def test_a_nameless_row_is_skipped_and_its_teacher_kept_and_control_characters_never_reach_ew(
    stack: SyncStack,
) -> None:
    synced(stack)
    nameless, noisy = first_teacher(stack), present(stack, 1)[0]
    stack.sandbox.mutate(
        [{"op": "update_user", "sourcedId": noisy["sourcedId"], "set": {"givenName": "Ro\u0000bin\u0085"}}]
    )
    faulty = wire_user(nameless, familyName="  ")
    stack.sandbox.set_faults([{"kind": "bad_row", "path": "teachers", "times": -1, "rows": [faulty]}])
    before = teachers(stack)[email_key(nameless["email"])]

    name, last = sync(stack)

    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
    assert skip_count(last, sync_pb2.SKIP_REASON_MISSING_NAME) == 1
    assert teachers(stack)[email_key(nameless["email"])] == before
    assert teachers(stack)[email_key(noisy["email"])].given_name == "Robin"
    updates = {item.classlink_id: item for item in items(stack, name, sync_pb2.PLAN_ITEM_KIND_UPDATE_TEACHER)}
    assert list(updates[noisy["sourcedId"]].warnings) == [
        "Control characters were removed from the given name."
    ]


# -- Rule 4: rows that cannot be read ------------------------------------------------------------


def test_an_unreadable_row_protects_the_teacher_its_email_names(stack: SyncStack) -> None:
    synced(stack)
    row = first_teacher(stack)
    # The readable version of the row is gone from the pull: unprotected, its teacher would be archived.
    broken = {k: v for k, v in wire_user(row, givenName=5).items() if k != "sourcedId"}
    stack.sandbox.set_faults([{"kind": "bad_row", "path": "teachers", "times": -1, "rows": [broken]}])

    name, last = sync(stack)

    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
    assert last.summary.teachers_archived == 0
    assert teachers(stack)[email_key(row["email"])].state == roster_pb2.TEACHER_STATE_ACTIVE
    skipped = items(stack, name, sync_pb2.PLAN_ITEM_KIND_SKIP)
    unreadable = [
        (s.classlink_id, s.email) for s in skipped if s.skip_reason == sync_pb2.SKIP_REASON_UNREADABLE_ROW
    ]
    assert unreadable == [("", row["email"])]


def test_rows_without_any_identity_make_every_other_change_but_archive_nobody(stack: SyncStack) -> None:
    synced(stack)
    # The two rows the fault replaces, and the leaver, would each be archived otherwise.
    leaver, renamed = present(stack, 2)[:2]
    stack.sandbox.mutate(
        [
            {"op": "remove_user", "sourcedId": leaver["sourcedId"]},
            {"op": "update_user", "sourcedId": renamed["sourcedId"], "set": {"familyName": "Renamed"}},
        ]
    )
    stack.sandbox.set_faults(
        [{"kind": "bad_row", "path": "teachers", "times": -1, "rows": [7, {"givenName": "Nobody"}]}]
    )
    active = active_keys(stack)

    name, last = sync(stack)

    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
    assert last.summary.teachers_archived == 0
    assert list(last.summary.notes) == ["2 ClassLink teacher rows could not be read; no one was archived."]
    assert stack.client.get_run(name).guard.message.endswith("no one was archived.")
    assert active <= active_keys(stack)
    assert teachers(stack)[email_key(renamed["email"])].family_name == "Renamed"


# -- Rule 5: the membership guard and unreadable schools ------------------------------------------


def test_stripping_many_teachers_of_a_school_waits_for_review_and_writes_nothing_before(
    stack: SyncStack,
) -> None:
    orgs = sorted(truth_schools(stack))[:2]
    landed = {email_key(u["email"]) for u in syncable_teachers(stack.sandbox.roster())}
    movers = [u for u in present(stack) if email_key(u["email"]) in landed][:8]
    stack.sandbox.mutate(
        [{"op": "update_user", "sourcedId": u["sourcedId"], "set": {"orgs": orgs}} for u in movers]
    )
    synced(stack)
    stack.sandbox.mutate(
        [{"op": "update_user", "sourcedId": u["sourcedId"], "set": {"orgs": orgs[:1]}} for u in movers]
    )
    before = stack.roster.snapshot()

    review, last = sync(stack)

    assert last.state == sync_pb2.SYNC_RUN_STATE_NEEDS_REVIEW
    assert stack.roster.snapshot() == before
    run = stack.client.get_run(review)
    listed = [i for i in items(stack, review, sync_pb2.PLAN_ITEM_KIND_UPDATE_TEACHER) if i.schools_removed]
    assert {item.classlink_id for item in listed} == {u["sourcedId"] for u in movers}
    assert run.guard.membership_removal_count == len(movers) > run.guard.threshold
    assert f"remove school memberships from {len(movers)} of" in run.guard.message

    _, approved = sync(stack, approve_run=review)

    assert approved.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, approved.message
    ew = teachers(stack)
    assert all(len(ew[email_key(u["email"])].school_ids) == 1 for u in movers)


def test_a_pull_without_any_active_school_waits_for_review(stack: SyncStack) -> None:
    synced(stack)
    stack.sandbox.mutate(
        [
            {"op": "update_school", "sourcedId": org, "set": {"status": "tobedeleted"}}
            for org in truth_schools(stack)
        ]
    )
    before = stack.roster.snapshot()

    review, last = sync(stack)

    assert last.state == sync_pb2.SYNC_RUN_STATE_NEEDS_REVIEW
    assert "ClassLink lists no active school" in stack.client.get_run(review).guard.message
    assert stack.roster.snapshot() == before


def test_the_teachers_of_an_unreadable_school_row_keep_their_membership(stack: SyncStack) -> None:
    synced(stack)
    # The first school row, as a server sends it without a name.
    org = next(iter(truth_schools(stack)))
    nameless = {"sourcedId": org, "status": "active", "type": "school", "name": ""}
    stack.sandbox.set_faults([{"kind": "bad_row", "path": "schools", "times": -1, "rows": [nameless]}])
    before = teachers(stack)

    _, last = sync(stack)

    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
    assert teachers(stack) == before
    assert list(last.summary.notes) == [
        "1 ClassLink school row could not be read; their teachers keep their schools."
    ]


# -- Rule 7: a pull is complete on every server ---------------------------------------------------


@pytest.mark.parametrize("count", [21, 23])
def test_a_server_that_caps_pages_silently_without_totals_or_links_is_read_to_the_end(
    stack_factory: Callable[..., SyncStack], count: int
) -> None:
    stack = stack_factory(teachers=count, page_cap=7, omit_total=True, omit_links=True)
    expected = {email_key(u["email"]) for u in syncable_teachers(stack.sandbox.roster())}

    last = synced(stack)

    assert len(expected) > 14 and active_keys(stack) == expected
    assert last.summary.teachers_added == len(expected)


# -- Rule 8: real servers' waits -----------------------------------------------------------------


def test_a_preview_classlink_asks_to_wait_longer_than_the_call_allows_says_so(stack: SyncStack) -> None:
    stack.sandbox.set_faults(
        [{"kind": "status", "status": 429, "retry_after": "56", "path": "teachers", "times": -1}]
    )
    token = stack.token()
    client = SyncClient(stack.server.target, token=lambda: token, credentials=stack.credentials, timeout=5)

    with pytest.raises(RosterError) as refused:
        client.preview_sync(stack.district_id)

    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    assert "ClassLink asked us to wait 56 s, longer than this call allows." in refused.value.message
