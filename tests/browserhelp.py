"""Where the system's Chromium is and how to start it headless: for the browser tests and
``docs/screenshot.py``. Playwright drives this binary; it never downloads one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Headless, and nothing of Chromium's own talking to Google (updates, sync, field trials, QUIC probes).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    """SENTINEL_CHROMIUM if set (None if it is not a file), else the system's Chromium, if any."""
    given = os.environ.get("SENTINEL_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None
