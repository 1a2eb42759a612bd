"""The WebSocket hub end to end (DESIGN.md §5 "WebSocket GET /api/v1/ws"), with every
process real: two gateway instances (suite.gateway_urls[0] and [1]) plus, for limits, a
third one started with a tiny send queue, a 1 s auth timeout and a low send rate."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
import uuid
from types import SimpleNamespace

import aiohttp
import pytest
import redis.asyncio as aioredis


from helpers import (PASSWORD, auth_headers, next_frame, register_and_login, start_extra_gateway,
                     unique, ws_url)

TIGHT_QUEUE = 16
TIGHT_RATE = 5


# --- helpers -----------------------------------------------------------------------------

async def call(http, method: str, url: str, token: str | None = None, body=None):
    async with http.request(method, url, json=body,
                            headers=auth_headers(token) if token else {}) as response:
        text = await response.text()
        return response.status, (json.loads(text) if text else None)


async def public_room(http, base: str, owner_token: str, *joiner_tokens: str) -> dict:
    status, body = await call(http, "POST", f"{base}/api/v1/rooms", owner_token,
                              {"name": unique("room-"), "kind": "public"})
    assert status == 201, body
    room = body["room"]
    for token in joiner_tokens:
        status, body = await call(http, "POST", f"{base}/api/v1/rooms/{room['id']}/join", token)
        assert status == 200, body
    return room


async def post(http, base: str, token: str, room_id: str, text: str) -> dict:
    status, body = await call(http, "POST", f"{base}/api/v1/rooms/{room_id}/messages", token,
                              {"text": text, "client_id": uuid.uuid4().hex})
    assert status == 201, body
    return body["message"]


async def connect(http, base: str, token: str, *, by_frame: bool = False, ref=None):
    """An authenticated socket and its ready frame."""
    if by_frame:
        ws = await http.ws_connect(ws_url(base))
        await ws.send_json({"type": "auth", "token": token, **({"ref": ref} if ref else {})})
    else:
        ws = await http.ws_connect(ws_url(base), headers=auth_headers(token))
    ready = await next_frame(ws, "ready")
    return ws, ready


async def no_frame(ws, wanted: str, within: float, **match) -> None:
    try:
        frame = await next_frame(ws, wanted, within, **match)
    except asyncio.TimeoutError:
        return
    raise AssertionError(f"unexpected {wanted} frame: {frame}")


async def close_code(ws, timeout: float = 10) -> int:
    """Read until the server closes the socket; its close code."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await asyncio.wait_for(ws.receive(), max(deadline - time.monotonic(), 0.01))
        if msg.type == aiohttp.WSMsgType.CLOSE:
            return msg.data  # the code the server sent
        if msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                        aiohttp.WSMsgType.ERROR):
            return ws.close_code


async def subscribe(ws, room_id: str, after_seq=None) -> dict:
    ref = unique("sub-")
    frame = {"type": "subscribe", "room_id": room_id, "ref": ref}
    if after_seq is not None:
        frame["after_seq"] = after_seq
    await ws.send_json(frame)
    reply = await next_frame(ws, "subscribed", ref=ref)
    assert reply["room_id"] == room_id
    return reply


@pytest.fixture
async def duo(suite, http) -> SimpleNamespace:
    """Alice on the first gateway and Bob on the second, both members of a public room of
    Alice's: the set-up most tests here start from."""
    gw_a, gw_b = suite.gateway_urls[:2]
    alice_token, alice = await register_and_login(gw_a, http)
    bob_token, bob = await register_and_login(gw_b, http)
    room = await public_room(http, gw_a, alice_token, bob_token)
    return SimpleNamespace(gw_a=gw_a, gw_b=gw_b, alice_token=alice_token, alice=alice,
                           bob_token=bob_token, bob=bob, room=room)


async def both_subscribed(http, duo: SimpleNamespace):
    """Alice's socket (first gateway) and Bob's (second), each subscribed to the duo's room."""
    alice_ws, _ = await connect(http, duo.gw_a, duo.alice_token)
    bob_ws, _ = await connect(http, duo.gw_b, duo.bob_token)
    await subscribe(alice_ws, duo.room["id"])
    await subscribe(bob_ws, duo.room["id"])
    return alice_ws, bob_ws


@pytest.fixture
async def redis_client(suite):
    client = aioredis.Redis.from_url(suite.isolation.redis_url, decode_responses=True)
    yield client, suite.isolation.redis_prefix
    await client.aclose()


@pytest.fixture(scope="module")
def tight_gateway(suite):
    """A third gateway with a tiny send queue and socket buffer, a 1 s auth timeout and a
    low send rate, so the limits show quickly."""
    name = f"gateway-tight-{uuid.uuid4().hex[:6]}"
    proc, url = start_extra_gateway(suite, name, WS_SEND_QUEUE=str(TIGHT_QUEUE),
                                    WS_SOCKET_SNDBUF="16384", WS_AUTH_TIMEOUT_SECONDS="1",
                                    WS_RATE_PER_10S=str(TIGHT_RATE))
    yield url
    proc.stop()


# --- the walking skeleton ----------------------------------------------------------------

async def test_message_crosses_instances_with_ack_and_room_events(duo, http):
    gw_a, gw_b = duo.gw_a, duo.gw_b
    alice_token, alice, bob_token, bob = duo.alice_token, duo.alice, duo.bob_token, duo.bob
    room = await public_room(http, gw_a, alice_token)  # bob joins it below

    alice_ws, ready = await connect(http, gw_a, alice_token)
    assert ready["user"]["id"] == alice["id"] and ready["session_id"]
    bob_ws, _ = await connect(http, gw_b, bob_token)
    first = await subscribe(alice_ws, room["id"])
    assert first["last_seq"] == 0

    # bob joins over REST: alice (subscribed, other instance) hears it
    status, _ = await call(http, "POST", f"{gw_b}/api/v1/rooms/{room['id']}/join", bob_token)
    assert status == 200
    joined = await next_frame(alice_ws, "member_joined", room_id=room["id"])
    assert joined["user"]["id"] == bob["id"]
    await subscribe(bob_ws, room["id"])

    await alice_ws.send_json({"type": "send", "room_id": room["id"], "text": "hello bob",
                              "client_id": "c-1", "ref": "r-1"})
    ack = await next_frame(alice_ws, "ack", ref="r-1")
    assert ack["client_id"] == "c-1" and ack["message"]["text"] == "hello bob"
    assert ack["message"]["seq"] == 1 and ack["message"]["author"]["id"] == alice["id"]
    got = await next_frame(bob_ws, "message")
    assert got["message"]["id"] == ack["message"]["id"] and got["message"]["seq"] == 1
    # the sending socket already has it in its ack: no echo
    await no_frame(alice_ws, "message", 0.5)

    # a new public room is announced to every connected socket
    other = await public_room(http, gw_a, alice_token)
    created = await next_frame(bob_ws, "room_created")
    assert created["room"]["id"] == other["id"]

    await bob_ws.send_json({"type": "ping", "ref": 7})
    assert await next_frame(bob_ws, "pong") == {"type": "pong", "ref": 7}
    await alice_ws.close()
    await bob_ws.close()


async def test_authors_other_connection_gets_the_message(suite, http):
    gw_a, gw_b = suite.gateway_urls[:2]
    token, _ = await register_and_login(gw_a, http)
    room = await public_room(http, gw_a, token)
    phone, _ = await connect(http, gw_a, token)
    laptop, _ = await connect(http, gw_b, token)
    await subscribe(phone, room["id"])
    await subscribe(laptop, room["id"])
    await phone.send_json({"type": "send", "room_id": room["id"], "text": "from phone",
                           "client_id": "p-1"})
    ack = await next_frame(phone, "ack")
    echo = await next_frame(laptop, "message")
    assert echo["message"]["id"] == ack["message"]["id"]
    await phone.close()
    await laptop.close()


async def test_leaving_drops_the_subscription_and_deletion_reaches_members(duo, http):
    gw_a, gw_b, alice_token, bob_token, bob, room = (duo.gw_a, duo.gw_b, duo.alice_token,
                                                     duo.bob_token, duo.bob, duo.room)
    alice_ws, bob_ws = await both_subscribed(http, duo)

    status, _ = await call(http, "POST", f"{gw_b}/api/v1/rooms/{room['id']}/leave", bob_token)
    assert status == 204
    for ws in (alice_ws, bob_ws):
        left = await next_frame(ws, "member_left", room_id=room["id"])
        assert left["user_id"] == bob["id"]
    await post(http, gw_a, alice_token, room["id"], "bob is gone")
    await next_frame(alice_ws, "message")
    await no_frame(bob_ws, "message", 0.7)  # no longer subscribed

    status, _ = await call(http, "DELETE", f"{gw_a}/api/v1/rooms/{room['id']}", alice_token)
    assert status == 204
    assert (await next_frame(alice_ws, "room_deleted"))["room_id"] == room["id"]

    async with http.get(f"{gw_a}/metrics") as response:
        metrics = await response.text()
    assert 'parley_gateway_ws_frames_in_total{type="subscribe"}' in metrics
    assert 'parley_gateway_events_in_total{type="messages_posted"}' in metrics
    assert "parley_gateway_event_lag_seconds_count" in metrics
    await alice_ws.close()
    await bob_ws.close()


# --- authentication ----------------------------------------------------------------------

async def test_auth_by_first_frame_echoes_ref(suite, http):
    gw = suite.gateway_urls[1]
    token, user = await register_and_login(gw, http)
    ws, ready = await connect(http, gw, token, by_frame=True, ref="hello")
    assert ready["ref"] == "hello" and ready["user"]["id"] == user["id"]
    assert ready["user"]["username"] == user["username"]
    # A second auth frame renews the socket's token (test_token_refresh.py); the same token
    # changes nothing, and a frame without one is refused.
    await ws.send_json({"type": "auth", "token": token, "ref": "again"})
    renewed = await next_frame(ws, "renewed", ref="again")
    assert 0 < renewed["expires_in"] <= 900
    await ws.send_json({"type": "auth", "ref": "empty"})
    error = await next_frame(ws, "error", ref="empty")
    assert error["code"] == "validation_failed" and "token" in error["details"]
    await ws.close()


async def test_bad_token_closes_4401(suite, http):
    gw = suite.gateway_urls[0]
    ws = await http.ws_connect(ws_url(gw), headers=auth_headers("not-a-token"))
    assert await close_code(ws) == 4401
    ws = await http.ws_connect(ws_url(gw))
    await ws.send_json({"type": "auth", "token": "eyJhbGciOiJFZERTQSJ9.e30.c2ln"})
    assert await close_code(ws) == 4401
    ws = await http.ws_connect(ws_url(gw))
    await ws.send_json({"type": "ping"})  # anything but auth first
    assert await close_code(ws) == 4401


async def test_no_auth_frame_in_time_closes_4408(tight_gateway, http):
    ws = await http.ws_connect(ws_url(tight_gateway))
    started = time.monotonic()
    assert await close_code(ws, timeout=5) == 4408
    assert time.monotonic() - started < 4


# --- resume ------------------------------------------------------------------------------

async def test_resume_replays_exactly_the_missing_messages_then_live(duo, http):
    gw_a, gw_b, alice_token, bob_token, room = (duo.gw_a, duo.gw_b, duo.alice_token,
                                                duo.bob_token, duo.room)
    for index in range(3):  # more history than the resume needs
        await post(http, gw_a, alice_token, room["id"], f"old {index}")

    bob_ws, _ = await connect(http, gw_b, bob_token)
    await subscribe(bob_ws, room["id"])
    seen = (await post(http, gw_a, alice_token, room["id"], "before the drop"))["seq"]
    assert (await next_frame(bob_ws, "message"))["message"]["seq"] == seen
    await bob_ws.close()  # forced disconnect

    for index in range(25):
        await post(http, gw_a, alice_token, room["id"], f"missed {index}")

    async def keep_posting():
        for index in range(15):
            await post(http, gw_b, alice_token, room["id"], f"live {index}")

    bob_ws, _ = await connect(http, gw_a, bob_token)  # the other instance
    poster = asyncio.create_task(keep_posting())
    reply = await subscribe(bob_ws, room["id"], after_seq=seen)
    assert reply["last_seq"] >= seen + 25
    await poster
    final = seen + 25 + 15
    seqs, texts = [], []
    while not seqs or seqs[-1] < final:
        frame = await next_frame(bob_ws, "message")
        seqs.append(frame["message"]["seq"])
        texts.append(frame["message"]["text"])
    assert seqs == list(range(seen + 1, final + 1)), seqs
    assert texts[:25] == [f"missed {i}" for i in range(25)]
    assert texts[25:] == [f"live {i}" for i in range(15)]
    await no_frame(bob_ws, "message", 0.5)  # and no duplicates after the last one
    await bob_ws.close()


# --- slow consumers ----------------------------------------------------------------------

class RawSlowClient:
    """A WebSocket client with a tiny receive buffer that stops reading after subscribing."""

    def __init__(self, base: str, token: str):
        host, port = base.removeprefix("http://").split(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /api/v1/ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n")
                          .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_json(self, frame: dict) -> None:
        payload = json.dumps(frame).encode()
        mask = os.urandom(4)
        assert len(payload) < 126
        header = bytes([0x81, 0x80 | len(payload)]) + mask
        self.sock.sendall(header + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def read_until_disconnected(self, timeout: float) -> bool:
        """Drain what is buffered; True once the server has dropped the connection."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
            return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.close()


async def test_slow_consumer_is_dropped_without_stalling_others(suite, tight_gateway, http,
                                                                redis_client):
    client, prefix = redis_client
    gw = suite.gateway_urls[0]
    alice_token, _ = await register_and_login(gw, http)
    bob_token, _ = await register_and_login(gw, http)
    slow_token, slow = await register_and_login(gw, http)
    room = await public_room(http, gw, alice_token, bob_token, slow_token)

    slow_client = RawSlowClient(tight_gateway, slow_token)
    slow_client.send_json({"type": "subscribe", "room_id": room["id"]})
    bob_ws, _ = await connect(http, tight_gateway, bob_token)
    await subscribe(bob_ws, room["id"])
    await wait_for_redis(lambda: client.hlen(f"{prefix}user:{slow['id']}:conns"), 1)

    total = 120
    text = "x" * 3900
    received: list[int] = []

    async def bob_reads():
        while len(received) < total:
            received.append((await next_frame(bob_ws, "message", 15))["message"]["seq"])

    reader = asyncio.create_task(bob_reads())
    started = time.monotonic()
    for batch in range(0, total, 10):
        await asyncio.gather(*(post(http, gw, alice_token, room["id"], text)
                               for _ in range(batch, batch + 10)))
    await asyncio.wait_for(reader, 20)
    elapsed = time.monotonic() - started
    assert sorted(received) == list(range(1, total + 1))
    assert elapsed < 30
    # the slow client was disconnected (1013, then the link dropped) and is offline
    await wait_for_redis(lambda: client.hlen(f"{prefix}user:{slow['id']}:conns"), 0)
    assert await asyncio.to_thread(slow_client.read_until_disconnected, 5)
    await bob_ws.close()


async def wait_for_redis(probe, expected, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value == expected:
            return
        assert time.monotonic() < deadline, f"redis value {value!r}, wanted {expected!r}"
        await asyncio.sleep(0.1)


# --- revocation --------------------------------------------------------------------------

async def test_logout_closes_sockets_of_that_session_on_every_instance(suite, http):
    gw_a, gw_b = suite.gateway_urls[:2]
    token, user = await register_and_login(gw_a, http)
    status, body = await call(http, "POST", f"{gw_a}/api/v1/auth/login",
                              body={"username": user["username"], "password": PASSWORD})
    assert status == 200, body
    other_session_token = body["access_token"]
    here, _ = await connect(http, gw_a, token)
    there, _ = await connect(http, gw_b, token)
    other, _ = await connect(http, gw_b, other_session_token)

    status, _ = await call(http, "POST", f"{gw_b}/api/v1/auth/logout", token)
    assert status == 204
    assert await close_code(here) == 4001
    assert await close_code(there) == 4001
    # the token is refused from now on, by REST and by the socket, on both instances
    status, _ = await call(http, "GET", f"{gw_a}/api/v1/users/me", token)
    assert status == 401
    ws = await http.ws_connect(ws_url(gw_a), headers=auth_headers(token))
    assert await close_code(ws) == 4401
    # the same user's other session is untouched
    await other.send_json({"type": "ping", "ref": "still"})
    assert (await next_frame(other, "pong"))["ref"] == "still"
    await other.close()


# --- typing, read receipts, presence -----------------------------------------------------

async def test_typing_reaches_others_throttled_and_lapses(duo, http, redis_client):
    client, prefix = redis_client
    alice, room = duo.alice, duo.room
    alice_ws, bob_ws = await both_subscribed(http, duo)

    await alice_ws.send_json({"type": "typing", "room_id": room["id"]})
    typing = await next_frame(bob_ws, "typing")
    assert typing == {"type": "typing", "room_id": room["id"],
                      "user": {"id": alice["id"], "username": alice["username"],
                               "display_name": alice["display_name"]}}
    expiry = await client.zscore(f"{prefix}typing:{room['id']}", alice["id"])
    assert time.time() + 3 < expiry <= time.time() + 5.5  # the marker lapses after 5 s
    await alice_ws.send_json({"type": "typing", "room_id": room["id"]})  # throttled
    await no_frame(bob_ws, "typing", 1.0)
    await no_frame(alice_ws, "typing", 0.1)  # never your own echo
    await asyncio.sleep(1.2)
    await alice_ws.send_json({"type": "typing", "room_id": room["id"]})  # a new window
    await next_frame(bob_ws, "typing")
    await alice_ws.close()
    await bob_ws.close()


async def test_read_receipts_reach_the_room(duo, http):
    bob, room = duo.bob, duo.room
    message = await post(http, duo.gw_a, duo.alice_token, room["id"], "read me")
    alice_ws, bob_ws = await both_subscribed(http, duo)

    await bob_ws.send_json({"type": "read", "room_id": room["id"], "seq": message["seq"],
                            "ref": "rd"})
    reply = await next_frame(bob_ws, "read", ref="rd")
    assert reply["seq"] == message["seq"] and reply["unread_count"] == 0
    assert reply["mention_count"] == 0
    receipt = await next_frame(alice_ws, "read", user_id=bob["id"])
    assert receipt["room_id"] == room["id"] and receipt["seq"] == message["seq"]
    await alice_ws.close()
    await bob_ws.close()


async def test_presence_online_and_offline_across_instances(duo, http, redis_client):
    client, prefix = redis_client
    gw_a, gw_b, alice_token, alice, bob_token, room = (duo.gw_a, duo.gw_b, duo.alice_token,
                                                       duo.alice, duo.bob_token, duo.room)
    bob_ws, _ = await connect(http, gw_b, bob_token)
    await subscribe(bob_ws, room["id"])

    first, _ = await connect(http, gw_a, alice_token)
    online = await next_frame(bob_ws, "presence", user_id=alice["id"])
    assert online == {"type": "presence", "room_id": room["id"], "user_id": alice["id"],
                      "status": "online"}
    assert await client.smembers(f"{prefix}user:{alice['id']}:rooms") == {room["id"]}
    second, _ = await connect(http, gw_b, alice_token)  # a second device: no new event
    assert await client.hlen(f"{prefix}user:{alice['id']}:conns") == 2
    await first.close()
    await no_frame(bob_ws, "presence", 0.7, user_id=alice["id"])
    await second.close()
    offline = await next_frame(bob_ws, "presence", user_id=alice["id"])
    assert offline["status"] == "offline" and offline["room_id"] == room["id"]
    assert await client.hlen(f"{prefix}user:{alice['id']}:conns") == 0
    await bob_ws.close()


async def test_a_connected_newcomer_shows_online_in_the_room_they_join(suite, http):
    gw_a, gw_b = suite.gateway_urls[:2]
    owner_token, _ = await register_and_login(gw_a, http)
    carol_token, carol = await register_and_login(gw_b, http)
    room = await public_room(http, gw_a, owner_token)
    owner_ws, _ = await connect(http, gw_a, owner_token)
    await subscribe(owner_ws, room["id"])
    carol_ws, _ = await connect(http, gw_b, carol_token)  # online before she belongs here

    status, body = await call(http, "POST", f"{gw_b}/api/v1/rooms/{room['id']}/join", carol_token)
    assert status == 200, body
    await next_frame(owner_ws, "member_joined")
    online = await next_frame(owner_ws, "presence", user_id=carol["id"])
    assert online == {"type": "presence", "room_id": room["id"], "user_id": carol["id"],
                      "status": "online"}
    await carol_ws.close()
    await owner_ws.close()


# --- malformed input and limits ----------------------------------------------------------

async def test_a_new_display_name_reaches_whoever_shows_it(duo, http):
    gw_a, gw_b, alice_token, alice, bob_token, room = (duo.gw_a, duo.gw_b, duo.alice_token,
                                                       duo.alice, duo.bob_token, duo.room)
    carol_token, _ = await register_and_login(gw_b, http)
    bob_ws, _ = await connect(http, gw_b, bob_token)
    await subscribe(bob_ws, room["id"])
    alice_ws, _ = await connect(http, gw_a, alice_token)  # her own other tab
    carol_ws, _ = await connect(http, gw_b, carol_token)  # shares no room with her

    status, body = await call(http, "PATCH", f"{gw_a}/api/v1/users/me", alice_token,
                              {"display_name": "Alice Renamed"})
    assert status == 200, body
    for ws in (bob_ws, alice_ws):
        frame = await next_frame(ws, "user_updated")
        assert frame["user"] == {"id": alice["id"], "username": alice["username"],
                                 "display_name": "Alice Renamed", "avatar_url": None}
    await no_frame(carol_ws, "user_updated", 1.5)
    for ws in (alice_ws, bob_ws, carol_ws):
        await ws.close()


async def test_malformed_frames_get_error_frames_and_the_socket_stays_usable(suite, http):
    gw = suite.gateway_urls[0]
    token, _ = await register_and_login(gw, http)
    owner_token, _ = await register_and_login(gw, http)
    not_joined = await public_room(http, gw, owner_token)
    ws, _ = await connect(http, gw, token)

    await ws.send_str("{not json")
    assert (await next_frame(ws, "error"))["code"] == "invalid_json"
    await ws.send_str("[1, 2]")
    assert (await next_frame(ws, "error"))["code"] == "validation_failed"
    await ws.send_bytes(b"\x00\x01")
    assert (await next_frame(ws, "error"))["code"] == "invalid_json"
    cases = [
        ({"ref": "a"}, "validation_failed"),
        ({"type": "bogus", "ref": "b"}, "validation_failed"),
        ({"type": "subscribe", "ref": "c"}, "validation_failed"),
        ({"type": "subscribe", "room_id": "r", "after_seq": -1, "ref": "d"}, "validation_failed"),
        ({"type": "send", "room_id": not_joined["id"], "text": 5, "client_id": "x", "ref": "e"},
         "validation_failed"),
        ({"type": "read", "room_id": not_joined["id"], "ref": "f"}, "validation_failed"),
        ({"type": "subscribe", "room_id": uuid.uuid4().hex, "ref": "g"}, "not_found"),
        ({"type": "subscribe", "room_id": not_joined["id"], "ref": "h"}, "forbidden"),
        ({"type": "send", "room_id": not_joined["id"], "text": "hi", "client_id": "x",
          "ref": "i"}, "forbidden"),
        ({"type": "typing", "room_id": not_joined["id"], "ref": "j"}, "forbidden"),
        ({"type": "send", "room_id": not_joined["id"], "text": "nul \u0000", "client_id": "x",
          "ref": "l"}, "validation_failed"),
        ({"type": "send", "room_id": not_joined["id"], "text": "\ud800", "client_id": "x",
          "ref": "m"}, "validation_failed"),
        # the limits REST and rooms apply (parley_common.limits), checked before any call
        ({"type": "typing", "room_id": "r" * 65, "ref": "n"}, "validation_failed"),
        ({"type": "send", "room_id": not_joined["id"], "text": "hi", "client_id": "c" * 65,
          "ref": "o"}, "validation_failed"),
        ({"type": "send", "room_id": not_joined["id"], "text": "x" * 4001, "client_id": "x",
          "ref": "p"}, "validation_failed"),
        ({"type": "read", "room_id": not_joined["id"], "seq": 1.0, "ref": "q"},
         "validation_failed"),
    ]
    for frame, code in cases:
        await ws.send_json(frame)
        error = await next_frame(ws, "error", ref=frame["ref"])
        assert error["code"] == code, (frame, error)
        assert error["message"]
    await ws.send_json({"type": "subscribe", "ref": "k"})
    assert "room_id" in (await next_frame(ws, "error", ref="k"))["details"]
    await ws.send_json({"type": "ping", "ref": "alive"})
    assert (await next_frame(ws, "pong"))["ref"] == "alive"
    await ws.close()


async def test_oversize_frame_closes_1009(suite, http):
    gw = suite.gateway_urls[1]
    token, _ = await register_and_login(gw, http)
    ws, _ = await connect(http, gw, token)
    await ws.send_str(json.dumps({"type": "ping", "pad": "x" * 70_000}))
    assert await close_code(ws) == 1009


async def test_send_rate_limit_warns_then_closes_4429(tight_gateway, http):
    token, _ = await register_and_login(tight_gateway, http)
    room = await public_room(http, tight_gateway, token)
    ws, _ = await connect(http, tight_gateway, token)
    for index in range(TIGHT_RATE):
        await ws.send_json({"type": "send", "room_id": room["id"], "text": f"m{index}",
                            "client_id": f"c{index}", "ref": f"s{index}"})
        await next_frame(ws, "ack", ref=f"s{index}")
    for index in range(3):
        await ws.send_json({"type": "send", "room_id": room["id"], "text": "too many",
                            "client_id": f"x{index}", "ref": f"x{index}"})
        warning = await next_frame(ws, "error", ref=f"x{index}")
        assert warning["code"] == "rate_limited" and warning["details"]["retry_after"] >= 1
    await ws.send_json({"type": "send", "room_id": room["id"], "text": "one more",
                        "client_id": "last"})
    assert await close_code(ws) == 4429


# --- draining ----------------------------------------------------------------------------

async def test_sigterm_drains_sockets_with_1001_and_clears_presence(suite, http, redis_client):
    client, prefix = redis_client
    name = f"gateway-drain-{uuid.uuid4().hex[:6]}"
    proc, url = await asyncio.to_thread(start_extra_gateway, suite, name)
    try:
        gw = suite.gateway_urls[0]
        watcher_token, _ = await register_and_login(gw, http)
        leaver_token, leaver = await register_and_login(gw, http)
        room = await public_room(http, gw, watcher_token, leaver_token)
        watcher, _ = await connect(http, gw, watcher_token)
        await subscribe(watcher, room["id"])
        leaving, _ = await connect(http, url, leaver_token)
        await next_frame(watcher, "presence", user_id=leaver["id"], status="online")
        conn_ids = await client.hkeys(f"{prefix}user:{leaver['id']}:conns")
        assert len(conn_ids) == 1  # registered on both sides, as the cleaner expects
        assert await client.hget(f"{prefix}gw:{name}:conns", conn_ids[0]) == leaver["id"]
        assert await client.exists(f"{prefix}gw:{name}")  # the instance heartbeat

        started = time.monotonic()
        proc.popen.send_signal(15)
        assert await close_code(leaving) == 1001
        offline = await next_frame(watcher, "presence", user_id=leaver["id"])
        assert offline["status"] == "offline"
        exit_code = await asyncio.to_thread(proc.popen.wait, 15)
        assert exit_code == 0 and time.monotonic() - started < 10
        assert await client.hlen(f"{prefix}user:{leaver['id']}:conns") == 0
        assert not await client.exists(f"{prefix}gw:{name}:conns", f"{prefix}gw:{name}")
        await watcher.close()
    finally:
        proc.stop()
