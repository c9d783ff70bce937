"""ew-sync against real servers: what an administrator types, sees, and gets as an exit code."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from ew.client.cli import EXIT_FAILED, EXIT_NEEDS_REVIEW, app
from ew.sync.v1 import sync_pb2
from typer.testing import CliRunner, Result

from services.common.auth import Role
from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)

RUN_ID = re.compile(r"ew-sync sync --approve ([0-9a-f-]{36})")


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with sync_stack(
        database_url("roster"), database_url("sync"), connect=False, schools=4, teachers=60
    ) as running:
        yield running


def ew_sync(stack: SyncStack, *args: str, token: str | None = None, stdin: str | None = None) -> Result:
    """Run ``ew-sync`` as the district's admin (or with ``token``) against the stack's servers."""
    return CliRunner().invoke(
        app,
        ["--target", stack.server.target, "--roster-target", stack.roster.address, *args],
        input=stdin,
        env={"EW_TOKEN": token or stack.token(), "COLUMNS": "250", "EW_DISTRICT": None},
    )


def connect(stack: SyncStack, secret: str | None = None) -> Result:
    tenant = stack.sandbox.tenant()
    return ew_sync(
        stack,
        "connect",
        "--server-url",
        tenant.server_url,
        "--client-id",
        tenant.client_id,
        stdin=f"{secret or tenant.client_secret}\n",
    )


def test_connect_map_preview_sync_and_history(stack: SyncStack) -> None:
    secret = stack.sandbox.tenant().client_secret
    connected = connect(stack)
    assert connected.exit_code == 0, connected.output
    assert "Connected Successfully! Your ClassLink account is connected." in connected.stdout
    assert secret not in connected.output

    shown = ew_sync(stack, "connection")
    assert shown.exit_code == 0, shown.output
    assert stack.sandbox.tenant().client_id in shown.stdout and secret not in shown.stdout

    school = next(o for o in stack.sandbox.roster()["orgs"] if o["type"] == "school")
    (ew_school,) = stack.roster.client.batch_create_schools(stack.district_id, [f"{school['name']} Campus"])
    mapping = ew_sync(stack, "mapping")
    assert mapping.exit_code == 0, mapping.output
    assert "0 of 4 ClassLink schools are mapped." in mapping.stdout
    assert f"{school['name']} Campus" in mapping.stdout

    mapped = ew_sync(stack, "map", school["sourcedId"], ew_school.school_id)
    assert mapped.exit_code == 0, mapped.output
    assert "manual" in mapped.stdout
    assert "1 of 4 ClassLink schools are mapped." in ew_sync(stack, "mapping").stdout

    preview = ew_sync(stack, "preview", "--kind", "create-school")
    assert preview.exit_code == 0, preview.output
    assert "Run ended: previewed" in preview.stdout
    assert re.search(r"Schools created\s*│\s*3 ", preview.stdout), preview.stdout
    assert preview.stdout.count("create school") == 3

    synced = ew_sync(stack, "sync")
    assert synced.exit_code == 0, synced.output
    assert "Run ended: succeeded" in synced.stdout
    assert re.search(r"Schools created\s*│\s*3 ", synced.stdout), synced.stdout
    added = int(re.search(r"Teachers added\s*│\s*(\d+)", synced.stdout).group(1))  # type: ignore[union-attr]
    assert added == sum(1 for _ in stack.roster.client.list_teachers(stack.district_id)) > 0

    schools = ew_sync(stack, "schools")
    assert schools.exit_code == 0, schools.output
    assert all(o["name"] in schools.stdout for o in stack.sandbox.roster()["orgs"] if o["type"] == "school")
    teachers = ew_sync(stack, "teachers", "--limit", "3")
    assert teachers.exit_code == 0, teachers.output
    assert "First 3; --limit shows more." in teachers.stdout

    runs = ew_sync(stack, "runs")
    assert runs.exit_code == 0, runs.output
    run, preview_job = stack.client.list_runs(stack.district_id).runs
    assert run.run_id in runs.stdout and "succeeded" in runs.stdout
    assert preview_job.trigger == sync_pb2.SYNC_TRIGGER_PREVIEW and preview_job.run_id in runs.stdout

    details = ew_sync(stack, "run", run.run_id, "--kind", "add-teacher", "--page-size", "5")
    assert details.exit_code == 0, details.output
    assert run.name in details.stdout and details.stdout.count("add teacher") == 5

    replay = ew_sync(stack, "watch", run.run_id, "--after", "0")
    assert replay.exit_code == 0, replay.output
    assert "Run ended: succeeded" in replay.stdout
    caught_up = ew_sync(stack, "watch", run.run_id, "--after", str(run.last_sequence))
    assert caught_up.exit_code == 0, caught_up.output
    assert "Sync summary" in caught_up.stdout and f"Run {run.run_id}" in caught_up.stdout
    assert "Run ended" not in caught_up.stdout


def test_a_detached_preview_job_is_shown_later_by_its_id(stack: SyncStack) -> None:
    assert connect(stack).exit_code == 0

    detached = ew_sync(stack, "preview", "--detach")
    assert detached.exit_code == 0, detached.output
    (job,) = stack.client.list_runs(stack.district_id).runs
    assert f"ew-sync preview --job {job.run_id}" in detached.stdout
    list(stack.client.watch_run(job.name))

    shown = ew_sync(
        stack, "preview", "--job", job.run_id, "--kind", "add-teacher", "--page-size", "4", "--all"
    )
    assert shown.exit_code == 0, shown.output
    added = stack.client.get_run(job.name).summary.teachers_added
    assert added > 4 and shown.stdout.count("add teacher") == added
    # Showing it started nothing: the district still has its one preview job, and no sync.
    assert [run.name for run in stack.client.list_runs(stack.district_id).runs] == [job.name]


def test_a_run_that_needs_review_exits_3_and_says_how_to_approve(stack: SyncStack) -> None:
    assert connect(stack).exit_code == 0
    assert ew_sync(stack, "sync").exit_code == 0
    teachers = [u for u in stack.sandbox.roster()["users"] if u["role"] == "teacher"]
    stack.sandbox.mutate([{"op": "remove_user", "sourcedId": u["sourcedId"]} for u in teachers[:20]])

    review = ew_sync(stack, "sync")

    assert review.exit_code == EXIT_NEEDS_REVIEW, review.output
    assert "Needs review" in review.stdout
    approval = RUN_ID.search(review.stdout)
    assert approval is not None, review.stdout
    approved = ew_sync(stack, "sync", "--approve", approval.group(1))
    assert approved.exit_code == 0, approved.output
    assert re.search(r"Teachers archived\s*│\s*[1-9]", approved.stdout), approved.stdout


def test_wrong_credentials_print_the_servers_reason_and_store_nothing(stack: SyncStack) -> None:
    refused = connect(stack, secret="not-the-secret")

    assert refused.exit_code == EXIT_FAILED
    assert "Error:" in refused.stderr and "Traceback" not in refused.output
    assert "not-the-secret" not in refused.output
    missing = ew_sync(stack, "connection")
    assert missing.exit_code == EXIT_FAILED and "NOT_FOUND" in missing.stderr


def test_a_teacher_is_told_sync_is_for_district_admins(stack: SyncStack) -> None:
    denied = ew_sync(stack, "runs", token=stack.token(role=Role.TEACHER))

    assert denied.exit_code == EXIT_FAILED
    assert "PERMISSION_DENIED" in denied.stderr and "District Premium" in denied.stderr


def test_sync_detach_starts_the_run_and_returns_its_name(stack: SyncStack) -> None:
    assert connect(stack).exit_code == 0

    started = ew_sync(stack, "sync", "--detach")

    assert started.exit_code == 0, started.output
    run = stack.client.list_runs(stack.district_id).runs[0]
    assert run.name in started.stdout and f"ew-sync watch {run.run_id}" in started.stdout
    assert list(stack.client.watch_run(run.name))[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED


def test_disconnect_removes_the_connection(stack: SyncStack) -> None:
    assert connect(stack).exit_code == 0

    disconnected = ew_sync(stack, "disconnect", "--yes")

    assert disconnected.exit_code == 0, disconnected.output
    gone = ew_sync(stack, "connection")
    assert gone.exit_code == EXIT_FAILED and "NOT_FOUND" in gone.stderr
