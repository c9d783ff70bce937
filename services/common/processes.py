"""Real service processes on real ports: the demo's, the end-to-end suites' and the benchmarks'.

``ProcessGroup`` starts ``python -m <module>`` children with a shared environment, captures each
one's output in a log file under a temporary directory, waits for gRPC health SERVING with a
deadline, and stops them (SIGTERM, then SIGKILL) newest first. A failing wait includes the end of
the child's log, so a red test says why the process did not come up.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE = 60.0
STOP_GRACE = 10.0


def free_port() -> int:
    """A port nothing listens on right now (the child binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def free_address() -> str:
    """``127.0.0.1:<free port>``."""
    return f"127.0.0.1:{free_port()}"


class ProcessFailed(AssertionError):
    """A child did not start, or exited when it should be running."""


@dataclass
class Child:
    """One child process and its log."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        """The end of its log."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log(self) -> str:
        """Its whole log."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def running(self) -> bool:
        """True while the process has not exited."""
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful shutdown (a crash)."""
        if self.running:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def terminate(self, grace: float = STOP_GRACE) -> int:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit code."""
        if self.running:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@dataclass
class ProcessGroup:
    """Children sharing one environment; ``stop()`` ends them newest first."""

    workdir: Path
    environment: dict[str, str]
    children: list[Child] = field(default_factory=list)
    _starts: dict[str, int] = field(default_factory=dict)

    def start(
        self,
        name: str,
        module: str,
        *args: str,
        env: dict[str, str] | None = None,
        capture_stdout: bool = False,
    ) -> Child:
        """Start ``python -m module args...`` with the group's environment (plus ``env``).

        In its own session, so a Ctrl-C meant for the parent does not reach it. With
        ``capture_stdout`` its standard output is a pipe (``first_line``) and only stderr is logged.
        """
        count = self._starts.get(name, 0) + 1
        self._starts[name] = count
        log_path = self.workdir / f"{name}-{count}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=REPO_ROOT,
                env={**self.environment, **(env or {})},
                stdout=subprocess.PIPE if capture_stdout else log,
                stderr=log if capture_stdout else subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def stop(self) -> None:
        """SIGTERM every running child, newest first; SIGKILL what outlives the grace period."""
        for child in reversed(self.children):
            if child.running:
                child.process.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for child in reversed(self.children):
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            if child.process.stdout is not None:
                child.process.stdout.close()
        self.children.clear()


@contextmanager
def process_group(workdir: Path, environment: dict[str, str]) -> Iterator[ProcessGroup]:
    """A group whose children are stopped when the block ends."""
    group = ProcessGroup(workdir, environment)
    try:
        yield group
    finally:
        group.stop()


def base_environment(extra: dict[str, str]) -> dict[str, str]:
    """The test process's environment with the repository on PYTHONPATH, plus ``extra``."""
    pythonpath = os.pathsep.join(
        filter(None, [str(REPO_ROOT), str(REPO_ROOT / "clients" / "src"), os.environ.get("PYTHONPATH")])
    )
    return {**os.environ, "PYTHONPATH": pythonpath, **extra}


def wait_serving(child: Child, target: str, *, deadline: float = START_DEADLINE) -> None:
    """Poll gRPC health at ``target`` until SERVING; ProcessFailed if the child exits or time runs out."""
    end = time.monotonic() + deadline
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            if not child.running:
                raise ProcessFailed(
                    f"{child.name} exited with {child.process.returncode}:\n{child.log_tail()}"
                )
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise ProcessFailed(
                    f"{child.name} was not SERVING within {deadline:.0f} s:\n{child.log_tail()}"
                )
            try:
                status = health.Check(health_pb2.HealthCheckRequest(), timeout=min(1.0, remaining)).status
            except grpc.RpcError:
                status = health_pb2.HealthCheckResponse.UNKNOWN
            if status == health_pb2.HealthCheckResponse.SERVING:
                return
            ready = grpc.channel_ready_future(channel)
            try:
                ready.result(timeout=min(0.2, max(remaining, 0.01)))
            except grpc.FutureTimeoutError:
                ready.cancel()


def first_line(child: Child, *, deadline: float = START_DEADLINE) -> str:
    """The first stdout line of a ``capture_stdout`` child; ProcessFailed if it exits or stays silent."""
    stdout = child.process.stdout
    assert stdout is not None, "start the child with capture_stdout=True"
    end = time.monotonic() + deadline
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        while time.monotonic() < end:
            if selector.select(timeout=0.2):
                line = stdout.readline()
                if line:
                    return line.decode()
            if not child.running:
                break
    raise ProcessFailed(f"{child.name} did not start:\n{child.log_tail()}")


def wait_for_log(child: Child, text: str, *, deadline: float = START_DEADLINE) -> None:
    """Poll the child's log until it contains ``text`` (a worker announcing it started)."""
    end = time.monotonic() + deadline
    while text not in child.log():
        if not child.running:
            raise ProcessFailed(f"{child.name} exited with {child.process.returncode}:\n{child.log_tail()}")
        if time.monotonic() > end:
            raise ProcessFailed(
                f"{child.name} did not log {text!r} within {deadline:.0f} s:\n{child.log_tail()}"
            )
        time.sleep(0.05)
