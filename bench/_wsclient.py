"""A minimal WebSocket client protocol for load generation: many sockets in one process on one
core. It writes masked text frames (mask key 0, legal and free to apply), and hands every
received text payload to a callback as bytes, without decoding the JSON (the benchmark finds
what it needs with bytes.find). Not a general client: no fragmentation, no compression, no
binary frames; a close or an error just marks the socket closed.
"""
from __future__ import annotations

import asyncio
import base64
import os
import struct
from typing import Callable

_MASK0 = b"\x00\x00\x00\x00"


def text_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    return header + _MASK0 + payload


class WsClient(asyncio.Protocol):
    def __init__(self, host: str, path: str, token: str, on_text: Callable[["WsClient", bytes], None]):
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: "
                        f"{base64.b64encode(os.urandom(16)).decode()}\r\n"
                        f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closed = False
        self.close_code: int | None = None
        self.tag = None  # whatever the owner wants to attach

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc):
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed before the upgrade"))

    def send_text(self, payload: bytes) -> None:
        if not self.closed:
            self.transport.write(text_frame(payload))

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:12])
            del buf[:end + 4]
            if b" 101" not in status:
                self.opened.set_exception(ConnectionError(f"upgrade refused: {status!r}"))
                self.transport.close()
                return
            self.upgraded = True
            self.opened.set_result(self)
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = (buf[pos + 2] << 8) | buf[pos + 3], 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            if size - pos < head + length:
                break
            opcode = b0 & 0x0F
            start = pos + head
            if opcode == 0x1:
                self.on_text(self, bytes(buf[start:start + length]))
            elif opcode == 0x8:
                if length >= 2:
                    self.close_code = (buf[start] << 8) | buf[start + 1]
                self.closed = True
                self.transport.close()
            elif opcode == 0x9:  # ping: answer with a pong carrying the same payload
                payload = bytes(buf[start:start + length])
                self.transport.write(struct.pack("!BB", 0x8A, 0x80 | len(payload)) + _MASK0 + payload)
            pos = start + length
        if pos:
            del buf[:pos]


async def connect(loop: asyncio.AbstractEventLoop, host: str, port: int, token: str,
                  on_text, path: str = "/api/v1/ws", local_host: str | None = None) -> WsClient:
    _, client = await loop.create_connection(
        lambda: WsClient(f"{host}:{port}", path, token, on_text), host, port,
        local_addr=(local_host, 0) if local_host else None)
    await asyncio.wait_for(client.opened, 30)
    return client
