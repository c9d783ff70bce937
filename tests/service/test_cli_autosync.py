"""``ew-sync force`` and ``ew-sync autosync`` against real servers: what an administrator types and sees."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from ew.client.cli import EXIT_FAILED, app
from ew.sync.v1 import sync_pb2
from typer.testing import CliRunner, Result

from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with sync_stack(
        database_url("roster"),
        database_url("sync"),
        settings={"scheduler_embedded": False},
        schools=2,
        teachers=20,
    ) as running:
        yield running


def ew_sync(stack: SyncStack, *args: str) -> Result:
    return CliRunner().invoke(
        app,
        ["--target", stack.server.target, *args],
        env={"EW_TOKEN": stack.token(), "COLUMNS": "250", "EW_DISTRICT": None},
    )


def test_force_follows_the_forced_run_to_its_end(stack: SyncStack) -> None:
    forced = ew_sync(stack, "force", "--follow")

    assert forced.exit_code == 0, forced.output
    assert "Sync summary" in forced.stdout
    runs = stack.client.list_runs(stack.district_id).runs
    assert [run.trigger for run in runs] == [sync_pb2.SYNC_TRIGGER_FORCE]
    assert runs[0].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED


def test_autosync_is_refused_before_a_first_sync_then_turned_on_shown_and_off(stack: SyncStack) -> None:
    early = ew_sync(stack, "autosync", "on", "--timezone", "America/New_York")
    assert early.exit_code == EXIT_FAILED
    assert "Run a first successful sync before turning on AutoSync" in early.stderr
    assert list(stack.client.sync_rosters(stack.district_id))[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED

    on = ew_sync(
        stack,
        "autosync",
        "on",
        "--cadence",
        "weekly",
        "--day",
        "sun",
        "--hour",
        "22",
        "--timezone",
        "America/New_York",
        "--pause",
        "2027-06-15..2027-08-20",
        "--pause",
        "2027-12-20..2028-01-02",
    )

    assert on.exit_code == 0, on.output
    assert "weekly on Sunday" in on.stdout and "22:00 America/New_York" in on.stdout
    assert "2027-06-15 → 2027-08-20" in on.stdout and "2027-12-20 → 2028-01-02" in on.stdout
    stored = stack.client.get_autosync(stack.district_id)
    assert stored.enabled and stored.day == 7 and len(stored.pause_windows) == 2
    assert time_label_of(stored) in ew_sync(stack, "autosync").stdout

    # Changing one option keeps the others; a new cadence starts from its default day.
    monthly = ew_sync(stack, "autosync", "on", "--cadence", "monthly")
    assert monthly.exit_code == 0, monthly.output
    assert "monthly on day 1" in monthly.stdout and "22:00 America/New_York" in monthly.stdout

    cleared = ew_sync(stack, "autosync", "on", "--pause", "")
    assert cleared.exit_code == 0, cleared.output
    assert "Paused" in cleared.stdout and "never" in cleared.stdout
    assert list(stack.client.get_autosync(stack.district_id).pause_windows) == []

    off = ew_sync(stack, "autosync", "off")
    assert off.exit_code == 0, off.output
    assert "none (AutoSync is off)" in off.stdout
    assert not stack.client.get_autosync(stack.district_id).enabled


def test_bad_autosync_options_say_what_to_type(stack: SyncStack) -> None:
    pause = ew_sync(stack, "autosync", "on", "--pause", "2027-06-15")
    assert pause.exit_code == EXIT_FAILED and "expected START..END" in pause.stderr
    day = ew_sync(stack, "autosync", "on", "--day", "someday")
    assert day.exit_code == EXIT_FAILED and "weekday (mon … sun)" in day.stderr
    no_switch = ew_sync(stack, "autosync", "--hour", "4")
    assert no_switch.exit_code == EXIT_FAILED and "ew-sync autosync on" in no_switch.stderr


def time_label_of(settings: sync_pb2.AutoSync) -> str:
    return settings.next_run_time.ToDatetime(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
