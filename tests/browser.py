"""Headless Chromium for the tests that look at a page: Debian's, driven by Playwright."""

from __future__ import annotations

import shutil

import pytest


def chromium() -> str:
    """Debian's Chromium; its absence fails the test (a skip would hide it in CI)."""
    found = shutil.which("chromium") or shutil.which("/usr/bin/chromium")
    if found is None:
        pytest.fail("Chromium is not installed: run `make chromium` (Debian's chromium package)")
    return found
