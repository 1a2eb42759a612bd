"""WebSocket frames: the outgoing ones encoded once, the per-loop-turn batching of socket
writes, and the parser of client frames (``FrameReader``).

A ``Frame`` holds its JSON (orjson; the stdlib encoder for what orjson refuses) and, built on
first use, its whole server-to-client WebSocket frame: FIN + text opcode, the length, the
payload (server frames are never masked, and the gateway's sockets never negotiate
compression). Every socket the frame goes to is handed the same bytes object.

``OutboundBatcher`` collects the sockets that got frames during one event-loop turn and
writes each one's frames with a single ``transport.write`` at the end of the turn (one
``call_soon`` for all of them), so a burst of events costs one syscall per socket, not one per
frame; it also counts the frames handed out, per type, into the metrics once per turn.

``FrameReader`` turns a client's bytes into whole messages (RFC 6455 §5): it unmasks (client
frames must be masked), joins fragmented messages, passes control frames through between
fragments, and refuses with the close code the RFC names: 1009 for a message over the size
limit (from the header, before buffering it), 1007 for text that is not UTF-8, 1002 for
anything else malformed (reserved bits or opcodes, an unmasked frame, a fragmented or oversized
control frame, a continuation with nothing to continue, a bad close payload). Its state when
idle is four slots; it keeps bytes only while a frame is incomplete.
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
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_NO_STATUS = 1005  # a close frame without a code (never sent on the wire)
CLOSE_INVALID_DATA = 1007
CLOSE_TOO_BIG = 1009


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


def control_frame(opcode: int, payload: bytes = b"") -> bytes:
    """An unmasked control frame (payload at most 125 bytes)."""
    return bytes((0x80 | opcode, len(payload))) + payload


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame; ``CLOSE_NO_STATUS`` gives an empty one. The reason is cut to fit the
    125-byte control frame on a character boundary."""
    if code == CLOSE_NO_STATUS:
        return control_frame(OP_CLOSE)
    encoded = reason.encode()[:123].decode(errors="ignore").encode()
    return control_frame(OP_CLOSE, code.to_bytes(2, "big") + encoded)


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR with the 4-byte mask, done as one big-integer XOR (no per-byte Python loop)."""
    size = len(payload)
    if not size:
        return payload
    key = (mask * ((size + 3) // 4))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")


def _valid_close_code(code: int) -> bool:
    """The codes a peer may send (RFC 6455 §7.4; 1004-1006 and 1015 are never on the wire)."""
    return code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999


class ProtocolError(Exception):
    """A client broke RFC 6455: fail the connection with ``code``."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class FrameReader:
    """Incremental parser of one client's frames into messages (see the module docstring).

    ``feed`` returns the complete messages as ``(opcode, payload)``: text as ``str``, binary
    as ``bytes``, close as ``(code, reason)``, ping/pong as ``bytes``. A protocol error is
    raised after the messages before it were returned by earlier calls; the messages of the
    same call before the error are in ``ProtocolError.messages``."""

    __slots__ = ("max_size", "pending", "fragments", "fragment_opcode")

    def __init__(self, max_size: int):
        self.max_size = max_size  # per message; 0: no limit
        self.pending = b""  # an incomplete frame's bytes
        self.fragments: list[bytes] | None = None  # a fragmented message's parts so far
        self.fragment_opcode = 0

    def feed(self, data: bytes) -> list:
        if self.pending:
            data = self.pending + data
            self.pending = b""
        messages: list = []
        pos, end = 0, len(data)
        try:
            while end - pos >= 2:
                first, second = data[pos], data[pos + 1]
                if first & 0x70:
                    raise ProtocolError(CLOSE_PROTOCOL_ERROR, "reserved bits set")
                if not second & 0x80:
                    raise ProtocolError(CLOSE_PROTOCOL_ERROR, "client frames must be masked")
                fin, opcode, length = first & 0x80, first & 0x0F, second & 0x7F
                head = 2
                if length == 126:
                    if end - pos < 4:
                        break
                    length, head = int.from_bytes(data[pos + 2:pos + 4], "big"), 4
                elif length == 127:
                    if end - pos < 10:
                        break
                    length, head = int.from_bytes(data[pos + 2:pos + 10], "big"), 10
                    if length >> 63:
                        raise ProtocolError(CLOSE_PROTOCOL_ERROR, "invalid frame length")
                self._check_header(fin, opcode, length)
                start = pos + head + 4
                if end - start < length:
                    break
                payload = unmask(data[start:start + length], data[pos + head:start])
                pos = start + length
                message = self._message(fin, opcode, payload)
                if message is not None:
                    messages.append(message)
        except ProtocolError as exc:
            exc.messages = messages
            raise
        if pos < end:
            self.pending = data[pos:]
        return messages

    def _check_header(self, fin: int, opcode: int, length: int) -> None:
        if opcode >= OP_CLOSE:
            if opcode > OP_PONG:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, "unknown opcode")
            if not fin or length > 125:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, "invalid control frame")
            return
        if opcode > OP_BINARY:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, "unknown opcode")
        if (opcode == OP_CONTINUATION) != (self.fragments is not None):
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, "unexpected continuation"
                                if opcode == OP_CONTINUATION else "expected a continuation")
        if self.max_size:
            size = length + (sum(map(len, self.fragments)) if self.fragments else 0)
            if size > self.max_size:
                raise ProtocolError(CLOSE_TOO_BIG, "message too big")

    def _message(self, fin: int, opcode: int, payload: bytes):
        if opcode >= OP_CLOSE:
            if opcode == OP_CLOSE:
                return opcode, _close_payload(payload)
            return opcode, payload
        if opcode == OP_CONTINUATION:
            self.fragments.append(payload)
            if not fin:
                return None
            opcode, payload = self.fragment_opcode, b"".join(self.fragments)
            self.fragments = None
        elif not fin:
            self.fragments, self.fragment_opcode = [payload], opcode
            return None
        if opcode == OP_TEXT:
            try:
                return opcode, payload.decode()
            except UnicodeDecodeError:
                raise ProtocolError(CLOSE_INVALID_DATA, "text is not UTF-8") from None
        return opcode, payload


def _close_payload(payload: bytes) -> tuple[int, str]:
    if not payload:
        return CLOSE_NO_STATUS, ""
    code = int.from_bytes(payload[:2], "big")
    if len(payload) < 2 or not _valid_close_code(code):
        raise ProtocolError(CLOSE_PROTOCOL_ERROR, "invalid close code")
    try:
        return code, payload[2:].decode()
    except UnicodeDecodeError:
        raise ProtocolError(CLOSE_INVALID_DATA, "close reason is not UTF-8") from None


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


class FrameRun:
    """Frames of one type to the same sockets, in order, as one item of a socket's batch:
    their wire bytes joined once (hub.deliver_run_to_room), not once per socket."""
    __slots__ = ("frames", "type", "wire")

    def __init__(self, frames) -> None:
        self.frames = tuple(frames)
        self.type = self.frames[0].type  # the metrics count frames by type
        self.wire = b"".join([frame.wire for frame in self.frames])


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
