"""A PNG of a page, taken by a headless Chromium on this machine (Debian's `chromium` package).

Used by `interest-stream demo --screenshot FILE` for the live page: the browser runs the page's
script until the virtual-time budget is spent (its requests to the worker included), then shoots.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from streams.errors import ToolError

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> str:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    raise ToolError("no Chromium found for the screenshot: apt-get install chromium (or put it on PATH)")


def screenshot(url: str, out: Path, width: int = 1280, height: int = 1100, wait_ms: int = 5000) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [find_browser(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--window-size={width},{height}", f"--virtual-time-budget={wait_ms}",
           f"--screenshot={out.resolve()}", url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not out.exists():
        raise ToolError(f"chromium could not take the screenshot (exit {done.returncode}): {done.stderr[-500:]}")
    return out
