"""A steady stream of chat traffic over real WebSockets, and the checks made after a fault.

Each ChaosClient is one user on one socket (to gateway i % 2) subscribed to one room. It
sends ``send {client_id}`` at a fixed rate, and behaves as a careful client should:

- after any close it reconnects (to the other gateway when its own does not answer) and
  resumes with ``subscribe {after_seq}`` from the last seq it holds without a gap;
- it re-sends a ``client_id`` that got no ``ack`` (after an ``error`` frame, with back-off,
  a reconnect, or ``RETRY_SECONDS``) until it is acknowledged, within a send budget.

It records every ``message`` frame of its room in arrival order and every ack, so the
checks can tell duplicates, reordering and gaps apart.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field

import aiohttp

PASSWORD = "correct horse 1"
RETRY_SECONDS = 5.0  # an unacked send is sent again after this long
NEVER_SENT = float("-inf")
# Well below the gateway's WS_RATE_PER_10S (30): it counts frames as it gets to them, and
# a connection's frames wait while a send before them waits for rooms (bunching up).
BUDGET_SENDS, BUDGET_WINDOW = 20, 10.0
MAX_BACKOFF = 8.0


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/api/v1/ws"


class Api:
    """JSON calls to the gateways (retrying 503s and connection errors: faults are ongoing)."""

    def __init__(self, http: aiohttp.ClientSession, urls: list[str]):
        self.http, self.urls = http, urls
        self._next = itertools.cycle(range(len(urls)))

    async def call(self, method: str, path: str, body=None, token: str | None = None,
                   ok=(200, 201, 204), attempts: int = 40):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        last = None
        for _ in range(attempts):
            url = self.urls[next(self._next)]
            try:
                async with self.http.request(method, url + path, json=body, headers=headers,
                                             timeout=aiohttp.ClientTimeout(total=15)) as resp:
                    text = await resp.text()
                    last = (resp.status, text)
                    if resp.status in ok:
                        return json.loads(text) if text else None
                    if resp.status not in (502, 503, 504):
                        raise AssertionError(f"{method} {path}: {resp.status} {text}")
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                last = repr(exc)
            await asyncio.sleep(0.5)
        raise AssertionError(f"{method} {path} kept failing: {last}")

    async def account(self, name: str) -> tuple[str, dict]:
        await self.call("POST", "/api/v1/auth/register",
                        {"username": name, "email": f"{name}@example.com", "password": PASSWORD})
        return await self.login(name)

    async def login(self, name: str) -> tuple[str, dict]:
        body = await self.call("POST", "/api/v1/auth/login",
                               {"username": name, "password": PASSWORD})
        return body["access_token"], body["user"]

    async def history(self, room_id: str, token: str) -> list[dict]:
        messages, after = [], 0
        while True:
            page = await self.call("GET", f"/api/v1/rooms/{room_id}/messages"
                                          f"?after_seq={after}&limit=100", token=token)
            messages += page["messages"]
            if not page["messages"] or not page["has_more"]:
                return messages
            after = page["messages"][-1]["seq"]


@dataclass
class ChaosClient:
    name: str
    token: str
    user: dict
    room_id: str
    gateways: list[str]
    rate: float
    gateway: int = 0
    sent: list = field(default_factory=list)  # client ids, in order of first send
    attempts: Counter = field(default_factory=Counter)
    pending: dict = field(default_factory=dict)  # client id -> monotonic time of last send
    acked: dict = field(default_factory=dict)  # client id -> seq
    ack_times: dict = field(default_factory=dict)  # client id -> monotonic time of the ack
    first_sent: dict = field(default_factory=dict)  # client id -> monotonic time
    frames: list = field(default_factory=list)  # seqs of message frames, in arrival order
    seen: set = field(default_factory=set)  # seqs from frames and acks
    contiguous: int = 0  # every seq up to this one is held
    duplicates: int = 0  # message frames for a seq that already came as a message frame
    out_of_order: int = 0  # message frames below the previous one
    reconnects: int = 0
    closes: Counter = field(default_factory=Counter)
    sending: bool = True
    stopped: bool = False
    _counter: itertools.count = field(default_factory=itertools.count)
    _ws: aiohttp.ClientWebSocketResponse | None = None

    # --- bookkeeping --------------------------------------------------------------------
    def _hold(self, seq: int) -> None:
        self.seen.add(seq)
        while self.contiguous + 1 in self.seen:
            self.contiguous += 1

    def _on_frame(self, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "message" and frame["message"]["room_id"] == self.room_id:
            seq = frame["message"]["seq"]
            if self.frames and seq <= self.frames[-1]:
                if seq in self._frame_set:
                    self.duplicates += 1
                else:
                    self.out_of_order += 1
            self.frames.append(seq)
            self._frame_set.add(seq)
            self._hold(seq)
        elif kind == "ack":
            client_id, seq = frame["client_id"], frame["message"]["seq"]
            self._backoff = 0.0
            self.pending.pop(client_id, None)
            if client_id not in self.acked:
                self.acked[client_id] = seq
                self.ack_times[client_id] = time.monotonic()
            self._hold(seq)
        elif kind == "error" and frame.get("ref") in self.pending:
            # Unavailable or rate limited: hold every send for Retry-After (1 s by default),
            # longer while errors go on (capped exponential back-off), then send it again.
            wait = float((frame.get("details") or {}).get("retry_after") or 1)
            self._backoff = min(max(self._backoff * 2, 1.0), MAX_BACKOFF)
            self._paused_until = time.monotonic() + max(wait, self._backoff)
            self.pending[frame["ref"]] = NEVER_SENT

    def __post_init__(self):
        self._frame_set: set = set()
        self._budget: deque = deque()  # monotonic times of recent sends
        self._next_at = time.monotonic()
        self._backoff = 0.0
        self._paused_until = 0.0

    # --- the socket -------------------------------------------------------------------
    async def _send(self, client_id: str) -> None:
        self.attempts[client_id] += 1
        self.pending[client_id] = time.monotonic()
        self._budget.append(time.monotonic())
        await self._ws.send_json({"type": "send", "room_id": self.room_id, "ref": client_id,
                                  "text": f"{self.name} {client_id}", "client_id": client_id})

    def _within_budget(self) -> bool:
        """Stay inside the gateway's per-user send budget, retries included."""
        now = time.monotonic()
        while self._budget and now - self._budget[0] > BUDGET_WINDOW:
            self._budget.popleft()
        return len(self._budget) < BUDGET_SENDS

    async def _sender(self) -> None:
        period = 1.0 / self.rate
        await asyncio.sleep(random.uniform(0, period))
        while True:
            now = time.monotonic()
            if self.sending and now >= self._next_at:  # a new message, at the fixed rate
                client_id = f"{self.name}-{next(self._counter)}"
                self.sent.append(client_id)
                self.first_sent[client_id] = now
                self.pending[client_id] = NEVER_SENT
                self._next_at = max(self._next_at, now) + period  # no catch-up burst
            for client_id, last in list(self.pending.items()):  # oldest first
                if (now < self._paused_until or now - last < RETRY_SECONDS
                        or not self._within_budget()):
                    continue
                await self._send(client_id)
            await asyncio.sleep(min(0.1, period))

    async def _session(self, http: aiohttp.ClientSession) -> None:
        url = ws_url(self.gateways[self.gateway])
        async with http.ws_connect(url, headers={"Authorization": f"Bearer {self.token}"},
                                   heartbeat=10, timeout=aiohttp.ClientWSTimeout(ws_close=3)) as ws:
            self._ws = ws
            ready = json.loads((await ws.receive(timeout=10)).data)
            assert ready["type"] == "ready", ready
            await ws.send_json({"type": "subscribe", "room_id": self.room_id, "ref": "sub",
                                "after_seq": self.contiguous})
            for client_id in self.pending:  # unacked across the close: send again now
                self.pending[client_id] = NEVER_SENT
            sender = asyncio.create_task(self._sender())
            try:
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    self._on_frame(json.loads(msg.data))
            finally:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
                self.closes[ws.close_code] += 1

    async def run(self, http: aiohttp.ClientSession) -> None:
        delay = 0.2
        while not self.stopped:
            started = time.monotonic()
            try:
                await self._session(http)
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError,
                    AssertionError, TypeError, ValueError):
                self.gateway = (self.gateway + 1) % len(self.gateways)  # try the other one
            if self.stopped:
                return
            self.reconnects += 1
            delay = 0.2 if time.monotonic() - started > 5 else min(delay * 2, 2.0)
            await asyncio.sleep(delay)

    async def close(self) -> None:
        self.stopped = True
        if self._ws is not None:
            await self._ws.close()


@dataclass
class Report:
    name: str
    sent: int
    acked: int
    stored: int
    delivered: int
    duplicates: int
    stored_twice: int
    gaps: int
    out_of_order: int
    missing_acked: int
    undelivered: int
    unacked: int
    retried: int
    reconnects: int
    recovery: float
    closes: dict

    def line(self) -> str:
        return (f"[chaos] {self.name}: sent={self.sent} acked={self.acked} stored={self.stored} "
                f"delivered={self.delivered} duplicates={self.duplicates} "
                f"stored_twice={self.stored_twice} gaps={self.gaps} "
                f"out_of_order={self.out_of_order} missing_acked={self.missing_acked} "
                f"undelivered={self.undelivered} unacked={self.unacked} retried={self.retried} "
                f"reconnects={self.reconnects} recovery={self.recovery:.1f}s closes={self.closes}")

    def assert_nothing_lost(self) -> None:
        assert self.unacked == 0, f"sends never acknowledged: {self}"
        assert self.missing_acked == 0, f"acknowledged but not stored: {self}"
        assert self.stored_twice == 0, f"a client_id stored twice: {self}"
        assert self.gaps == 0, f"seq gaps in history: {self}"
        assert self.duplicates == 0 and self.out_of_order == 0, f"bad delivery: {self}"
        assert self.undelivered == 0, f"clients missing messages: {self}"
        assert self.stored == self.acked, f"stored != acked: {self}"


class Stream:
    """CLIENTS users over ROOMS rooms, half on each gateway, sending at ``rate`` per second."""

    def __init__(self, api: Api, accounts: list[tuple[str, str, dict]], gateways: list[str],
                 rooms: int = 4, rate: float = 1.0):
        self.api, self.accounts, self.gateways = api, accounts, gateways
        self.rooms, self.rate = rooms, rate
        self.clients: list[ChaosClient] = []
        self.room_ids: list[str] = []
        self.tasks: list[asyncio.Task] = []

    async def start(self, http: aiohttp.ClientSession) -> None:
        owner_token = self.accounts[0][1]
        for _ in range(self.rooms):
            room = await self.api.call("POST", "/api/v1/rooms",
                                       {"name": f"chaos-{uuid.uuid4().hex[:10]}",
                                        "kind": "public"}, token=owner_token)
            self.room_ids.append(room["room"]["id"])
        for index, (name, token, user) in enumerate(self.accounts):
            room_id = self.room_ids[index % self.rooms]
            await self.api.call("POST", f"/api/v1/rooms/{room_id}/join", token=token)
            self.clients.append(ChaosClient(name, token, user, room_id, self.gateways,
                                            self.rate, gateway=index % len(self.gateways)))
        self.tasks = [asyncio.create_task(client.run(http)) for client in self.clients]

    def acked_after(self, moment: float) -> bool:
        """Every client had a send made after ``moment`` acknowledged: traffic flows."""
        return all(any(client.first_sent[cid] >= moment for cid in client.ack_times)
                   for client in self.clients)

    async def wait_flowing(self, since: float, timeout: float) -> float:
        """Seconds from ``since`` until every client's new sends are acked again."""
        deadline = time.monotonic() + timeout
        while not self.acked_after(since):
            assert time.monotonic() < deadline, "the stream did not flow again in time"
            await asyncio.sleep(0.2)
        return time.monotonic() - since

    async def finish(self, name: str, recovery: float, settle: float = 60) -> Report:
        """Stop sending, let retries and deliveries settle, compare with history."""
        for client in self.clients:
            client.sending = False
        deadline = time.monotonic() + settle
        while any(c.pending for c in self.clients) and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
        owner_token = self.accounts[0][1]
        histories = {room_id: await self.api.history(room_id, owner_token)
                     for room_id in self.room_ids}
        last = {room_id: len(h) and h[-1]["seq"] for room_id, h in histories.items()}
        while time.monotonic() < deadline and any(
                c.contiguous < last[c.room_id] for c in self.clients):
            await asyncio.sleep(0.25)
        for client in self.clients:
            await client.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)

        stored = [m for h in histories.values() for m in h]
        by_key = Counter((m["author"]["id"], m["client_id"]) for m in stored)
        gaps = sum(len(set(range(1, last[r] + 1)) - {m["seq"] for m in h})
                   for r, h in histories.items())
        missing = sum(1 for c in self.clients for cid in c.acked
                      if by_key[(c.user["id"], cid)] != 1)
        undelivered = sum(len(set(range(1, last[c.room_id] + 1)) - c.seen) for c in self.clients)
        closes: Counter = Counter()
        for client in self.clients:
            closes.update(client.closes)
        return Report(
            name=name,
            sent=sum(len(c.sent) for c in self.clients),
            acked=sum(len(c.acked) for c in self.clients),
            stored=len(stored),
            delivered=sum(len(c.frames) for c in self.clients),
            duplicates=sum(c.duplicates for c in self.clients),
            stored_twice=sum(n - 1 for n in by_key.values() if n > 1),
            gaps=gaps,
            out_of_order=sum(c.out_of_order for c in self.clients),
            missing_acked=missing,
            undelivered=undelivered,
            unacked=sum(len(c.pending) for c in self.clients),
            retried=sum(1 for c in self.clients for n in c.attempts.values() if n > 1),
            reconnects=sum(c.reconnects for c in self.clients),
            recovery=recovery,
            closes=dict(closes),
        )
