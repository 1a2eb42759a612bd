"""Fixtures of the chaos suite (``make test-chaos``; kept out of ``make test`` by
tests/conftest.py): private servers, the whole stack on them, and the stream's accounts.

Tunable from the environment: CHAOS_CLIENTS (20), CHAOS_ROOMS (4), CHAOS_RATE (sends per
second per client, 1.0), CHAOS_PORT_BASE (first of the private servers' ports, 15470)."""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from parley_common.private_servers import PrivateServers

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import Stack  # noqa: E402
from stream import Api  # noqa: E402

CLIENTS = int(os.environ.get("CHAOS_CLIENTS", "20"))
PORT_BASE = int(os.environ.get("CHAOS_PORT_BASE", "15470"))


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("chaos")
    with PrivateServers(workdir, PORT_BASE, node="parley-chaos") as servers:
        running = Stack(workdir, servers.rabbit, servers.redis, servers.postgres).start()
        yield running
        running.stop()


@pytest.fixture(scope="session")
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="session")
async def api(stack, http):
    return Api(http, stack.gateway_urls)


@pytest.fixture(scope="session")
async def accounts(api):
    """(username, access token, user) of the stream's users."""
    found = []
    for _ in range(CLIENTS):
        name = f"chaos{uuid.uuid4().hex[:10]}"
        token, user = await api.account(name)
        found.append((name, token, user))
    return found
