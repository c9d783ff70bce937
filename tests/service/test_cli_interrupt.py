"""Ctrl-C during `ew-sync sync` stops following, not the sync, and says how to follow it again."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from ew.sync.v1 import sync_pb2

from tests.support.sync_stack import SyncStack, paged_stack

pytestmark = pytest.mark.timeout(120)

RESUME = re.compile(r"`ew-sync watch (\S+) --after (\d+)`")


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with paged_stack(database_url) as running:
        yield running


def test_ctrl_c_leaves_the_run_going_and_prints_where_to_resume(stack: SyncStack) -> None:
    # Slow teacher pages keep the run busy while the administrator presses Ctrl-C.
    stack.sandbox.set_faults([{"kind": "slow", "delay": 0.7, "times": -1, "path": "teachers"}])
    cli = subprocess.Popen(
        [sys.executable, "-m", "ew.client.cli", "sync"],
        env=stack.cli_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Python keeps SIGINT ignored if its parent ignored it; a terminal's Ctrl-C never is.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert cli.stdout is not None
        for line in cli.stdout:
            if "reading teachers" in line:
                break
        cli.send_signal(signal.SIGINT)
        output, errors = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()

    assert cli.returncode == 130, errors
    assert "Traceback" not in errors
    resume = RESUME.search(output)
    assert resume is not None, output
    rest = list(stack.client.watch_run(resume.group(1), after_sequence=int(resume.group(2))))
    assert rest[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    assert rest[0].sequence == int(resume.group(2)) + 1
