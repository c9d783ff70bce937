"""The progress view: a bar on terminals, one line per phase in logs, both ending with the outcome."""

from __future__ import annotations

import io

from ew.client.progress import follow
from ew.sync.v1 import sync_pb2
from rich.console import Console

RUN = "districts/d1/syncRuns/r1"


def events() -> list[sync_pb2.SyncEvent]:
    phases = [
        (sync_pb2.SYNC_PHASE_READING_TEACHERS, 10, 0, 0, "Data from ClassLink is syncing"),
        (sync_pb2.SYNC_PHASE_READING_TEACHERS, 25, 500, 1200, "Data from ClassLink is syncing"),
        (sync_pb2.SYNC_PHASE_SYNCING_TEACHERS, 70, 900, 1131, "Adding and updating teachers in EW"),
        (sync_pb2.SYNC_PHASE_DONE, 100, 0, 0, "Sync complete"),
    ]
    return [
        sync_pb2.SyncEvent(
            run=RUN,
            sequence=number,
            state=sync_pb2.SYNC_RUN_STATE_SUCCEEDED
            if phase == sync_pb2.SYNC_PHASE_DONE
            else sync_pb2.SYNC_RUN_STATE_RUNNING,
            phase=phase,
            percent=percent,
            done=done,
            total=total,
            message=message,
        )
        for number, (phase, percent, done, total, message) in enumerate(phases, start=1)
    ]


def test_a_terminal_shows_a_bar_that_ends_at_the_runs_final_percent_and_phase() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)

    last = follow(events(), console)

    assert last is not None and last.sequence == 4
    text = out.getvalue()
    assert "100%" in text and "done" in text and "Sync complete" in text
    assert "Run ended: succeeded" in text


def test_a_log_gets_one_line_per_phase_or_message_change() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=160)

    follow(events(), console)

    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines[:-1]] == ["reading", "syncing", "done"]
    assert lines[1].split()[0] == "70%" and "900/1,131" in lines[1]
    assert lines[-1] == "Run ended: succeeded"
