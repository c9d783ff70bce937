"""A PostgreSQL cluster of a test's own, on a spare port, that the test may stop and start again.

Built with the machine's ``initdb``/``pg_ctl`` (``/usr/lib/postgresql/*/bin``) in a temporary
folder; trust authentication on 127.0.0.1 only. PostgreSQL refuses to run as root, so as root the
cluster runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from services.common.processes import free_port


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


@dataclass
class OwnPostgres:
    """A running cluster: its URLs, and stop/start for outage tests."""

    folder: Path
    port: int
    bin_dir: Path
    user: str | None

    def run(self, *args: str, check: bool = True) -> None:
        """Run one of the PostgreSQL binaries (``args[0]``) as the cluster's user."""
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=check, capture_output=True, timeout=60)

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` on this cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create ``name`` and return its URL."""
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
        data, log = str(self.folder / "data"), str(self.folder / "log")
        self.run("pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "start")

    def stop(self, *, check: bool = True) -> None:
        """Stop the server at once (clients are disconnected)."""
        self.run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop", check=check)


@contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    """A fresh cluster, removed afterwards."""
    user = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="ew-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    cluster = OwnPostgres(folder, free_port(), _bin_dir(), user)
    try:
        cluster.run("initdb", "-D", str(folder / "data"), "-U", "postgres", "--auth=trust", "--no-sync")
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop(check=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
