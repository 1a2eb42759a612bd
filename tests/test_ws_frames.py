"""The gateway's own WebSocket layer against a real gateway (hub.Connection, wire.FrameReader):
after the handshake the socket is no longer aiohttp's, so framing, control frames, protocol
errors (RFC 6455 §5, §7.4), the client's close, a vanished client and paused writes are the
gateway's to get right. A raw client sends exactly the bytes under test."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import uuid

import pytest

from helpers import register_and_login, start_extra_gateway
from test_ws_close_handshake import RawSocket
from test_ws_hub import post, public_room, redis_client  # noqa: F401 (a fixture)


def frame_bytes(opcode: int, payload: bytes, fin: bool = True, masked: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    mask_bit = 0x80 if masked else 0
    if len(payload) < 126:
        head += bytes([mask_bit | len(payload)])
    elif len(payload) < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", len(payload))
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", len(payload))
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def ready_socket(gw: str, http) -> RawSocket:
    token, _ = await register_and_login(gw, http)
    raw = await RawSocket.connect(gw, token)
    assert json.loads((await raw.read_frame())[1])["type"] == "ready"
    return raw


async def next_json(raw: RawSocket) -> dict:
    while True:
        opcode, payload = await raw.read_frame()
        assert opcode != 0x8, f"closed: {payload!r}"
        if opcode == 0x1:
            return json.loads(payload)


async def failed_with(raw: RawSocket) -> int:
    """The close code of a connection the server failed: its close frame, then its FIN."""
    while True:
        opcode, payload = await raw.read_frame()
        if opcode == 0x8:
            break
    assert await asyncio.wait_for(raw.reader.read(), 5) == b""
    raw.writer.close()
    return struct.unpack("!H", payload[:2])[0]


async def test_a_fragmented_message_with_a_ping_between_its_fragments(suite, http):
    raw = await ready_socket(suite.gateway_urls[0], http)
    text = json.dumps({"type": "ping", "ref": "frag-é"}).encode()
    parts = [text[:5], text[5:12], text[12:]]
    raw.writer.write(frame_bytes(0x1, parts[0], fin=False))
    raw.writer.write(frame_bytes(0x9, b"between"))  # control frames may interleave
    raw.writer.write(frame_bytes(0x0, parts[1], fin=False))
    # the last fragment split across two TCP writes, in the middle of its header
    last = frame_bytes(0x0, parts[2])
    raw.writer.write(last[:3])
    await raw.writer.drain()
    await asyncio.sleep(0.1)
    raw.writer.write(last[3:])
    assert await raw.read_frame() == (0xA, b"between")  # the pong echoes the ping
    assert await next_json(raw) == {"type": "pong", "ref": "frag-é"}
    # several messages in one write are all handled, in order
    raw.writer.write(b"".join(frame_bytes(0x1, json.dumps({"type": "ping", "ref": n}).encode())
                              for n in range(5)))
    assert [(await next_json(raw))["ref"] for _ in range(5)] == list(range(5))
    raw.writer.write(frame_bytes(0x8, struct.pack("!H", 1000)))
    opcode, payload = await raw.read_frame()
    assert (opcode, payload[:2]) == (0x8, struct.pack("!H", 1000))  # our close, echoed
    assert await asyncio.wait_for(raw.reader.read(), 5) == b""  # then the server ends TCP
    raw.writer.close()


@pytest.mark.parametrize("frames, code", [
    ([frame_bytes(0x3, b"x")], 1002),  # a reserved opcode
    ([frame_bytes(0x1, b'{"type": "ping"}', masked=False)], 1002),  # client frames are masked
    ([frame_bytes(0x0, b"x")], 1002),  # a continuation with nothing to continue
    ([frame_bytes(0x1, b"a", fin=False), frame_bytes(0x1, b"b")], 1002),  # no continuation
    ([frame_bytes(0x9, b"x", fin=False)], 1002),  # a fragmented control frame
    ([bytes([0xC1, 0x81]) + b"\0\0\0\0x"], 1002),  # RSV1 without an extension
    ([frame_bytes(0x1, b'{"type": "\xff"}')], 1007),  # text that is not UTF-8
    ([frame_bytes(0x8, struct.pack("!H", 999))], 1002),  # an invalid close code
    ([frame_bytes(0x1, b"x" * 40_000, fin=False), frame_bytes(0x0, b"y" * 30_000)], 1009),
], ids=["opcode", "unmasked", "continuation", "interleaved", "control-fragment", "rsv",
        "utf8", "close-code", "fragments-too-big"])
async def test_protocol_errors_fail_the_connection_with_the_rfc_code(suite, http, frames, code):
    raw = await ready_socket(suite.gateway_urls[0], http)
    raw.writer.write(b"".join(frames))
    assert await failed_with(raw) == code


async def test_a_vanished_client_is_forgotten(suite, http, redis_client):
    """A client that drops TCP without a close frame: its socket leaves the hub (presence
    offline, so the user's connection count in Redis goes back to zero)."""
    client, prefix = redis_client
    gw = suite.gateway_urls[0]
    token, me = await register_and_login(gw, http)
    raw = await RawSocket.connect(gw, token)
    assert json.loads((await raw.read_frame())[1])["type"] == "ready"
    key = f"{prefix}user:{me['id']}:conns"
    assert await client.hlen(key) == 1
    raw.writer.transport.abort()  # a reset, no close frame
    for _ in range(100):
        if await client.hlen(key) == 0:
            break
        await asyncio.sleep(0.1)
    assert await client.hlen(key) == 0


async def test_paused_writes_are_held_and_sent_in_order_once_the_client_reads(suite, http):
    """A client that stops reading fills its socket buffer (16 KiB here): the gateway's
    protocol is paused, frames wait in the socket's backlog, and all of them go out, in
    order, once the client reads again (fewer than WS_SEND_QUEUE frames: no 1013)."""
    gw = suite.gateway_urls[0]
    proc, tight = start_extra_gateway(suite, f"gateway-paused-{uuid.uuid4().hex[:6]}",
                                      WS_SOCKET_SNDBUF="16384", WS_SEND_QUEUE="200")
    try:
        alice_token, _ = await register_and_login(gw, http)
        bob_token, _ = await register_and_login(gw, http)
        room = await public_room(http, gw, alice_token, bob_token)
        raw = await RawSocket.connect(tight, bob_token)
        assert json.loads((await raw.read_frame())[1])["type"] == "ready"
        raw.writer.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.writer.write(frame_bytes(0x1, json.dumps(
            {"type": "subscribe", "room_id": room["id"], "ref": "s"}).encode()))
        assert (await next_json(raw))["type"] == "subscribed"
        raw.writer.transport.pause_reading()  # stop reading: the kernel buffers fill up
        total = 60
        for batch in range(0, total, 10):
            await asyncio.gather(*(post(http, gw, alice_token, room["id"], "p" * 3000)
                                   for _ in range(10)))
        await asyncio.sleep(1.0)
        raw.writer.transport.resume_reading()
        seqs = []
        while len(seqs) < total:
            frame = await next_json(raw)
            if frame["type"] == "message":
                seqs.append(frame["message"]["seq"])
        assert seqs == list(range(1, total + 1))
        raw.writer.write(frame_bytes(0x8, struct.pack("!H", 1000)))
        assert (await raw.read_frame())[0] == 0x8
    finally:
        proc.stop()
