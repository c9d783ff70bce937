"""Follow a run's events on a console: a progress bar on terminals, one line per phase elsewhere."""

from __future__ import annotations

from collections.abc import Iterable

from ew.client.views import phase_label, styled_state
from ew.sync.v1 import sync_pb2
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn


def _counts(event: sync_pb2.SyncEvent) -> str:
    return f"{event.done:,}/{event.total:,}" if event.total else ""


def follow(events: Iterable[sync_pb2.SyncEvent], console: Console) -> sync_pb2.SyncEvent | None:
    """Show every event until the run ends; returns the last event (None if there was none).

    The bar's percent is the run's own (monotonic, 100 only on success), labelled with the phase,
    the phase's done/total and the run's message.
    """
    if not console.is_terminal:
        return _follow_lines(events, console)
    last: sync_pb2.SyncEvent | None = None
    columns = (
        TextColumn("[bold]{task.description:<18}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[counts]:>15}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[message]}"),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("queued", total=100, counts="", message="")
        for event in events:
            last = event
            progress.update(
                task,
                completed=event.percent,
                description=phase_label(event.phase),
                counts=_counts(event),
                message=event.message,
            )
    if last is not None:
        console.print("Run ended:", styled_state(last.state))
    return last


def _follow_lines(events: Iterable[sync_pb2.SyncEvent], console: Console) -> sync_pb2.SyncEvent | None:
    """Non-terminal output (logs, pipes): one line whenever the phase or message changes."""
    last: sync_pb2.SyncEvent | None = None
    for event in events:
        if last is None or (event.phase, event.message) != (last.phase, last.message):
            counts = _counts(event)
            console.print(
                f"{event.percent:3d}% {phase_label(event.phase):<18} {counts:>15} {event.message}",
                highlight=False,
            )
        last = event
    if last is not None:
        console.print("Run ended:", styled_state(last.state))
    return last
