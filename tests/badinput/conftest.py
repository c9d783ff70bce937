"""The session's running stack for the bad-input tables, and their count table at the end of the session.

The gRPC and gateway tables share one stack (sandbox, roster and sync servers on real ports,
SQLite files): every row is refused, so no row leaves anything for the next.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.badinput import tally
from tests.badinput.world import World, running_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("badinput")) as running:
        yield running


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the bad-input count table when any bad-input row ran."""
    if tally.TABLES:
        terminalreporter.section("bad input: tried / right status / changed nothing")
        for line in tally.lines():
            terminalreporter.write_line(line)
