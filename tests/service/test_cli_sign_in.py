"""ew-sync connect --sign-in: print ClassLink's URL, take the pasted redirect address, connect."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.sandbox import REDIRECT_URI, start_sandbox
from tests.support.sync_stack import SyncStack, sign_in_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with start_sandbox(schools=3, teachers=20) as sandbox:
        with sign_in_stack(database_url, sandbox) as running:
            yield running


def test_sign_in_connects_with_the_pasted_redirect_address(stack: SyncStack) -> None:
    cli = subprocess.Popen(
        [sys.executable, "-m", "ew.client.cli", "connect", "--sign-in", "--redirect-uri", REDIRECT_URI],
        env=stack.cli_environment(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert cli.stdout is not None and cli.stdin is not None
        lines = [cli.stdout.readline(), cli.stdout.readline()]
        assert lines[0].startswith("Open this URL"), lines
        authorization_url = lines[1].strip()
        # The administrator signs in to ClassLink in a browser, which lands on the redirect address.
        signed_in = httpx.get(authorization_url, follow_redirects=False, timeout=30)
        assert signed_in.status_code == 302
        output, errors = cli.communicate(signed_in.headers["location"] + "\n", timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()

    assert cli.returncode == 0, errors
    assert "Connected Successfully! Your ClassLink account is connected." in output
    connection = stack.client.get_connection(stack.district_id)
    assert connection.tenant_id == stack.sandbox.tenant().tenant_id
    assert connection.server_url == stack.sandbox.tenant().server_url
