"""Headless Debian Chromium for the browser tests, driven by Playwright's sync API."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Ceilings, in ms, for what the pages wait on: API calls to a stack that shares the machine with the browser and
# the tests. Playwright's waits return as soon as their condition holds, so only a slow run uses them; its default
# (5 s for an expect, 30 s for an action) is too tight for a loaded machine.
EXPECT_MS = 30_000  # an expect(...) assertion
ACTION_MS = 60_000  # an action or a navigation (click, fill, goto, wait_for)
LAUNCH_MS = 120_000  # Chromium's start


def chromium_path() -> str:
    """Debian's chromium (``make browser-deps`` installs it); CHROMIUM overrides the path."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.fail("Chromium is missing: run `make browser-deps` (make test does) or set CHROMIUM")
    return path


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched browser, closed after; expect(...) waits up to EXPECT_MS from now on."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, timeout=LAUNCH_MS)
        try:
            yield browser
        finally:
            browser.close()


def new_context(browser: Any, **options: Any) -> Any:
    """A browser context (``options`` as Playwright's ``new_context``) whose actions wait up to ACTION_MS."""
    context = browser.new_context(**options)
    context.set_default_timeout(ACTION_MS)
    return context
