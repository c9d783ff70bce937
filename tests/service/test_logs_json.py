"""The log of one sync, as an operator's log shipper reads it: JSON lines that name the run."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ew.sync.v1 import sync_pb2

from services.common.logs import LogFormat, LogLevel, LogSettings, configure_logging
from tests.support.sync_stack import SyncStack, paged_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with paged_stack(database_url) as running:
        yield running


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    httpx_level = logging.getLogger("httpx").level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(httpx_level)


def logged_sync(stack: SyncStack, level: LogLevel) -> tuple[str, list[str]]:
    """Run one sync with the process logging at ``level`` in JSON; its run id and the lines written."""
    buffer = io.StringIO()
    configure_logging(LogSettings(level=level, format=LogFormat.JSON), stream=buffer)
    events = stack.client.sync_rosters(stack.district_id)
    last = list(events)[-1]
    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
    assert events.run is not None
    return events.run.name.rsplit("/", 1)[-1], buffer.getvalue().splitlines()


def run_lines(lines: list[str], run_id: str) -> list[dict[str, Any]]:
    return [record for record in map(json.loads, lines) if record.get("run_id") == run_id]


@pytest.mark.usefixtures("restore_logging")
def test_a_sync_at_info_writes_json_lines_all_naming_the_run_and_no_per_page_lines(stack: SyncStack) -> None:
    run_id, lines = logged_sync(stack, LogLevel.INFO)

    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert records, "the sync logged nothing"
    for record in records:
        assert {"timestamp", "level", "logger", "message"} <= record.keys(), record
        assert record["run_id"] == run_id, record
        assert record["district"] == stack.district_id, record
    assert any("committed" in record["message"] for record in records)
    assert not [record for record in records if record["logger"].startswith("httpx")]


@pytest.mark.usefixtures("restore_logging")
def test_at_debug_each_oneroster_page_has_its_line_carrying_the_run(stack: SyncStack) -> None:
    run_id, lines = logged_sync(stack, LogLevel.DEBUG)

    pages = [
        record
        for record in run_lines(lines, run_id)
        if record["logger"] == "httpx" and "/teachers" in record["message"]
    ]
    assert len(pages) >= 6  # 60 teachers in pages of 10
    assert all(record["level"] == "INFO" for record in pages)
