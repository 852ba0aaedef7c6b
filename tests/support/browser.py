"""Headless Chromium for the browser tests: Debian's package (never a downloaded browser) and its flags."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_PRESENT = shutil.which(CHROMIUM) is not None
CHROMIUM_MISSING = "Chromium is not installed (deploy/local/apt-packages.txt lists it; run make system-packages)"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}


def screenshot_path(tmp_path: Path, name: str) -> Path:
    """Where a test writes a screenshot: CITYSTREAM_SCREENSHOT_DIR (docs/screenshots when refreshing the docs)
    or the test's own temporary folder."""
    folder = Path(os.environ.get("CITYSTREAM_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
