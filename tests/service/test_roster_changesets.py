"""Change sets through real gRPC calls: staging, all-or-nothing commits, conflicts, expiry, results."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from ew.client.errors import RosterError
from ew.roster.v1 import roster_pb2 as pb
from ew.roster.v1 import roster_service_pb2 as rpc
from ew.roster.v1 import roster_service_pb2_grpc

from services.roster import repository
from tests.support.roster import Roster, roster_with_districts


@pytest.fixture
def roster(database_url: Callable[[str], str]) -> Iterator[Roster]:
    with roster_with_districts(database_url("roster")) as running:
        yield running


def create_school(ref: str, name: str = "") -> pb.Change:
    return pb.Change(create_school=pb.CreateSchoolChange(ref=ref, display_name=name or ref))


def upsert(
    ref: str,
    email: str,
    *schools: pb.SchoolRef,
    teacher_id: str = "",
    given: str = "Ada",
    reactivate: bool = False,
) -> pb.Change:
    return pb.Change(
        upsert_teacher=pb.UpsertTeacherChange(
            ref=ref,
            teacher_id=teacher_id,
            given_name=given,
            family_name="Byron",
            email=email,
            schools=schools,
            reactivate=reactivate,
        )
    )


def archive(teacher_id: str, reason: str = "No longer in ClassLink") -> pb.Change:
    return pb.Change(archive_teacher=pb.ArchiveTeacherChange(teacher_id=teacher_id, reason=reason))


def reactivate(teacher_id: str) -> pb.Change:
    return pb.Change(reactivate_teacher=pb.ReactivateTeacherChange(teacher_id=teacher_id))


def by_ref(ref: str) -> pb.SchoolRef:
    return pb.SchoolRef(school_ref=ref)


def by_id(school_id: str) -> pb.SchoolRef:
    return pb.SchoolRef(school_id=school_id)


def refused(roster: Roster, code: grpc.StatusCode, call: Callable[..., Any], *args: Any) -> RosterError:
    before = roster.snapshot()
    with pytest.raises(RosterError) as info:
        call(*args)
    assert info.value.code == code, info.value.message
    assert roster.snapshot() == before
    return info.value


def test_a_change_set_lands_every_kind_of_change_and_reports_results(roster: Roster) -> None:
    client = roster.client
    elm = client.batch_create_schools("d1", ["Elm"])[0]
    kept, renamed, leaving, returning = client.batch_upsert_teachers(
        "d1",
        [
            pb.TeacherInput(
                given_name="Ada", family_name="Byron", email="kept@example.org", school_ids=[elm.school_id]
            ),
            pb.TeacherInput(
                given_name="Bob", family_name="Byron", email="bob@example.org", school_ids=[elm.school_id]
            ),
            pb.TeacherInput(given_name="Cy", family_name="Byron", email="cy@example.org"),
            pb.TeacherInput(given_name="Di", family_name="Byron", email="di@example.org"),
        ],
    )
    client.batch_archive_teachers("d1", [returning.teacher_id], "Left")
    change_set = client.create_change_set("d1")
    assert change_set.state == pb.CHANGE_SET_STATE_OPEN

    client.stage_changes(change_set.name, 1, [create_school("cl-oak", "Oak"), create_school("cl-ash", "Ash")])
    staged = client.stage_changes(
        change_set.name,
        2,
        [
            upsert("cl-new", "New@Example.org", by_ref("cl-oak"), by_id(elm.school_id), given="Nia"),
            upsert("cl-kept", "KEPT@example.org ", by_id(elm.school_id)),
            upsert(
                "cl-bob", "robert@example.org", by_ref("cl-ash"), teacher_id=renamed.teacher_id, given="Bob"
            ),
            archive(leaving.teacher_id),
            reactivate(returning.teacher_id),
        ],
    )
    assert staged.staged == pb.ChangeCounts(
        schools_created=2,
        teachers_created=1,
        teachers_updated=2,
        teachers_unchanged=0,
        teachers_archived=1,
        teachers_reactivated=1,
    )
    # KEPT@example.org differs from kept@example.org as written, so it counts as an update of the email.
    assert client.get_teacher(kept.name).email == "kept@example.org"
    assert roster.staged_rows() > 0

    committed = client.commit_change_set(change_set.name)
    assert committed.state == pb.CHANGE_SET_STATE_COMMITTED
    assert committed.applied == committed.staged and committed.HasField("end_time")
    assert client.commit_change_set(change_set.name) == committed
    roster.server.change_sets.clean_up()
    assert roster.staged_rows() == 0

    results = {r.ref: r for r in client.list_change_set_results(change_set.name)}
    assert [(r.kind, r.ref) for r in client.list_change_set_results(change_set.name)] == [
        (pb.CHANGE_KIND_CREATE_SCHOOL, "cl-ash"),
        (pb.CHANGE_KIND_CREATE_SCHOOL, "cl-oak"),
        (pb.CHANGE_KIND_UPSERT_TEACHER, "cl-bob"),
        (pb.CHANGE_KIND_UPSERT_TEACHER, "cl-kept"),
        (pb.CHANGE_KIND_UPSERT_TEACHER, "cl-new"),
    ]
    assert results["cl-kept"].outcome == pb.CHANGE_OUTCOME_UPDATED
    assert client.get_teacher(kept.name).email == "KEPT@example.org"
    assert results["cl-new"].outcome == pb.CHANGE_OUTCOME_CREATED
    oak = client.get_school(f"districts/d1/schools/{results['cl-oak'].resource_id}")
    assert oak.display_name == "Oak"
    new = client.get_teacher(f"districts/d1/teachers/{results['cl-new'].resource_id}")
    assert (new.email, sorted(new.school_ids)) == ("New@Example.org", sorted([elm.school_id, oak.school_id]))
    bob = client.get_teacher(renamed.name)
    assert (bob.email, list(bob.school_ids), bob.revision) == (
        "robert@example.org",
        [results["cl-ash"].resource_id],
        2,
    )
    assert client.get_teacher(leaving.name).state == pb.TEACHER_STATE_ARCHIVED
    assert client.get_teacher(leaving.name).archive_reason == "No longer in ClassLink"
    assert client.get_teacher(returning.name).state == pb.TEACHER_STATE_ACTIVE


def test_unchanged_upserts_count_as_unchanged_and_keep_their_revision(roster: Roster) -> None:
    client = roster.client
    elm = roster.client.batch_create_schools("d1", ["Elm"])[0]
    ada = client.batch_upsert_teachers(
        "d1",
        [
            pb.TeacherInput(
                given_name="Ada", family_name="Byron", email="ada@example.org", school_ids=[elm.school_id]
            )
        ],
    )[0]
    change_set = client.create_change_set("d1")
    client.stage_changes(change_set.name, 1, [upsert("r", "ada@example.org", by_id(elm.school_id))])
    committed = client.commit_change_set(change_set.name)
    assert committed.applied == pb.ChangeCounts(teachers_unchanged=1)
    assert client.get_teacher(ada.name) == ada
    assert [r.outcome for r in client.list_change_set_results(change_set.name)] == [
        pb.CHANGE_OUTCOME_UNCHANGED
    ]


def test_an_upsert_can_reactivate_and_update_a_returning_teacher_in_one_change(roster: Roster) -> None:
    client = roster.client
    elm, oak = client.batch_create_schools("d1", ["Elm", "Oak"])
    renamed, same, active = client.batch_upsert_teachers(
        "d1",
        [
            pb.TeacherInput(given_name="Ada", family_name="Byron", email="ada@example.org"),
            pb.TeacherInput(
                given_name="Ada", family_name="Byron", email="same@example.org", school_ids=[elm.school_id]
            ),
            pb.TeacherInput(given_name="Ada", family_name="Byron", email="active@example.org"),
        ],
    )
    client.batch_archive_teachers("d1", [renamed.teacher_id, same.teacher_id], "Left")
    change_set = client.create_change_set("d1")
    staged = client.stage_changes(
        change_set.name,
        1,
        [
            upsert("r1", "ada@example.org", by_id(oak.school_id), given="Adele", reactivate=True),
            upsert("r2", "same@example.org", by_id(elm.school_id), reactivate=True),
            upsert("r3", "active@example.org", reactivate=True),
        ],
    )
    assert staged.staged == pb.ChangeCounts(teachers_updated=1, teachers_unchanged=2, teachers_reactivated=2)

    committed = client.commit_change_set(change_set.name)

    assert committed.applied == committed.staged
    back = client.get_teacher(renamed.name)
    assert (back.state, back.given_name, list(back.school_ids), back.archive_reason) == (
        pb.TEACHER_STATE_ACTIVE,
        "Adele",
        [oak.school_id],
        "",
    )
    assert client.get_teacher(same.name).state == pb.TEACHER_STATE_ACTIVE
    assert client.get_teacher(active.name) == active


def test_create_is_idempotent_by_request_id_and_batches_by_number(roster: Roster) -> None:
    client = roster.client
    request_id = str(uuid.uuid4())
    change_set = client.create_change_set("d1", request_id)
    assert client.create_change_set("d1", request_id).change_set_id == change_set.change_set_id
    assert client.create_change_set("d1").change_set_id != change_set.change_set_id
    first = client.stage_changes(change_set.name, 1, [upsert("a", "a@example.org")])
    retried = client.stage_changes(change_set.name, 1, [upsert("a", "a@example.org")])
    assert retried.staged == first.staged == pb.ChangeCounts(teachers_created=1)
    client.stage_changes(change_set.name, 2, [upsert("b", "b@example.org")])
    assert client.commit_change_set(change_set.name).applied.teachers_created == 2
    assert len(list(client.list_teachers("d1"))) == 2


def test_bad_batches_are_refused_and_stage_nothing(roster: Roster) -> None:
    client = roster.client
    foreign = client.batch_create_schools("d2", ["Far"])[0]
    ada = client.batch_upsert_teachers(
        "d1", [pb.TeacherInput(given_name="Ada", family_name="Byron", email="ada@example.org")]
    )[0]
    change_set = client.create_change_set("d1")
    name = change_set.name
    client.stage_changes(name, 1, [create_school("s1"), upsert("t1", "t1@example.org", by_ref("s1"))])
    counts = client.get_change_set(name).staged

    cases: list[tuple[grpc.StatusCode, int, list[pb.Change], str]] = [
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            2,
            [upsert("x", "x@example.org"), upsert("x", "y@example.org")],
            "changes[1]",
        ),
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            2,
            [upsert("x", "X@example.org"), upsert("y", "x@example.org ")],
            "changes[0]",
        ),
        (grpc.StatusCode.INVALID_ARGUMENT, 2, [upsert("t1", "z@example.org")], "earlier batch"),
        (grpc.StatusCode.INVALID_ARGUMENT, 2, [upsert("t9", "T1@example.org")], "earlier batch"),
        (grpc.StatusCode.INVALID_ARGUMENT, 2, [create_school("s1")], "already staged"),
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            2,
            [upsert("x", "x@example.org", by_ref("nowhere"))],
            "school_ref",
        ),
        (
            grpc.StatusCode.NOT_FOUND,
            2,
            [upsert("x", "x@example.org", by_id(foreign.school_id))],
            "not found in district",
        ),
        (grpc.StatusCode.INVALID_ARGUMENT, 2, [upsert("x", "not an email")], "email"),
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            2,
            [upsert("x", "x@example.org", given="g" * 10_000)],
            "given_name",
        ),
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            2,
            [upsert("x", "x@example.org", teacher_id="nope")],
            "teacher_id",
        ),
        (grpc.StatusCode.NOT_FOUND, 2, [archive(str(uuid.uuid4()))], "not found"),
        (grpc.StatusCode.FAILED_PRECONDITION, 2, [reactivate(ada.teacher_id)], "is active"),
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            2,
            [archive(ada.teacher_id), upsert("a", "ada@example.org")],
            "same teacher",
        ),
        (grpc.StatusCode.INVALID_ARGUMENT, 2, [pb.Change()], "changes[0]"),
        (grpc.StatusCode.INVALID_ARGUMENT, 0, [upsert("x", "x@example.org")], "batch_number"),
        (grpc.StatusCode.INVALID_ARGUMENT, 2, [], "at least one"),
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            2,
            [upsert(f"r{n}", f"r{n}@example.org") for n in range(1001)],
            "at most 1000",
        ),
    ]
    for code, number, changes, hint in cases:
        error = refused(roster, code, client.stage_changes, name, number, changes)
        assert hint in error.message, (hint, error.message)
        assert client.get_change_set(name).staged == counts
    refused(
        roster,
        grpc.StatusCode.NOT_FOUND,
        client.stage_changes,
        name.replace("/d1/", "/d2/"),
        2,
        [upsert("x", "x@example.org")],
    )
    committed = client.commit_change_set(name)
    assert committed.applied == pb.ChangeCounts(schools_created=1, teachers_created=1)


def test_staged_names_and_emails_must_be_printable_and_not_blank(roster: Roster) -> None:
    client = roster.client
    name = client.create_change_set("d1").name

    def named(given: str, family: str) -> pb.Change:
        change = upsert("t", "t@example.org", given=given)
        change.upsert_teacher.family_name = family
        return change

    cases: list[tuple[list[pb.Change], list[str]]] = [
        ([create_school("s1", "Elm\x00")], ["changes[0].create_school.display_name"]),
        ([create_school("s1", "\x9fElm")], ["changes[0].create_school.display_name"]),
        ([upsert("t", "t@example.org", given="A\x1bda")], ["changes[0].upsert_teacher.given_name"]),
        ([named("Ada", "By\x7fron")], ["changes[0].upsert_teacher.family_name"]),
        ([upsert("t", "t\x85@example.org")], ["changes[0].upsert_teacher.email"]),
        ([named(" ", "Byron")], ["changes[0].upsert_teacher.given_name"]),
        ([named("Ada", "")], ["changes[0].upsert_teacher.family_name"]),
        (
            [create_school("s1", " "), named("", "\x00")],
            ["changes[0].create_school.display_name", "changes[1].upsert_teacher.given_name"],
        ),
    ]
    for changes, fields in cases:
        error = refused(roster, grpc.StatusCode.INVALID_ARGUMENT, client.stage_changes, name, 1, changes)
        assert [v.field for v in error.violations] == fields, error.message
    assert client.get_change_set(name).staged == pb.ChangeCounts()
    assert roster.staged_rows() == 0


def test_two_change_sets_over_the_same_teacher_the_second_commit_is_aborted(roster: Roster) -> None:
    client = roster.client
    ada = client.batch_upsert_teachers(
        "d1", [pb.TeacherInput(given_name="Ada", family_name="Byron", email="ada@example.org")]
    )[0]
    first = client.create_change_set("d1")
    second = client.create_change_set("d1")
    client.stage_changes(first.name, 1, [upsert("a", "ada@example.org", given="First")])
    client.stage_changes(
        second.name, 1, [upsert("a", "ada@example.org", given="Second"), upsert("b", "b@example.org")]
    )
    client.commit_change_set(first.name)
    roster.server.change_sets.clean_up()
    after_first = roster.snapshot()

    error = refused(roster, grpc.StatusCode.ABORTED, client.commit_change_set, second.name)
    assert error.reason == "CHANGE_SET_CONFLICT" and ada.teacher_id in error.message
    assert roster.snapshot() == after_first
    abandoned = client.get_change_set(second.name)
    assert abandoned.state == pb.CHANGE_SET_STATE_ABANDONED and ada.teacher_id in abandoned.abandon_reason
    assert client.get_teacher(ada.name).given_name == "First"
    refused(roster, grpc.StatusCode.FAILED_PRECONDITION, client.commit_change_set, second.name)
    assert roster.staged_rows() == 0


def test_a_new_email_created_meanwhile_aborts_the_commit(roster: Roster) -> None:
    client = roster.client
    change_set = client.create_change_set("d1")
    client.stage_changes(change_set.name, 1, [upsert("n", "new@example.org")])
    client.batch_upsert_teachers(
        "d1", [pb.TeacherInput(given_name="New", family_name="Byron", email="NEW@example.org")]
    )
    before = roster.snapshot()
    error = refused(roster, grpc.StatusCode.ABORTED, client.commit_change_set, change_set.name)
    assert "new@example.org" in error.message
    assert roster.snapshot() == before


def test_a_commit_failing_half_way_leaves_the_roster_as_it_was(
    roster: Roster, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = roster.client
    ada = client.batch_upsert_teachers(
        "d1", [pb.TeacherInput(given_name="Ada", family_name="Byron", email="ada@example.org")]
    )[0]
    change_set = client.create_change_set("d1")
    client.stage_changes(
        change_set.name,
        1,
        [create_school("s"), upsert("n", "new@example.org", by_ref("s")), archive(ada.teacher_id)],
    )
    before = roster.snapshot()
    written: list[dict[str, int]] = []
    apply = repository.apply_change_set

    def apply_then_fail(*args: Any) -> dict[str, int]:
        written.append(apply(*args))
        raise RuntimeError("disk full")

    monkeypatch.setattr(repository, "apply_change_set", apply_then_fail)
    refused(roster, grpc.StatusCode.INTERNAL, client.commit_change_set, change_set.name)
    assert written == [{"teachers_updated": 0, "teachers_archived": 1, "teachers_reactivated": 0}]
    assert roster.snapshot() == before
    assert client.get_change_set(change_set.name).state == pb.CHANGE_SET_STATE_OPEN

    monkeypatch.setattr(repository, "apply_change_set", apply)
    assert client.commit_change_set(change_set.name).applied.teachers_archived == 1


def test_abandoned_and_expired_change_sets_leave_no_trace(roster: Roster) -> None:
    client = roster.client
    before = roster.snapshot()
    abandoned = client.create_change_set("d1")
    client.stage_changes(abandoned.name, 1, [create_school("s"), upsert("a", "a@example.org", by_ref("s"))])
    result = client.abandon_change_set(abandoned.name, "Preview only")
    assert (result.state, result.abandon_reason) == (pb.CHANGE_SET_STATE_ABANDONED, "Preview only")
    assert client.abandon_change_set(abandoned.name) == result
    refused(
        roster,
        grpc.StatusCode.FAILED_PRECONDITION,
        client.stage_changes,
        abandoned.name,
        2,
        [upsert("b", "b@example.org")],
    )
    refused(
        roster,
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: list(client.list_change_set_results(abandoned.name)),
    )

    expiring = client.create_change_set("d1")
    client.stage_changes(expiring.name, 1, [upsert("a", "a@example.org")])
    roster.clock.advance(dt.timedelta(minutes=59))
    client.stage_changes(expiring.name, 2, [upsert("b", "b@example.org")])
    roster.clock.advance(dt.timedelta(minutes=59))
    assert client.get_change_set(expiring.name).state == pb.CHANGE_SET_STATE_OPEN
    roster.clock.advance(dt.timedelta(minutes=2))
    expired = client.get_change_set(expiring.name)
    assert expired.state == pb.CHANGE_SET_STATE_EXPIRED and expired.end_time == expired.expire_time
    error = refused(roster, grpc.StatusCode.FAILED_PRECONDITION, client.commit_change_set, expiring.name)
    assert "expired" in error.message
    assert roster.snapshot() == before and roster.staged_rows() == 0


def test_periodic_clean_up_expires_idle_change_sets(roster: Roster) -> None:
    change_set = roster.client.create_change_set("d1")
    roster.client.stage_changes(change_set.name, 1, [upsert("a", "a@example.org")])
    assert roster.server.change_sets.clean_up() == 0
    roster.clock.advance(dt.timedelta(hours=2))
    assert roster.server.change_sets.clean_up() == 1
    assert roster.staged_rows() == 0
    assert roster.client.get_change_set(change_set.name).state == pb.CHANGE_SET_STATE_EXPIRED


def test_results_are_paged_and_only_for_committed_change_sets(roster: Roster) -> None:
    client = roster.client
    change_set = client.create_change_set("d1")
    client.stage_changes(change_set.name, 1, [upsert(f"t{n}", f"t{n}@example.org") for n in range(5)])
    refused(
        roster,
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: list(client.list_change_set_results(change_set.name)),
    )
    client.commit_change_set(change_set.name)
    with roster.channel() as channel:
        stub = roster_service_pb2_grpc.RosterServiceStub(channel)
        refs: list[str] = []
        token = ""
        while True:
            page = stub.ListChangeSetResults(
                rpc.ListChangeSetResultsRequest(parent=change_set.name, page_size=2, page_token=token)
            )
            refs += [r.ref for r in page.results]
            token = page.next_page_token
            if not token:
                break
        with pytest.raises(grpc.RpcError) as info:
            stub.ListChangeSetResults(rpc.ListChangeSetResultsRequest(parent=change_set.name, page_size=-5))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refs == [f"t{n}" for n in range(5)]
    refused(roster, grpc.StatusCode.NOT_FOUND, client.get_change_set, change_set.name.replace("/d1/", "/d2/"))
    refused(
        roster, grpc.StatusCode.NOT_FOUND, client.get_change_set, f"districts/d1/changeSets/{uuid.uuid4()}"
    )
