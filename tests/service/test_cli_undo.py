"""ew-sync revert, audit, history, merge-school and map --merge-created against real servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from ew.client.cli import app
from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2
from typer.testing import CliRunner, Result

from services.oneroster_sandbox.truth import syncable_teachers
from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with sync_stack(database_url("roster"), database_url("sync"), schools=2, teachers=10) as running:
        yield running


def ew_sync(stack: SyncStack, *args: str) -> Result:
    return CliRunner().invoke(
        app,
        ["--target", stack.server.target, "--roster-target", stack.roster.address, *args],
        env={"EW_TOKEN": stack.token(), "COLUMNS": "250", "EW_DISTRICT": None},
    )


def synced(stack: SyncStack) -> sync_pb2.SyncEvent:
    last = list(stack.client.sync_rosters(stack.district_id))[-1]
    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
    return last


def test_revert_preview_then_revert_then_audit_and_history(stack: SyncStack) -> None:
    first = synced(stack)
    leaving = syncable_teachers(stack.sandbox.roster())[0]
    teacher = next(
        t for t in stack.roster.client.list_teachers(stack.district_id) if t.email == leaving["email"]
    )
    stack.sandbox.mutate([{"op": "remove_user", "sourcedId": leaving["sourcedId"]}])
    archiving = synced(stack)
    run_id = archiving.run.rpartition("/")[2]

    preview = ew_sync(stack, "revert", run_id, "--preview")
    assert preview.exit_code == 0, preview.output
    assert "The revert would undo" in preview.stdout and "archived" in preview.stdout
    assert stack.roster.client.get_teacher(teacher.name).state == roster_pb2.TEACHER_STATE_ARCHIVED

    reverted = ew_sync(stack, "revert", run_id)
    assert reverted.exit_code == 0, reverted.output
    assert "succeeded" in reverted.stdout
    assert stack.roster.client.get_teacher(teacher.name).state == roster_pb2.TEACHER_STATE_ACTIVE
    again = ew_sync(stack, "revert", run_id)
    assert again.exit_code == 1 and "reverted already" in again.output

    trail = ew_sync(stack, "audit", "--action", "revert-run")
    assert trail.exit_code == 0, trail.output
    assert trail.stdout.count("revert run") == 2 and "failed precondition" in trail.stdout

    # The revert's roster writes carry the sync service's identity: the sync's trail has them, the
    # roster's (people's own unarchives and archives) does not.
    roster_trail = ew_sync(stack, "audit", "--roster")
    assert roster_trail.exit_code == 0, roster_trail.output
    assert "Roster audit trail" in roster_trail.stdout and "unarchive" not in roster_trail.stdout

    history = ew_sync(stack, "history", teacher.teacher_id)
    assert history.exit_code == 0, history.output
    for seen in ("added", "archived", "restored", first.run.rpartition("/")[2], run_id, "revert"):
        assert seen in history.stdout


def test_merge_school_and_map_with_merge_created(stack: SyncStack) -> None:
    schools = [o for o in stack.sandbox.roster()["orgs"] if o["type"] == "school"]
    first, second = stack.roster.client.batch_create_schools(
        stack.district_id, [f"{s['name']} (EW)" for s in schools[:2]]
    )
    synced(stack)
    created = {
        e.classlink_school_id: e.ew_school_id
        for e in stack.client.list_school_mappings(stack.district_id).school_mappings
    }

    mapped = ew_sync(stack, "map", schools[0]["sourcedId"], first.school_id)
    assert mapped.exit_code == 0, mapped.output
    assert f"ew-sync merge-school {created[schools[0]['sourcedId']]} {first.school_id}" in mapped.stdout
    merged = ew_sync(stack, "merge-school", created[schools[0]["sourcedId"]], first.school_id)
    assert merged.exit_code == 0, merged.output
    assert "Merged" in merged.stdout

    both = ew_sync(stack, "map", schools[1]["sourcedId"], second.school_id, "--merge-created")
    assert both.exit_code == 0, both.output
    assert "into it" in both.stdout
    states = {s.school_id: s.state for s in stack.roster.client.list_schools(stack.district_id)}
    assert {states[created[s["sourcedId"]]] for s in schools[:2]} == {roster_pb2.SCHOOL_STATE_ARCHIVED}
