"""Malformed OneRoster payloads, served over HTTP by a scripted server, each pulled by a real sync.

Every row states the run's outcome (DESIGN.md "Sync rules"): the run fails with a message naming
the problem and EW is unchanged; or it stops for review and EW is unchanged; or the bad row is
skipped and reported, the rest is applied (a new teacher in the same payload arrives) and nobody
is archived by mistake.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from ew.client.sync import SyncClient
from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2

from tests.badinput import tally
from tests.badinput.world import World
from tests.support.canned_oneroster import CannedServer, Reply, Script, canned_oneroster

TABLE = "OneRoster payloads"
DISTRICT = "d-canned"
MB = 1024 * 1024
Rows = list[Any]


def school(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "sourcedId": f"sch-{n}",
        "status": "active",
        "name": f"Canned School {n}",
        "type": "school",
    } | fields


def teacher(key: str, **fields: Any) -> dict[str, Any]:
    return {
        "sourcedId": key,
        "status": "active",
        "enabledUser": True,
        "role": "teacher",
        "givenName": "Tess",
        "familyName": key.capitalize(),
        "email": f"{key}@canned.test",
        "orgs": [{"sourcedId": "sch-1", "type": "org"}],
    } | fields


@dataclass(frozen=True)
class Payload:
    """One malformed payload and what the run must do with it.

    ``outcome``: ``fails`` (run FAILED, EW unchanged) or ``review`` (NEEDS_REVIEW, EW unchanged),
    with ``fragment`` in the run's error or guard message; or the run SUCCEEDED with the rest of
    the payload applied and nobody archived, and ``fragment`` in a skipped item (``skips``: the
    row is left out and reported), in an item's warnings (``warns``: the value is cleaned, as
    the sync rules say), in the summary's notes (``notes``: an unreadable school), or in an EW
    name (``applies``: the value is stored as the text it is).
    """

    id: str
    outcome: str
    fragment: str
    script: Callable[[Rows, Rows], Script]


def teachers_plus(*extra: Any) -> Callable[[Rows, Rows], Script]:
    return lambda schools, teachers: Script(schools=schools, teachers=teachers + list(extra))


def schools_plus(*extra: Any) -> Callable[[Rows, Rows], Script]:
    return lambda schools, teachers: Script(schools=schools + list(extra), teachers=teachers)


def replaced(
    collection: str, body: bytes, status: int = 200, content_type: str = "application/json"
) -> Callable[[Rows, Rows], Script]:
    reply = Reply(body, status, content_type)
    return lambda schools, teachers: Script(schools=schools, teachers=teachers, replies={collection: reply})


def edited(change: Callable[[Rows, Rows], tuple[Rows, Rows]]) -> Callable[[Rows, Rows], Script]:
    def script(schools: Rows, teachers: Rows) -> Script:
        new_schools, new_teachers = change(list(schools), list(teachers))
        return Script(schools=new_schools, teachers=new_teachers)

    return script


def lying_total(collection: str) -> Callable[[Rows, Rows], Script]:
    return lambda schools, teachers: Script(schools=schools, teachers=teachers, totals={collection: 500})


IMSX_FAILURE = json.dumps(
    {"imsx_codeMajor": "failure", "imsx_severity": "error", "imsx_description": "Tenant suspended"}
).encode()
HTML = b"<!DOCTYPE html><html><body><h1>Maintenance</h1></body></html>"
TEACHERS_PAGE = json.dumps({"users": [teacher("t-1")]}).encode()


PAYLOADS = [
    # Whole collections that cannot be read: the run fails, EW unchanged.
    Payload("schools-html-200", "fails", "schools", replaced("schools", HTML, content_type="text/html")),
    Payload("schools-imsx-failure-200", "fails", "Tenant suspended", replaced("schools", IMSX_FAILURE)),
    Payload(
        "schools-truncated",
        "fails",
        "schools",
        replaced("schools", json.dumps({"orgs": [school(1)]}).encode()[:30]),
    ),
    Payload(
        "schools-invalid-utf8",
        "fails",
        "schools",
        replaced("schools", b'{"orgs": [{"sourcedId": "sch-1", "name": "\xff\xfe"}]}'),
    ),
    Payload(
        "schools-deep-nesting",
        "fails",
        "schools",
        replaced("schools", b'{"orgs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ),
    Payload("schools-no-collection", "fails", "orgs", replaced("schools", b'{"courses": []}')),
    Payload("schools-not-json-object", "fails", "schools", replaced("schools", b"[1, 2, 3]")),
    Payload("schools-lying-total", "fails", "schools", lying_total("schools")),
    Payload("teachers-html-200", "fails", "teachers", replaced("teachers", HTML, content_type="text/html")),
    Payload("teachers-imsx-failure-200", "fails", "Tenant suspended", replaced("teachers", IMSX_FAILURE)),
    Payload(
        "teachers-truncated",
        "fails",
        "teachers",
        replaced("teachers", TEACHERS_PAGE[: len(TEACHERS_PAGE) // 2]),
    ),
    Payload(
        "teachers-invalid-utf8",
        "fails",
        "teachers",
        replaced("teachers", TEACHERS_PAGE.replace(b"Tess", b"T\xc3\x28ss")),
    ),
    Payload("teachers-lying-total", "fails", "teachers", lying_total("teachers")),
    Payload(
        "teachers-unauthorized",
        "fails",
        "rejected the client id or secret",
        replaced("teachers", IMSX_FAILURE, status=401),
    ),
    Payload("staff-garbage", "fails", "users", replaced("users", b"\x00\x01garbage")),
    # Empty collections trip the safety guard: nobody archived, EW unchanged.
    Payload("no-teachers", "review", "archive", edited(lambda s, t: (s, []))),
    Payload("no-schools", "review", "school", edited(lambda s, t: ([], t))),
    # Bad teacher rows: skipped and reported, the rest applied, nobody archived.
    Payload("teacher-row-not-object", "skips", "not a JSON object", teachers_plus(7)),
    Payload(
        "teacher-without-sourced-id",
        "skips",
        "sourcedId",
        teachers_plus({k: v for k, v in teacher("x").items() if k != "sourcedId"}),
    ),
    Payload(
        "teacher-email-wrong-type", "skips", "wrong type", teachers_plus(teacher("bad-type", email=12345))
    ),
    Payload("teacher-email-a-at", "skips", "email", teachers_plus(teacher("bad-email", email="a@"))),
    Payload("teacher-no-email", "skips", "email", teachers_plus(teacher("no-email", email=""))),
    Payload(
        "teacher-no-name", "skips", "name", teachers_plus(teacher("no-name", givenName="", familyName=" "))
    ),
    Payload(
        "teacher-orgs-wrong-type", "skips", "wrong type", teachers_plus(teacher("bad-orgs", orgs="sch-1"))
    ),
    Payload(
        "teacher-same-email-other-name",
        "skips",
        "t-2@canned.test",
        teachers_plus(teacher("t-2-twin", givenName="Other", familyName="Person", email="t-2@canned.test")),
    ),
    Payload(
        "teacher-1mb-name",
        "warns",
        "shortened to 200 characters",
        teachers_plus(teacher("huge-name", givenName="G" * MB)),
    ),
    Payload(
        "teacher-control-chars-name",
        "warns",
        "control characters were removed",
        teachers_plus(teacher("ctrl-name", familyName="Bell\x07\x1b[2J")),
    ),
    Payload(
        "existing-teacher-row-unreadable",
        "skips",
        "wrong type",
        edited(lambda s, t: (s, [teacher("t-1", email=["t-1@canned.test"], givenName=5)] + t[1:])),
    ),
    Payload(
        "teacher-listed-twice",
        "fails",
        "teachers row t-1 was listed twice",
        edited(lambda s, t: (s, t + [t[0]])),
    ),
    Payload(
        "teacher-markup-name",
        "applies",
        "<script>alert(1)</script>]",
        teachers_plus(teacher("markup", familyName="<script>alert(1)</script>")),
    ),
    Payload(
        "teacher-padded-email",
        "applies",
        "[Padded Padded]",
        teachers_plus(teacher("padded", givenName="Padded", email="  padded@canned.test  ")),
    ),
    Payload(
        "teacher-unknown-school",
        "applies",
        "[Tess Lost]",
        teachers_plus(teacher("lost", orgs=[{"sourcedId": "sch-nowhere"}])),
    ),
    # Bad school rows.
    Payload(
        "school-row-not-object", "notes", "1 ClassLink school row could not be read", schools_plus("a school")
    ),
    Payload(
        "school-no-name",
        "notes",
        "1 ClassLink school row could not be read",
        schools_plus(school(8, name="")),
    ),
    Payload(
        "school-name-wrong-type",
        "notes",
        "1 ClassLink school row could not be read",
        schools_plus(school(9, name=["x"])),
    ),
    Payload("school-1mb-name", "applies", "[" + "S" * 200 + "]", schools_plus(school(10, name="S" * MB))),
    Payload(
        "school-listed-twice",
        "fails",
        "schools row sch-1 was listed twice",
        edited(lambda s, t: (s + [s[0]], t)),
    ),
    Payload(
        "school-unknown-parent",
        "applies",
        "[Canned School 1]",
        edited(lambda s, t: ([school(1, parent={"sourcedId": "org-nowhere"})] + s[1:], t)),
    ),
    Payload(
        "schools-cyclic-parents",
        "applies",
        "[Canned School 2]",
        edited(
            lambda s, t: (
                [school(1, parent={"sourcedId": "sch-2"}), school(2, parent={"sourcedId": "sch-1"})] + s[2:],
                t,
            )
        ),
    ),
    Payload(
        "school-markup-name",
        "applies",
        "[<b>Bold</b> Academy]",
        schools_plus(school(11, name="<b>Bold</b> Academy")),
    ),
]


@dataclass
class Canned:
    server: CannedServer
    client: SyncClient
    world: World
    schools: Rows
    teachers: Rows


def active_teachers(world: World) -> dict[str, str]:
    """Active teachers of the district: id -> email."""
    return {
        t.teacher_id: t.email
        for t in world.stack.roster.client.list_teachers(DISTRICT)
        if t.state == roster_pb2.TEACHER_STATE_ACTIVE
    }


def names(world: World) -> set[str]:
    client = world.stack.roster.client
    return {s.display_name for s in client.list_schools(DISTRICT)} | {
        f"{t.given_name} {t.family_name}" for t in client.list_teachers(DISTRICT)
    }


def sync(canned: Canned) -> sync_pb2.SyncRun:
    events = canned.client.sync_rosters(DISTRICT)
    list(events)
    return canned.client.get_run(events.run_name)


@pytest.fixture(scope="module")
def canned(world: World) -> Iterator[Canned]:
    with canned_oneroster() as server:
        world.stack.roster.client.create_district(DISTRICT, "Canned District")
        token = world.stack.token(district_id=DISTRICT)
        with world.stack.client_as(token) as client:
            schools = [school(n) for n in (1, 2, 3)]
            teachers = [teacher(f"t-{n}", orgs=[{"sourcedId": f"sch-{n % 3 + 1}"}]) for n in range(1, 7)]
            server.script = Script(schools=schools, teachers=teachers)
            client.connect_manual(
                DISTRICT,
                server_url=server.url,
                client_id="canned-client",
                client_secret="canned-client-secret",
            )
            state = Canned(server, client, world, schools, teachers)
            assert sync(state).state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
            yield state


def reported(canned: Canned, run: sync_pb2.SyncRun, outcome: str) -> str:
    """What a succeeded run says for ``outcome``: skipped items, item warnings, notes or EW names."""
    if outcome == "notes":
        return " | ".join(run.summary.notes)
    if outcome == "applies":
        return " ".join(f"[{name}]" for name in names(canned.world))
    kind = sync_pb2.PLAN_ITEM_KIND_SKIP if outcome == "skips" else sync_pb2.PLAN_ITEM_KIND_UNSPECIFIED
    items = canned.client.list_run_items(run.name, kind=kind, page_size=500).items
    if outcome == "warns":
        return " | ".join(w for i in items for w in i.warnings)
    return " | ".join(
        f"{sync_pb2.SkipReason.Name(i.skip_reason)} {i.reason} {i.email} {i.display_name}" for i in items
    )


def kept(base: Rows, script: Rows, active_emails: set[str]) -> Rows:
    """The teacher rows the next payloads carry: ``base``, and the rows of ``script`` now EW teachers."""
    known = {row["sourcedId"] for row in base} | {row["email"].strip().lower() for row in base}
    arrived = [
        row
        for row in script
        if isinstance(row, dict)
        and isinstance(row.get("sourcedId"), str)
        and isinstance(row.get("email"), str)
        and row["email"].strip().lower() in active_emails
        and row["sourcedId"] not in known
        and row["email"].strip().lower() not in known
    ]
    return base + list({row["sourcedId"]: row for row in arrived}.values())


@pytest.mark.parametrize("index", range(len(PAYLOADS)), ids=[p.id for p in PAYLOADS])
def test_malformed_payload(canned: Canned, index: int) -> None:
    payload = PAYLOADS[index]
    fresh = teacher(f"fresh-{index}")
    script = payload.script(canned.schools, [*canned.teachers, fresh])
    canned.server.script = script
    before, active_before = canned.world.stack.roster.snapshot(), active_teachers(canned.world)

    run = sync(canned)

    active_after = active_teachers(canned.world)
    nobody_archived = set(active_before) <= set(active_after)
    if payload.outcome in ("fails", "review"):
        state = (
            sync_pb2.SYNC_RUN_STATE_FAILED
            if payload.outcome == "fails"
            else sync_pb2.SYNC_RUN_STATE_NEEDS_REVIEW
        )
        said = f"{run.error_message} {run.guard.message}"
        unchanged = canned.world.stack.roster.snapshot() == before
    else:
        state = sync_pb2.SYNC_RUN_STATE_SUCCEEDED
        said = reported(canned, run, payload.outcome)
        arrived = "fresh-" + str(index) + "@canned.test" in active_after.values()
        unchanged = nobody_archived and arrived and run.summary.teachers_archived == 0
    said = said if run.state == state else f"{run.error_message} {run.guard.message}"
    right = run.state == state and payload.fragment.lower() in said.lower()
    tally.record(TABLE, right=right, unchanged=unchanged)
    if run.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED:
        canned.teachers[:] = kept(canned.teachers, script.teachers, set(active_after.values()))
    assert right, (
        f"{sync_pb2.SyncRunState.Name(run.state)}: {said[:400]!r}; expected "
        f"{sync_pb2.SyncRunState.Name(state)} with {payload.fragment!r}"
    )
    archived = sorted(active_before[t] for t in set(active_before) - set(active_after))
    assert unchanged, f"EW changed: archived {archived}, {run.error_message}, summary {run.summary}"
