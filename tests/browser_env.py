"""Whether the browser tests (tests/browser) can run here: the playwright package, a Chromium
binary (Debian's; PARLEY_CHROMIUM overrides) and axe-core from npm (installed by make test)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

try:  # without it the browser fixture skips every test that would use expect
    from playwright.sync_api import expect
except ImportError:
    expect = None

ROOT = Path(__file__).resolve().parents[1]
AXE_SCRIPT = ROOT / "var" / "browser-tools" / "node_modules" / "axe-core" / "axe.min.js"


def find_chromium() -> str | None:
    explicit = os.environ.get("PARLEY_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def why_no_browser() -> str | None:
    """The reason the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (make install adds it)"
    if find_chromium() is None:
        return ("no Chromium found: install it (apt-get install chromium) or set "
                "PARLEY_CHROMIUM to a Chromium/Chrome binary")
    return None


def report_header() -> str:
    reason = why_no_browser()
    if reason:
        return f"browser tests: SKIPPED, {reason}"
    axe = "axe-core found" if AXE_SCRIPT.exists() else "axe-core missing (make test installs it)"
    return f"browser tests: Chromium at {find_chromium()}, {axe}"
