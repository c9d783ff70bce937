"""One trace follows a sync from the RPC that starts it through the worker to the roster's commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ew.sync.v1 import sync_pb2

from services.common.tracing import configure_tracing

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[2]


def test_tracing_is_off_without_an_otlp_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert configure_tracing("ew-test") is False


def test_one_trace_spans_the_sync_rpc_the_worker_and_the_roster_commit(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.traced_sync", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "clients" / "src")])),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    *spans, outcome = (json.loads(line) for line in done.stdout.splitlines())
    assert outcome["state"] == sync_pb2.SYNC_RUN_STATE_SUCCEEDED

    def trace_of(name: str, kind: str) -> str:
        (found,) = {span["trace_id"] for span in spans if span["name"] == name and span["kind"] == kind}
        return str(found)

    started = trace_of("/ew.sync.v1.SyncService/SyncRosters", "SERVER")
    assert trace_of("sync run", "INTERNAL") == started  # through the Dramatiq message
    assert trace_of("/ew.roster.v1.RosterService/CommitChangeSet", "SERVER") == started  # into the roster
    in_trace = [span for span in spans if span["trace_id"] == started]
    assert any(span["kind"] == "CLIENT" and span["name"].startswith("GET") for span in in_trace)  # httpx
    # The commit's SQL in the roster's database (SQLAlchemy spans are named "<statement> <database>").
    assert any(span["name"].startswith("INSERT") and "roster.db" in span["name"] for span in in_trace)
