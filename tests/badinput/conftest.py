"""The session's running stack for the bad-input tables, and their count table at the end of the session.

The tables share one stack (sandbox, roster and sync servers on real ports, on SQLite, or on
PostgreSQL under ``make test-integration``): a refused row leaves nothing for the next one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.badinput import tally
from tests.badinput.world import World, running_world
from tests.support.databases import FreshDatabases


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    databases = FreshDatabases(tmp_path_factory.mktemp("badinput"))
    try:
        with running_world(databases.make("roster"), databases.make("sync")) as running:
            yield running
    finally:
        databases.drop_all()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the bad-input count table when any bad-input row ran."""
    if tally.TABLES:
        terminalreporter.section("bad input: tried / right status / changed nothing")
        for line in tally.lines():
            terminalreporter.write_line(line)
