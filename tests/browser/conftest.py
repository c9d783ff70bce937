"""Fixtures of the browser suite: a real stack (``stack.py``) and Debian's Chromium driven by Playwright.

Playwright never downloads a browser here: it launches the ``chromium`` package's executable
(``EW_TEST_CHROMIUM``, default ``/usr/bin/chromium``). Screenshots of every screen are saved under
``var/browser-artifacts/`` (CI keeps them as artifacts).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.browser.stack import Stack, start_stack

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "var" / "browser-artifacts"
CHROMIUM = os.environ.get("EW_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=CHROMIUM)
    yield launched
    launched.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[[str], Page]]:
    """Open a URL in a fresh browser context (its own storage, as another browser would be)."""
    contexts = []

    def open_url(url: str) -> Page:
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        context.set_default_timeout(30_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(url)
        return page

    yield open_url
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Page, str], None]:
    """Save the page as ``var/browser-artifacts/<test>-<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def save(page: Page, name: str) -> None:
        page.screenshot(path=ARTIFACTS / f"{request.node.name}-{name}.png", full_page=True)

    return save


@pytest.fixture
def launch(database_url: Callable[[str], str], tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Start a stack with sandbox flags; every process stops after the test."""
    started: list[Stack] = []

    def make(**sandbox_flags: Any) -> Stack:
        started.append(start_stack(database_url, tmp_path, **sandbox_flags))
        return started[-1]

    yield make
    for stack in started:
        stack.stop()
