"""WebSocket limits: a frame budget for every frame type, caps on subscriptions and sockets,
membership checked before subscribing, revocation re-checked after a socket registers."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import redis.asyncio as aioredis

from helpers import auth_headers, new_user, next_frame, start_extra_gateway, unique, ws_url


@pytest.fixture(scope="module")
def tight_gateway(suite):
    proc, url = start_extra_gateway(suite, "gateway-tight", WS_FRAMES_PER_SECOND="5",
                                    WS_FRAME_BURST="10", WS_MAX_SUBSCRIPTIONS="2",
                                    WS_MAX_SOCKETS_PER_USER="2",
                                    WS_REVOCATION_CHECK_SECONDS="1")
    yield url
    proc.stop()


async def connect(http, base: str, token: str):
    ws = await http.ws_connect(ws_url(base), headers=auth_headers(token))
    ready = await next_frame(ws, "ready")
    return ws, ready


async def drain_until_closed(ws, timeout: float = 10) -> list[dict]:
    frames = []
    while True:
        msg = await ws.receive(timeout=timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return frames
        frames.append(json.loads(msg.data))


@pytest.mark.parametrize("frame", [
    {"type": "read", "room_id": "r", "seq": 0},
    {"type": "subscribe", "room_id": "nowhere", "after_seq": 0},
    {"type": "ping"},
    {"type": "no-such-type"},
    "not json at all",
])
async def test_every_frame_type_is_budgeted(suite, http, tight_gateway, frame):
    alice = await new_user(http, suite.url)
    ws, _ = await connect(http, tight_gateway, alice.token)
    data = frame if isinstance(frame, str) else json.dumps(frame)
    for _ in range(200):
        if ws.closed:
            break
        await ws.send_str(data)
    frames = await drain_until_closed(ws)
    limited = [f for f in frames if f.get("type") == "error" and f.get("code") == "rate_limited"]
    assert 1 <= len(limited) <= 3, frames[-5:]
    assert ws.close_code == 4429, ws.close_code
    # Within the budget the same frames were answered normally (at most the burst).
    answered = [f for f in frames if f not in limited]
    assert len(answered) <= 11, len(answered)


async def test_a_client_within_budget_is_never_limited(suite, http, tight_gateway):
    alice = await new_user(http, suite.url)
    ws, _ = await connect(http, tight_gateway, alice.token)
    for n in range(15):
        await ws.send_json({"type": "ping", "ref": n})
        assert (await next_frame(ws, "pong"))["ref"] == n
        await asyncio.sleep(0.25)  # 4 per second, under the 5 allowed
    await ws.close()


async def test_caps_on_subscriptions_and_sockets(suite, http, tight_gateway):
    alice = await new_user(http, suite.url)
    rooms = []
    for _ in range(3):
        reply = await alice.post("/api/v1/rooms", {"name": unique("r"), "kind": "public"})
        rooms.append(reply.body["room"]["id"])
    ws, _ = await connect(http, tight_gateway, alice.token)
    for room_id in rooms[:2]:
        await ws.send_json({"type": "subscribe", "room_id": room_id})
        await next_frame(ws, "subscribed", room_id=room_id)
    await ws.send_json({"type": "subscribe", "room_id": rooms[2]})
    refused = await next_frame(ws, "error")
    assert refused["code"] == "rate_limited", refused
    await ws.send_json({"type": "unsubscribe", "room_id": rooms[0]})
    await next_frame(ws, "unsubscribed")
    await ws.send_json({"type": "subscribe", "room_id": rooms[2]})
    await next_frame(ws, "subscribed", room_id=rooms[2])
    second, _ = await connect(http, tight_gateway, alice.token)
    third = await http.ws_connect(ws_url(tight_gateway), headers=auth_headers(alice.token))
    msg = await third.receive(timeout=10)
    assert msg.type == aiohttp.WSMsgType.CLOSE and third.close_code == 4429, msg
    await second.close()
    fourth, _ = await connect(http, tight_gateway, alice.token)  # a slot is free again
    for sock in (ws, fourth):
        await sock.close()


async def test_a_non_member_never_sees_a_private_rooms_frames(suite, http):
    owner = await new_user(http, suite.url)
    mallory = await new_user(http, suite.url)
    room = (await owner.post("/api/v1/rooms", {"name": unique("secret"), "kind": "private"})
            ).body["room"]
    ws, _ = await connect(http, suite.url, mallory.token)

    async def keep_subscribing():
        for _ in range(40):
            await ws.send_json({"type": "subscribe", "room_id": room["id"]})
            await asyncio.sleep(0.02)

    async def keep_renaming():
        for n in range(15):
            assert (await owner.patch(f"/api/v1/rooms/{room['id']}",
                                      {"topic": f"secret topic {n}"})).status == 200

    await asyncio.gather(keep_subscribing(), keep_renaming())
    seen = []
    try:
        while True:
            msg = await ws.receive(timeout=1.5)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            seen.append(json.loads(msg.data))
    except asyncio.TimeoutError:
        pass
    leaked = [f for f in seen if f["type"] not in ("error",)]
    assert not leaked, leaked[:3]
    assert all(f["code"] in ("not_found", "rate_limited") for f in seen), seen[:3]
    await ws.close()


async def test_revocation_is_swept_periodically(suite, http, tight_gateway):
    """A socket whose session is revoked without its event reaching the gateway (here: the
    revocation written straight to the cache) is closed by the periodic check."""
    alice = await new_user(http, suite.url)
    ws, ready = await connect(http, tight_gateway, alice.token)
    from parley_common.cache_keys import CacheKeys

    client = aioredis.from_url(suite.env["REDIS_URL"], decode_responses=True)
    try:
        await client.set(CacheKeys(suite.env["REDIS_PREFIX"]).revoked(ready["session_id"]), "1",
                         ex=60)
    finally:
        await client.aclose()
    msg = await ws.receive(timeout=10)
    assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4001, (msg, ws.close_code)


async def test_a_logout_racing_the_sockets_auth_still_closes_it(suite, http):
    """Logout and the socket's authentication at the same moment: whichever wins, no socket
    of the ended session stays open (the suite's gateways sweep only every 30 s, so this is
    the re-check right after registering)."""
    from helpers import login

    user = await new_user(http, suite.url)
    for _ in range(6):
        token = (await login(http, suite.url, user.user["username"]))["access_token"]

        async def open_socket():
            ws = await http.ws_connect(ws_url(suite.url))
            await ws.send_json({"type": "auth", "token": token})
            return ws

        ws, logout = await asyncio.gather(open_socket(),
                                          user.request("POST", "/api/v1/auth/logout", token=token))
        assert logout.status == 204, logout
        frames = await drain_until_closed(ws, timeout=5)
        assert ws.close_code in (4001, 4401), (ws.close_code, frames)
