"""Every server-initiated close completes the WebSocket closing handshake (RFC 6455 §7.1.1):
the server sends its close frame, then waits for the client's before it drops TCP, so
browsers report ``wasClean: true`` and aiohttp's client the real code instead of 1006.

A raw client checks the server's side exactly (the TCP connection stays open until our close
frame, then ends); aiohttp's client checks what an application sees. 4001 and 1001 (drain)
come from outside the socket's handler (hub.Connection.close), 4401/4408 from the handler
itself; 1013 and 4429 take the same path as 4001. 1009 (frame too large) fails the connection
(RFC 6455 §7.1.7): its close frame reaches the client, then the server's FIN; the server reads
and drops what the client still sends until the client closes too (hub.Connection.fail)."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import struct
from urllib.parse import urlsplit

import aiohttp

from helpers import auth_headers, register_and_login, start_extra_gateway, unique

OPEN_AFTER_CLOSE_FRAME = 0.5  # the server must still be waiting for our reply by then


class RawSocket:
    """A minimal WebSocket client over a bare TCP stream, frames parsed by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, base: str, token: str | None = None) -> "RawSocket":
        parts = urlsplit(base)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        key = base64.b64encode(os.urandom(16)).decode()
        headers = [f"GET /api/v1/ws HTTP/1.1", f"Host: {parts.netloc}", "Upgrade: websocket",
                   "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                   "Sec-WebSocket-Version: 13"]
        if token:
            headers.append(f"Authorization: Bearer {token}")
        writer.write(("\r\n".join(headers) + "\r\n\r\n").encode())
        status = await reader.readline()
        assert b" 101 " in status, status
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        return cls(reader, writer)

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        head = bytes([0x80 | opcode])
        if len(payload) < 126:
            head += bytes([0x80 | len(payload)])
        elif len(payload) < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", len(payload))
        self.writer.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send_json(self, frame: dict) -> None:
        self.send(0x1, json.dumps(frame).encode())

    async def read_frame(self, timeout: float = 10) -> tuple[int, bytes]:
        first, second = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return first & 0x0F, await self.reader.readexactly(length)

    async def close_code(self, timeout: float = 10) -> int:
        """Read until the server's close frame; check that the server then waits for ours,
        answer it, and check that the server ends the connection. The code it sent."""
        while True:
            opcode, payload = await self.read_frame(timeout)
            if opcode == 0x8:
                break
        code = struct.unpack("!H", payload[:2])[0]
        # Still open: no EOF and no reset while the server waits for our close frame.
        try:
            extra = await asyncio.wait_for(self.reader.read(1), OPEN_AFTER_CLOSE_FRAME)
        except asyncio.TimeoutError:
            extra = None
        assert extra is None, f"server dropped the connection after close {code} " \
                              f"without waiting for the client's close frame ({extra!r})"
        self.send(0x8, payload[:2])
        assert await asyncio.wait_for(self.reader.read(), 5) == b""  # then TCP ends
        self.writer.close()
        return code


async def test_logout_close_4001_completes_the_handshake(suite, http):
    gw = suite.gateway_urls[0]
    token, _ = await register_and_login(gw, http)
    raw = await RawSocket.connect(gw, token)
    assert json.loads((await raw.read_frame())[1])["type"] == "ready"
    status = (await http.post(f"{gw}/api/v1/auth/logout", headers=auth_headers(token))).status
    assert status == 204
    assert await raw.close_code() == 4001


async def test_logout_close_4001_reaches_aiohttp_client_as_4001(suite, http):
    gw = suite.gateway_urls[1]
    token, _ = await register_and_login(gw, http)
    ws = await http.ws_connect(gw.replace("http", "ws") + "/api/v1/ws",
                               headers=auth_headers(token))
    assert (await ws.receive_json())["type"] == "ready"
    assert (await http.post(f"{gw}/api/v1/auth/logout", headers=auth_headers(token))).status == 204
    msg = await asyncio.wait_for(ws.receive(), 10)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4001
    await asyncio.sleep(0.2)
    assert ws.closed and ws.close_code == 4001


async def test_bad_token_4401_and_auth_timeout_4408_complete_the_handshake(suite):
    gw = suite.gateway_urls[0]
    raw = await RawSocket.connect(gw, "not-a-token")
    assert await raw.close_code() == 4401
    raw = await RawSocket.connect(gw)
    raw.send_json({"type": "ping"})  # the first frame must be auth
    assert await raw.close_code() == 4401
    raw = await RawSocket.connect(gw)
    assert await raw.close_code(timeout=15) == 4408


async def test_drain_close_1001_completes_the_handshake(suite, http):
    proc, url = await asyncio.to_thread(start_extra_gateway, suite, f"gateway-hs-{unique('')}")
    try:
        token, _ = await register_and_login(url, http)
        raw = await RawSocket.connect(url, token)
        assert json.loads((await raw.read_frame())[1])["type"] == "ready"
        proc.popen.send_signal(signal.SIGTERM)
        assert await raw.close_code() == 1001
    finally:
        proc.stop()


async def test_frame_too_large_1009_reaches_the_client_as_a_close_frame(suite, http):
    """A frame over 64 KiB fails the connection (RFC 6455 §7.1.7): the close frame with 1009
    reaches the client even while it is still sending, never a reset or a bare drop (1006).
    The server parses nothing after the oversized frame's header; it closes lingering
    (hub.Connection.fail: FIN after the close frame, then read and drop until the client
    closes)."""
    gw = suite.gateway_urls[0]
    token, _ = await register_and_login(gw, http)
    raw = await RawSocket.connect(gw, token)
    assert json.loads((await raw.read_frame())[1])["type"] == "ready"
    # The header first and the payload a moment later: the server fails the connection on
    # the header, so the payload meets a socket the server is closing. A plain close would
    # answer it with a reset that swallows the unread close frame.
    payload = b'"' + b"x" * (1024 * 1024) + b'"'  # well past what socket buffers hold
    raw.writer.write(bytes([0x81, 0x80 | 127]) + struct.pack("!Q", len(payload)) + b"\0" * 4)
    await raw.writer.drain()
    await asyncio.sleep(0.3)
    raw.writer.write(payload)  # masked with zeros: the bytes as they are
    while True:
        opcode, payload = await raw.read_frame()
        if opcode == 0x8:
            break
    assert struct.unpack("!H", payload[:2])[0] == 1009
    raw.writer.close()

    ws = await http.ws_connect(gw.replace("http", "ws") + "/api/v1/ws",
                               headers=auth_headers(token))
    assert (await ws.receive_json())["type"] == "ready"
    await ws.send_str("x" * (64 * 1024 + 1))
    msg = await asyncio.wait_for(ws.receive(), 10)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1009
    assert ws.close_code == 1009
