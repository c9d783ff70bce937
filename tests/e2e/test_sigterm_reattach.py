"""SIGTERM of the sync service during a SyncRosters stream: clients re-attach and lose no event.

The sync service process gets a real SIGTERM while a run reads ClassLink's teachers; it ends its
streams with UNAVAILABLE carrying ErrorInfo ``SERVER_SHUTTING_DOWN`` and RetryInfo, and a new
process is started on the same address (as an orchestrator restarts it). The Python client library
and the Node example (``clients/node/follow.js``) follow the run to its end through both processes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from ew.sync.v1 import sync_pb2, sync_service_pb2, sync_service_pb2_grpc
from google.rpc import error_details_pb2  # type: ignore[import-untyped,unused-ignore]
from grpc_status import rpc_status

from services.common.auth import AuthSettings, Role
from services.common.devtoken import mint_dev_token
from services.common.grpc_server import SHUTTING_DOWN_REASON
from tests.support.deployment import Deployment

pytestmark = pytest.mark.timeout(240)

TEACHER_PAGES = [{"kind": "slow", "delay": 0.3, "times": -1, "path": "teachers"}]


@pytest.fixture
def deployment(deploy: Callable[..., Deployment]) -> Deployment:
    """A connected deployment whose runs read 60 teachers in slow pages of 10."""
    running = deploy(sync_env={"EW_SYNC_ONEROSTER_PAGE_SIZE": "10"}, schools=3, teachers=60)
    running.connect()
    running.sandbox.set_faults(TEACHER_PAGES)
    return running


def token(deployment: Deployment) -> str:
    auth = AuthSettings(allow_dev_key=True)
    return mint_dev_token(
        auth, district_id=deployment.district_id, role=Role.DISTRICT_ADMIN, plan="district_premium"
    )


class Restart:
    """A restart of the sync service, in the background.

    Opens a raw WatchSyncRun, sends SIGTERM, records how the raw stream ended, waits for the
    process to exit and starts a new one on the same address.
    """

    def __init__(self, deployment: Deployment, run_name: str) -> None:
        self.deployment = deployment
        self.run_name = run_name
        self.ended_with: grpc.RpcError | None = None
        self.exit_code: int | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        old = self.deployment.children["sync"]
        metadata = (("authorization", f"Bearer {token(self.deployment)}"),)
        with grpc.insecure_channel(self.deployment.sync_target) as channel:
            stream: Iterator[Any] = sync_service_pb2_grpc.SyncServiceStub(channel).WatchSyncRun(
                sync_service_pb2.WatchSyncRunRequest(name=self.run_name), metadata=metadata, timeout=60
            )
            next(stream)  # the stream is open on the old process
            old.process.send_signal(signal.SIGTERM)
            try:
                for _ in stream:
                    pass
            except grpc.RpcError as error:
                self.ended_with = error
        self.exit_code = old.process.wait(timeout=60)
        self.deployment.start_sync()

    def join(self) -> None:
        self._thread.join(timeout=120)
        assert not self._thread.is_alive()


def assert_shut_down_politely(restart: Restart) -> None:
    """The old process exited cleanly and ended streams with the re-attach status."""
    assert restart.exit_code == 0
    error = restart.ended_with
    assert isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.UNAVAILABLE
    status = rpc_status.from_call(error)
    assert status is not None
    infos, retries = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(infos) and infos.reason == SHUTTING_DOWN_REASON
    assert infos.metadata["action"] == "re-attach"
    assert status.details[1].Unpack(retries) and retries.retry_delay.seconds >= 1


def test_the_python_client_follows_a_run_through_a_sigterm_of_the_sync_service(
    deployment: Deployment,
) -> None:
    events = deployment.sync.sync_rosters(deployment.district_id)
    seen: list[sync_pb2.SyncEvent] = []
    restart: Restart | None = None
    for event in events:
        seen.append(event)
        if restart is None and event.phase == sync_pb2.SYNC_PHASE_READING_TEACHERS:
            restart = Restart(deployment, event.run)
    assert restart is not None
    restart.join()

    assert [event.sequence for event in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, seen[-1].message
    assert events.reattach_count >= 1
    assert_shut_down_politely(restart)


def test_the_node_example_follows_a_run_through_a_sigterm_of_the_sync_service(
    deployment: Deployment, node_examples: Path
) -> None:
    node = subprocess.Popen(
        ["node", str(node_examples / "follow.js"), deployment.sync_target, token(deployment)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert node.stdout is not None
    printed: list[dict[str, Any]] = []
    restart: Restart | None = None
    for line in node.stdout:
        printed.append(json.loads(line))
        if restart is None and printed[-1].get("phase") == "SYNC_PHASE_READING_TEACHERS":
            restart = Restart(deployment, printed[-1]["run"])
    assert node.wait(timeout=120) == 0, printed[-1:]
    assert restart is not None
    restart.join()

    *events, summary = printed
    assert [event["sequence"] for event in events] == list(range(1, len(events) + 1))
    assert events[-1]["state"] == summary["state"] == "SYNC_RUN_STATE_SUCCEEDED"
    assert summary["reattached"] >= 1 and SHUTTING_DOWN_REASON in summary["reasons"]
    assert_shut_down_politely(restart)
