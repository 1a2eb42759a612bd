"""Outgoing WebSocket frames, encoded once, and the per-loop-turn batching of socket writes.

A ``Frame`` holds its JSON (orjson; the stdlib encoder for what orjson refuses) and, built on
first use, its whole server-to-client WebSocket frame: FIN + text opcode, the length, the
payload (server frames are never masked, and the gateway's sockets never negotiate
compression). Every socket the frame goes to is handed the same bytes object.

``OutboundBatcher`` collects the sockets that got frames during one event-loop turn and
writes each one's frames with a single ``transport.write`` at the end of the turn (one
``call_soon`` for all of them), so a burst of events costs one syscall per socket, not one per
frame; it also counts the frames handed out, per type, into the metrics once per turn.
"""
from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass
from functools import cached_property
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; stdlib as a fallback
    orjson = None

_OP_TEXT_FIN = 0x81


def dumps(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except TypeError:  # e.g. an integer beyond 64 bits: the stdlib encoder takes it
            pass
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def loads(raw: bytes | str) -> Any:
    """JSON from bytes or text (orjson; the stdlib parser for what orjson refuses, e.g. an
    integer beyond 64 bits or NaN). Raises ValueError when it is not JSON."""
    if orjson is not None:
        try:
            return orjson.loads(raw)
        except ValueError:
            pass
    return json.loads(raw)


def websocket_text_frame(payload: bytes) -> bytes:
    """One unmasked, uncompressed, final text frame (RFC 6455 §5.2)."""
    size = len(payload)
    if size < 126:
        header = bytes((_OP_TEXT_FIN, size))
    elif size < 65536:
        header = struct.pack("!BBH", _OP_TEXT_FIN, 126, size)
    else:
        header = struct.pack("!BBQ", _OP_TEXT_FIN, 127, size)
    return header + payload


@dataclass(frozen=True)
class Frame:
    """One outgoing frame, serialized once and shared by every socket it goes to."""
    type: str
    payload: bytes
    room_id: str | None = None  # frames about a room are held back while it replays
    seq: int | None = None  # message frames: lets a resuming subscription drop duplicates

    @classmethod
    def of(cls, type_: str, *, _room: str | None = None, _seq: int | None = None,
           **fields: Any) -> "Frame":
        """``_room``/``_seq`` steer delivery; ``fields`` are the frame's JSON content."""
        return cls(type_, dumps({"type": type_, **fields}), _room, _seq)

    @cached_property
    def wire(self) -> bytes:
        return websocket_text_frame(self.payload)

    @property
    def text(self) -> str:
        return self.payload.decode()


class OutboundBatcher:
    """The sockets with frames waiting in this loop turn; flushed once at its end."""

    def __init__(self, metrics):
        self.metrics = metrics
        self.dirty: list = []  # the sockets with frames in their ``out`` this turn
        self._scheduled = False
        self._counts: dict[str, int] = {}

    def mark(self, conn) -> None:
        self.dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def count(self, frame: Frame, sockets: int) -> None:
        """A frame handed to ``sockets`` sockets (metrics, added up once per turn)."""
        counts = self._counts
        counts[frame.type] = counts.get(frame.type, 0) + sockets
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        dirty = self.dirty
        self.dirty = []
        for conn in dirty:
            try:
                conn.flush()
            except Exception:  # one broken socket must not stop the others' writes
                conn.out = []
        if dirty:
            self.metrics.ws_writes.inc(len(dirty))
        if self._counts:
            for frame_type, count in self._counts.items():
                self.metrics.ws_frames_out.labels(type=frame_type).inc(count)
            self._counts = {}
