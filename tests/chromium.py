"""Headless Chromium for the tests of rustlab's HTML pages (the audit page, reports).

``from chromium import find_chromium, screenshot, dump_dom`` (conftest puts tests/ on sys.path).
Each call runs a fresh browser with a throwaway profile and no network chatter; the page gets
``VIRTUAL_TIME_BUDGET_MS`` of virtual time to run its scripts and load its images.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

TIMEOUT_S = 60
VIRTUAL_TIME_BUDGET_MS = 3000
CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")


def find_chromium() -> str | None:
    """The Chromium binary, or None where none is installed (the browser tests then skip)."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _url(target) -> str:
    """A URL as is; a path as a file:// URL."""
    text = str(target)
    if "://" in text:
        return text
    return Path(text).resolve().as_uri()


def _run(args: list[str], url: str) -> subprocess.CompletedProcess:
    binary = find_chromium()
    if binary is None:
        raise RuntimeError("chromium not found (looked for " + ", ".join(CANDIDATES) + ")")
    with tempfile.TemporaryDirectory(prefix="rustlab-chromium-") as profile:
        cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}", *args, url]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace",
                                  timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"chromium did not finish {url} within {TIMEOUT_S} s: {' '.join(cmd)}") from exc
    if proc.returncode != 0:
        raise RuntimeError(f"chromium failed (exit {proc.returncode}) on {url}: {' '.join(cmd)}\n"
                           f"{proc.stderr[-3000:]}")
    return proc


def screenshot(html_path, png_path, width: int = 1280, height: int = 900) -> Path:
    """A PNG of the page as a ``width`` x ``height`` window shows it; returns ``png_path``.
    ``html_path`` may also be a URL (e.g. a file:// URL with a #fragment)."""
    png_path = Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.unlink(missing_ok=True)
    # all compositor stages before the capture: without it a busy machine can leave a tile unpainted
    proc = _run([f"--screenshot={png_path}", f"--window-size={width},{height}", "--hide-scrollbars",
                 "--run-all-compositor-stages-before-draw"],
                _url(html_path))
    if not png_path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {png_path}:\n{proc.stderr[-3000:]}")
    return png_path


def dump_dom(url) -> str:
    """The page's DOM, serialised after its scripts ran (``--dump-dom``). ``url``: a URL or a path."""
    return _run(["--dump-dom"], _url(url)).stdout
