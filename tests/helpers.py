"""Shared helpers of the end-to-end tests: unique names, accounts, a tiny JSON client, and
reading WebSocket frames.

    async with aiohttp.ClientSession() as http:
        alice = await new_user(http, suite.url)          # registered and logged in
        reply = await alice.post("/api/v1/rooms", {"name": unique("r"), "kind": "public"})
        assert reply.status == 201, reply
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

PASSWORD = "correct horse 1"
_NO_BODY = object()


def unique(prefix: str = "u") -> str:
    """A fresh name that is a valid username and room name."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def ws_url(base: str) -> str:
    """The WebSocket endpoint of a gateway at ``base`` (http://host:port)."""
    return base.replace("http://", "ws://") + "/api/v1/ws"


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any

    @property
    def error(self) -> dict:
        return self.body["error"]

    def __repr__(self) -> str:  # shows up in assertion messages
        return f"<Reply {self.status} {self.body!r}>"


@dataclass
class Client:
    """JSON calls to one gateway, optionally as one logged-in user."""
    http: aiohttp.ClientSession
    base: str
    token: str | None = None
    user: dict = field(default_factory=dict)
    password: str = PASSWORD

    @property
    def id(self) -> str:
        return self.user["id"]

    def at(self, base: str) -> "Client":
        """The same user talking to another gateway instance."""
        return Client(self.http, base, self.token, self.user, self.password)

    async def request(self, method: str, path: str, body: Any = _NO_BODY, *,
                      headers: dict | None = None, data: Any = None,
                      token: str | None = None) -> Reply:
        all_headers = dict(auth_headers(token or self.token) if (token or self.token) else {})
        all_headers.update(headers or {})
        kwargs: dict = {"headers": all_headers}
        if body is not _NO_BODY:
            kwargs["json"] = body
        elif data is not None:
            kwargs["data"] = data
        async with self.http.request(method, self.base + path, **kwargs) as response:
            text = await response.text()
            try:
                parsed = await response.json(content_type=None) if text else None
            except ValueError:
                parsed = text
            return Reply(response.status, parsed, response.headers)

    async def get(self, path: str, **kw) -> Reply:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = _NO_BODY, **kw) -> Reply:
        return await self.request("POST", path, body, **kw)

    async def put(self, path: str, body: Any = _NO_BODY, **kw) -> Reply:
        return await self.request("PUT", path, body, **kw)

    async def patch(self, path: str, body: Any = _NO_BODY, **kw) -> Reply:
        return await self.request("PATCH", path, body, **kw)

    async def delete(self, path: str, **kw) -> Reply:
        return await self.request("DELETE", path, **kw)


async def register(http: aiohttp.ClientSession, base: str, username: str | None = None,
                   password: str = PASSWORD, **extra) -> dict:
    username = username or unique()
    reply = await Client(http, base).post("/api/v1/auth/register", {
        "username": username, "email": f"{username}@example.com", "password": password, **extra})
    assert reply.status == 201, reply
    return reply.body["user"]


async def login(http: aiohttp.ClientSession, base: str, username: str,
                password: str = PASSWORD) -> dict:
    reply = await Client(http, base).post("/api/v1/auth/login",
                                          {"username": username, "password": password})
    assert reply.status == 200, reply
    return reply.body


async def new_user(http: aiohttp.ClientSession, base: str, username: str | None = None,
                   **extra) -> Client:
    """A freshly registered, logged-in user as a Client."""
    user = await register(http, base, username, **extra)
    body = await login(http, base, user["username"])
    return Client(http, base, body["access_token"], body["user"])


async def register_and_login(url: str, http: aiohttp.ClientSession | None = None,
                             username: str | None = None) -> tuple[str, dict]:
    """(access_token, self user) of a fresh account."""
    if http is not None:
        client = await new_user(http, url, username)
        return client.token, client.user
    async with aiohttp.ClientSession() as own:
        client = await new_user(own, url, username)
        return client.token, client.user


def start_extra_gateway(suite, name: str, **env: str):
    """Another gateway process next to the suite's two, with extra environment; (proc, url).
    The caller stops it (``proc.stop()``)."""
    from parley_common.testing import Proc, free_port, http_ok, wait_until

    port = free_port()
    proc = Proc(name, "parley_gateway",
                {**suite.env, "PORT": str(port), "INSTANCE_ID": name, **env},
                suite.isolation.workdir).start()
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(url + "/healthz"), 30, what=f"{name} /healthz", proc=proc)
    return proc, url


def fake_address() -> str:
    """A random documentation-range IPv4 address, for X-Forwarded-For."""
    value = uuid.uuid4().int
    return f"198.{18 + value % 2}.{value // 2 % 256}.{value // 512 % 254 + 1}"


async def receive_frame(ws, timeout: float = 10) -> dict:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, f"socket closed: {msg.type} {ws.close_code}"
    return json.loads(msg.data)


async def next_frame(ws, wanted: str, timeout: float = 10, **match) -> dict:
    """The next frame of type ``wanted`` (with the given field values), skipping others."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await receive_frame(ws, max(deadline - time.monotonic(), 0.01))
        if frame["type"] == wanted and all(frame.get(k) == v for k, v in match.items()):
            return frame


@contextmanager
def own_suite(isolation, label: str, **env: str):
    """A whole suite of its own (one gateway, cheap hashing) in a child isolation, for tests
    that need other settings (e.g. ACCESS_TOKEN_TTL_SECONDS); yields the gateway's URL."""
    from parley_common.testing import start_suite

    with isolation.child(label) as own:
        running = start_suite(own, gateways=1, extra_env={
            "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "8192", "ARGON2_PARALLELISM": "1",
            **env})
        try:
            yield running.gateway_urls[0]
        finally:
            for proc in reversed(list(running.procs.values())):
                proc.stop()


def short_token_suite(label: str, seconds: int):
    """A module-scoped fixture (assign it to a name in the test module): a suite of its own
    (own_suite) whose access tokens live ``seconds``; the fixture's value is its URL."""
    @pytest.fixture(scope="module")
    def suite_with_short_tokens(isolation):
        with own_suite(isolation, label, ACCESS_TOKEN_TTL_SECONDS=str(seconds)) as url:
            yield url
    return suite_with_short_tokens
