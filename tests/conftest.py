"""Shared by the cross-service tests: ``import helpers`` works (pytest runs with
--import-mode=importlib, which does not put test folders on sys.path), and an ``http`` client."""
import os
import sys
from pathlib import Path

import aiohttp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The chaos suite (tests/chaos) runs its own servers and takes minutes: only `make test-chaos`.
collect_ignore = [] if os.environ.get("PARLEY_CHAOS") == "1" else ["chaos"]


def pytest_report_header(config):
    """Up front: whether the browser tests will run, and if not why."""
    from browser_env import report_header

    return report_header()


@pytest.fixture
async def http():
    """An HTTP/WebSocket client session for one test."""
    async with aiohttp.ClientSession() as session:
        yield session
