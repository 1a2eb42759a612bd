"""Live ``message`` frames reach every socket in seq order, with no gaps, while two rooms
replicas publish a room's events concurrently (their events race to the gateways). The
RoomSequencer behind it (parley_gateway/ordering.py) has its own unit tests:
services/gateway/tests/unit/test_ordering.py."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from helpers import auth_headers, new_user, next_frame, unique, ws_url
from parley_common.testing import Proc, queue_consumers, wait_until

SENDERS = 8
PER_SENDER = 25  # below the per-user ws send budget (30 per 10 s)


@pytest.fixture
def second_rooms_replica(suite):
    """A second rooms process on the suite's database: both consume rpc-rooms."""
    first = suite.procs["rooms"]
    proc = Proc("rooms-2", "parley_rooms", {**first.env, "INSTANCE_ID": "rooms-2"},
                suite.isolation.workdir).start()
    try:
        wait_until(lambda: queue_consumers(suite.isolation.amqp_uri, "rpc-rooms") >= 2, 60,
                   what="rooms-2 consuming rpc-rooms", proc=proc)
        yield proc
    finally:
        proc.stop()


async def _collect(ws, stop: asyncio.Event, seen: list, acked: set):
    while not stop.is_set():
        try:
            msg = await asyncio.wait_for(ws.receive(), 0.5)
        except asyncio.TimeoutError:
            continue
        if msg.type != aiohttp.WSMsgType.TEXT:
            return
        frame = json.loads(msg.data)
        if frame["type"] == "message":
            seen.append(frame["message"]["seq"])
        elif frame["type"] == "ack":
            acked.add(frame["message"]["seq"])


async def test_two_rooms_replicas_deliver_in_seq_order(suite, http, second_rooms_replica):
    owner = await new_user(http, suite.url)
    reply = await owner.post("/api/v1/rooms", {"name": unique("order"), "kind": "public"})
    assert reply.status == 201, reply
    room_id = reply.body["room"]["id"]
    users = [await new_user(http, suite.gateway_urls[i % 2]) for i in range(SENDERS)]
    for user in users:
        assert (await user.post(f"/api/v1/rooms/{room_id}/join")).status == 200
    sockets = []
    for index, user in enumerate(users):
        ws = await http.ws_connect(ws_url(suite.gateway_urls[index % 2]),
                                   headers=auth_headers(user.token))
        await next_frame(ws, "ready")
        await ws.send_json({"type": "subscribe", "room_id": room_id, "ref": "s"})
        await next_frame(ws, "subscribed", ref="s")
        sockets.append(ws)
    stop = asyncio.Event()
    seen = [[] for _ in sockets]
    acked = [set() for _ in sockets]
    readers = [asyncio.create_task(_collect(ws, stop, seen[i], acked[i]))
               for i, ws in enumerate(sockets)]

    async def send_all(index: int, ws) -> None:
        for n in range(PER_SENDER):
            await ws.send_json({"type": "send", "room_id": room_id, "text": f"m{n}",
                                "client_id": f"c{index}-{n}"})
            await asyncio.sleep(0.01)

    await asyncio.gather(*(send_all(i, ws) for i, ws in enumerate(sockets)))
    total = SENDERS * PER_SENDER
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            if all(len(set(s) | a) >= total for s, a in zip(seen, acked)):
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.gather(*readers)
        for ws in sockets:
            await ws.close()
    for index, (frames, own) in enumerate(zip(seen, acked)):
        # In order, no duplicates: a strictly increasing sequence of seqs.
        assert all(a < b for a, b in zip(frames, frames[1:])), \
            f"socket {index} saw out of order: {frames}"
        # No gaps: what came as message frames plus this socket's own acks is every seq.
        assert set(frames) | own == set(range(1, total + 1)), \
            f"socket {index} missed {sorted(set(range(1, total + 1)) - set(frames) - own)}"
