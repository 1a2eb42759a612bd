"""This instance's registry of WebSocket connections and the fan-out to them.

Each socket is a ``Connection``: after the opening handshake (upgrade.py) it is the asyncio
protocol of the socket's transport, parses the client's frames (wire.FrameReader), answers
pings, hands whole messages to its session (ws.py) and runs the closing handshake.

A frame is serialized once per event, and its WebSocket wire bytes (header + JSON, unmasked,
uncompressed: sockets are opened with compression off) are built once too; every target
socket gets the same bytes object. Pushing a frame costs a list append: the hub writes each
socket's frames of one loop turn with one ``transport.write`` (wire.py). No task, no queue
per delivery.

A slow client is bounded the way the kernel tells us: while its transport is paused
(``pause_writing``: its buffer is over the high-water mark, WS_SOCKET_SNDBUF or 64 KiB),
frames wait in a per-socket backlog of at most WS_SEND_QUEUE frames; one more and the socket
is closed with 1013 ("try again later"); it reconnects and resumes with ``subscribe
{after_seq}``. ``resume_writing`` writes the backlog (no task per paused socket).
"""
from __future__ import annotations

import asyncio
import math
import uuid
from collections import defaultdict, deque
from typing import Iterable

from parley_common.logs import get_logger

from .metrics import NULL_METRICS
from .wire import (OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, Frame, FrameReader,
                   FrameRun, OutboundBatcher, ProtocolError, close_frame, control_frame)

log = get_logger("parley_gateway.hub")

# Close codes of the public contract (DESIGN.md §5) plus 1013 for slow consumers.
CLOSE_GOING_AWAY = 1001
CLOSE_ABNORMAL = 1006  # never sent: the socket ended without a close frame
CLOSE_TOO_BIG = 1009  # a client frame over WS_MAX_FRAME_BYTES (wire.FrameReader)
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN_LATER = 1013  # our send queue to this client overflowed: reconnect and resume
CLOSE_SESSION_REVOKED = 4001
CLOSE_UNAUTHENTICATED = 4401
CLOSE_AUTH_TIMEOUT = 4408
CLOSE_RATE_LIMITED = 4429

RECENT_ACKS = 8192  # message ids the hub remembers having acked, and to which socket
CLOSE_HANDSHAKE_SECONDS = 2.0  # how long a server-initiated close waits for the client's reply
EXPIRY_RESOLUTION = 1.0  # sockets whose tokens expire within the same second share one timer
DEFAULT_HEARTBEAT_SECONDS = 20.0  # a socket silent this long is pinged; no pong: dropped
PING_FRAME = b"\x89\x00"  # FIN + ping, no payload, unmasked (server to client)

__all__ = ["Frame", "Connection", "Hub"]


class Connection(asyncio.Protocol):
    """One WebSocket after its opening handshake: the asyncio protocol of its transport
    (upgrade.py hands the socket over from aiohttp), the frames to it, and its closing.

    What it receives is parsed here (wire.FrameReader) and handed, whole message by whole
    message, to its ``listener`` (the session, ws.py): ``on_message(opcode, payload)`` and
    ``on_closed()`` once the socket is gone. Pings are answered here, without the listener.
    An idle socket is this object, its transport and its parser: no task, no queue, no
    timer of its own (the hub sweeps heartbeats and token expiries)."""

    # One per socket, for the socket's life: no per-instance __dict__ (memory per socket).
    __slots__ = ("hub", "listener", "conn_id", "user_id", "session_id", "expires_at", "user",
                 "rooms", "replaying", "replayed_to", "queue_size", "out", "backlog",
                 "closing", "close_code", "close_sent", "transport", "reader",
                 "writing_paused", "_drained", "_close_timer", "expiry_bucket", "heard",
                 "quiet_sweeps")

    def __init__(self, hub: "Hub", queue_size: int, max_frame: int = 0):
        self.hub = hub
        self.listener = None  # on_message(opcode, payload) / on_closed(): the session
        self.conn_id = uuid.uuid4().hex
        self.user_id: str | None = None
        self.session_id: str | None = None
        self.expires_at: float = 0.0
        self.user: dict | None = None  # {id, username, display_name} once authenticated
        self.rooms: set[str] = set()
        # room_id -> live frames held back while that room's history is being replayed
        self.replaying: dict[str, list[Frame]] = {}
        # room_id -> the last seq a subscribe {after_seq} replayed: live copies are dropped
        self.replayed_to: dict[str, int] = {}
        self.queue_size = queue_size
        self.out: list[Frame] = []  # frames of this loop turn, written by the hub's flush
        self.backlog: deque[Frame] | None = None  # frames held while the transport is paused
        self.closing = False  # no more frames to the client: we are closing, or it is gone
        self.close_code: int | None = None
        self.close_sent = False
        self.transport: asyncio.Transport | None = None
        self.reader: FrameReader | None = FrameReader(max_frame)  # None: input is discarded
        self.writing_paused = False  # the transport is over its high-water mark
        self._drained: asyncio.Future | None = None  # send() waiting for a backlog to go
        self._close_timer: asyncio.TimerHandle | None = None  # gives up a closing handshake
        self.expiry_bucket: int | None = None  # Hub.expire_at: the hub's timer that closes it
        # The hub's heartbeat sweep (Hub.run_heartbeat): anything the client sends counts
        # as a sign of life.
        self.heard = True
        self.quiet_sweeps = 0

    @property
    def protocol(self) -> "Connection":
        """The socket's asyncio protocol, which is this connection."""
        return self

    # --- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.heard = True
        reader = self.reader
        if reader is None:  # closed for reading (a failed connection lingers): dropped
            return
        try:
            messages = reader.feed(data)
        except ProtocolError as exc:
            self._dispatch(exc.messages)
            self.fail(exc.code, exc.reason)
            return
        self._dispatch(messages)

    def _dispatch(self, messages: list) -> None:
        for opcode, payload in messages:
            if opcode == OP_TEXT or opcode == OP_BINARY:
                if not self.closing and self.listener is not None:
                    self.listener.on_message(opcode, payload)
            elif opcode == OP_PING:
                if not self.close_sent:
                    self.transport.write(control_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                self._close_received(*payload)
                return
            # a pong: only a sign of life (heard)

    def eof_received(self) -> bool:
        return False  # the client half-closed: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self.close_code is None:
            self.close_code = CLOSE_ABNORMAL
        self.closing = True
        self.reader = None
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self._discard_queued()
        self._wake_senders()
        self.hub.cancel_expiry(self)
        self.hub.unregister(self)
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.on_closed()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        held = self.backlog
        if held is None:
            return
        self.backlog = None
        if held:
            self._write(held)
        if self.writing_paused:  # that write filled the buffer again: keep holding
            self.backlog = deque()
        else:
            self._wake_senders()

    # --- sending -----------------------------------------------------------------------
    def push(self, frame: Frame) -> None:
        """Send a live frame without waiting; an overflowing client is disconnected."""
        if self.closing:
            return
        if frame.room_id is not None and frame.room_id in self.replaying:
            self.replaying[frame.room_id].append(frame)
            return
        if frame.seq is not None and frame.seq <= self.replayed_to.get(frame.room_id, -1):
            return
        self._enqueue(frame)

    async def send(self, frame: Frame) -> None:
        """Send a direct reply (or replayed history), waiting while the client is behind."""
        if self.closing:
            return
        backlog = self.backlog
        if backlog is not None and len(backlog) >= self.queue_size:
            if self._drained is None:
                self._drained = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._drained)  # resume_writing, or the socket is gone
            if self.closing:
                return
        self._enqueue(frame, bounded=False)
        self.hub.outbound.count(frame, 1)

    def _enqueue(self, frame: Frame, bounded: bool = True) -> None:
        backlog = self.backlog
        if backlog is None and self.writing_paused:
            backlog = self.backlog = deque()
        if backlog is not None:
            if bounded and len(backlog) >= self.queue_size:
                log.warning("ws_slow_consumer", conn_id=self.conn_id, user_id=self.user_id,
                            queued=len(backlog))
                self.close(CLOSE_TRY_AGAIN_LATER, "send queue overflow; reconnect and resume")
                return
            backlog.append(frame)
            return
        if not self.out:
            self.hub.outbound.mark(self)
        self.out.append(frame)

    def flush(self) -> None:
        """Write this loop turn's frames with one transport.write (called by the hub)."""
        out = self.out
        if not out:
            return
        self.out = []
        self._write(out)

    def _write(self, frames, tail: bytes = b"") -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if len(frames) == 1 and not tail:
            transport.write(frames[0].wire)
        else:
            transport.write(b"".join([frame.wire for frame in frames]) + tail)

    def _wake_senders(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _discard_queued(self) -> None:
        self.out = []
        self.backlog = None

    # --- closing -----------------------------------------------------------------------
    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake from anywhere (event consumer, timers, the session);
        never blocks. What is queued for the client goes out before the close frame (but
        not for 1013: the client is too slow for it); the client's close frame, or
        CLOSE_HANDSHAKE_SECONDS, ends the connection."""
        queued = self._begin_closing(code)
        if queued is None:
            return
        self._send_close(code, reason, queued if code != CLOSE_TRY_AGAIN_LATER else ())

    def fail(self, code: int, reason: str) -> None:
        """The client broke the protocol (1002, 1007, 1009): the close frame, then FIN, and
        what the client still sends is read and dropped until it closes its side or
        CLOSE_HANDSHAKE_SECONDS pass (closing the socket at once would make the kernel answer
        those bytes with a reset, and the client could lose the close frame)."""
        self.reader = None
        if self._begin_closing(code) is not None:
            self._send_close(code, reason)
        transport = self.transport
        if transport is not None and not transport.is_closing() and transport.can_write_eof():
            transport.write_eof()

    def _begin_closing(self, code: int) -> list[Frame] | None:
        """Mark the socket closing with ``code`` and drop what was queued for the client
        (senders waiting for a backlog wake up): the dropped frames, or None if it was
        closing already."""
        if self.closing:
            return None
        self.closing = True
        self.close_code = code
        self.hub.cancel_expiry(self)
        queued = self.out + list(self.backlog or ())
        self._discard_queued()
        self._wake_senders()
        return queued

    def _send_close(self, code: int, reason: str, queued=()) -> None:
        transport = self.transport
        if self.close_sent or transport is None or transport.is_closing():
            return
        self.close_sent = True
        self._write(queued, close_frame(code, reason))
        self._close_timer = asyncio.get_running_loop().call_later(
            CLOSE_HANDSHAKE_SECONDS, self._give_up_closing)

    def _close_received(self, code: int, reason: str) -> None:
        """The client's close frame: the reply to ours, or its own close (echoed)."""
        self.reader = None
        self._begin_closing(code)
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not self.close_sent:
            self.close_sent = True
            transport.write(close_frame(code, reason))
        transport.close()  # the server closes TCP first (RFC 6455 §7.1.1)
        if self._close_timer is None:  # close() waits for the buffer to go out: bounded
            self._close_timer = asyncio.get_running_loop().call_later(
                CLOSE_HANDSHAKE_SECONDS, self._give_up_closing)

    def _give_up_closing(self) -> None:
        """No close frame back in time: a client that reads nothing cannot take one either."""
        self._close_timer = None
        if self.transport is not None:
            self.transport.abort()

    def heartbeat(self) -> None:
        """One sweep of the hub's heartbeat (every half interval): a socket that sent nothing
        for a sweep is pinged at the next, and dropped at the one after if still silent (the
        pong is data too)."""
        if self.heard:
            self.heard = False
            self.quiet_sweeps = 0
            return
        self.quiet_sweeps += 1
        transport = self.transport
        if self.closing or transport is None or transport.is_closing():
            return
        if self.quiet_sweeps == 2:
            transport.write(PING_FRAME)
        elif self.quiet_sweeps > 2:
            log.info("ws_pong_missing", conn_id=self.conn_id, user_id=self.user_id)
            self.close_code = CLOSE_ABNORMAL  # no close frame to a peer that is not there
            transport.abort()

    def expire_at(self, loop_delay: float) -> None:
        """Close with 4401 once the token has expired (a renewed token moves the deadline)."""
        self.hub.expire_at(self, loop_delay)


class Hub:
    def __init__(self, settings, metrics=NULL_METRICS):
        self.settings = settings
        self.connections: dict[str, Connection] = {}
        self.by_user: dict[str, set[Connection]] = defaultdict(set)
        self.by_session: dict[str, set[Connection]] = defaultdict(set)
        self.by_room: dict[str, set[Connection]] = defaultdict(set)
        self.outbound = OutboundBatcher(metrics)
        self.draining = False
        # message id -> the conn_id of the socket whose ack carried it: that socket skips the
        # message frame (DESIGN.md §5 allows either; one map for the hub, not one per socket;
        # ids, not sockets, so a closed socket is not kept alive by it)
        self.acked_by: dict[str, str] = {}
        self._expiring: dict[int, set[Connection]] = {}  # expiry second -> its sockets

    # --- registry ----------------------------------------------------------------------
    def new_connection(self) -> Connection:
        return Connection(self, self.settings.ws_send_queue,
                          getattr(self.settings, "ws_max_frame", 0))

    def register(self, conn: Connection) -> None:
        self.connections[conn.conn_id] = conn
        self.by_user[conn.user_id].add(conn)
        self.by_session[conn.session_id].add(conn)

    def unregister(self, conn: Connection) -> None:
        if self.connections.pop(conn.conn_id, None) is None:
            return
        _discard(self.by_user, conn.user_id, conn)
        _discard(self.by_session, conn.session_id, conn)
        for room_id in list(conn.rooms):
            _discard(self.by_room, room_id, conn)
        conn.rooms.clear()

    def subscribe(self, conn: Connection, room_id: str) -> None:
        if conn.closing:  # on its way out, or gone while a subscribe awaited its RPC
            return
        conn.rooms.add(room_id)
        self.by_room[room_id].add(conn)

    def unsubscribe(self, conn: Connection, room_id: str) -> None:
        conn.rooms.discard(room_id)
        conn.replaying.pop(room_id, None)
        conn.replayed_to.pop(room_id, None)
        _discard(self.by_room, room_id, conn)

    def drop_room(self, room_id: str, user_id: str | None = None) -> None:
        """Forget subscriptions to a room (of one user, or of everyone when it was deleted)."""
        for conn in list(self.by_room.get(room_id, ())):
            if user_id is None or conn.user_id == user_id:
                self.unsubscribe(conn, room_id)

    def has_user(self, user_id: str) -> bool:
        return bool(self.by_user.get(user_id))

    # --- token expiry: one timer per second of expiries, not one per socket -------------
    def expire_at(self, conn: Connection, loop_delay: float) -> None:
        self.cancel_expiry(conn)
        if conn.closing:  # e.g. gone while its auth awaited an RPC: no timer keeps it
            return
        loop = asyncio.get_running_loop()
        bucket = math.ceil((loop.time() + max(loop_delay, 0.0)) / EXPIRY_RESOLUTION)
        conns = self._expiring.get(bucket)
        if conns is None:
            conns = self._expiring[bucket] = set()
            loop.call_at(bucket * EXPIRY_RESOLUTION, self._expire, bucket)
        conns.add(conn)
        conn.expiry_bucket = bucket

    def cancel_expiry(self, conn: Connection) -> None:
        bucket, conn.expiry_bucket = conn.expiry_bucket, None
        if bucket is not None:
            self._expiring.get(bucket, set()).discard(conn)

    def _expire(self, bucket: int) -> None:
        for conn in self._expiring.pop(bucket, ()):
            conn.expiry_bucket = None
            conn.close(CLOSE_UNAUTHENTICATED, "token expired")

    def remember_ack(self, conn: Connection, message_id: str) -> None:
        acked = self.acked_by
        acked[message_id] = conn.conn_id
        if len(acked) > RECENT_ACKS:
            del acked[next(iter(acked))]  # the oldest

    # --- heartbeat ---------------------------------------------------------------------
    async def run_heartbeat(self, interval: float) -> None:
        """Ping silent sockets and drop the ones that do not answer (Connection.heartbeat):
        one sweep over all sockets every interval/2 instead of timers per socket."""
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval / 2)
            for conn in list(self.connections.values()):
                try:
                    conn.heartbeat()
                except Exception:  # one broken socket must not stop the sweep
                    log.exception("ws_heartbeat_failed", conn_id=conn.conn_id)

    # --- fan-out -----------------------------------------------------------------------
    def subscribers(self, room_id: str) -> set[Connection]:
        return set(self.by_room.get(room_id, ()))

    def of_users(self, user_ids: Iterable[str]) -> set[Connection]:
        found: set[Connection] = set()
        for user_id in user_ids or ():
            found |= self.by_user.get(user_id, set())
        return found

    def deliver(self, frame: Frame, targets: Iterable[Connection],
                skip=None) -> int:
        count = 0
        for conn in targets:
            if skip is not None and skip(conn):
                continue
            conn.push(frame)
            count += 1
        self.outbound.count(frame, count)
        return count

    def deliver_to_room(self, frame: Frame, room_id: str, skip: str | None = None) -> int:
        """``deliver`` to a room's subscribers (but the one whose conn_id is ``skip``), without
        building a target set."""
        return self.deliver_run_to_room(room_id, (frame,), (skip,))

    def deliver_run_to_room(self, room_id: str, frames, senders) -> int:
        """Frames of one room, in order (one post batch's messages of the room), to the room's
        subscribers; each frame skips the socket whose conn_id is its sender (``senders``:
        one conn_id or None per frame). The frames count as ``len(frames)`` deliveries each
        socket, and it is what the loop below pays per socket, not per frame: an open socket
        that replays nothing, holds no backlog, takes writes and sent none of them gets ONE
        item in this turn's batch, the frames' wire bytes joined once for the whole room (a
        socket with nothing else this turn is written that very bytes object). Any other
        socket gets the frames one by one through push(), which keeps its rules."""
        targets = self.by_room.get(room_id)
        if not targets:
            return 0
        per_socket = len(frames)
        item = frames[0] if per_socket == 1 else FrameRun(frames)
        skips = {sender for sender in senders if sender is not None}
        count = 0
        dirty = self.outbound.dirty
        for conn in tuple(targets):
            if (conn.closing or conn.replaying or conn.replayed_to or conn.backlog is not None
                    or conn.writing_paused or (skips and conn.conn_id in skips)):
                conn_id = conn.conn_id
                for frame, sender in zip(frames, senders):
                    if sender != conn_id:
                        conn.push(frame)
                        count += 1
                continue
            count += per_socket
            out = conn.out
            if not out:
                dirty.append(conn)
            out.append(item)
        self.outbound.count(item, count)  # also schedules this turn's flush
        return count

    async def close_session(self, session_id: str, code: int = CLOSE_SESSION_REVOKED) -> int:
        conns = list(self.by_session.get(session_id, ()))
        for conn in conns:
            conn.close(code, "session revoked")
        return len(conns)

    async def close_user(self, user_id: str, code: int = CLOSE_SESSION_REVOKED) -> int:
        conns = list(self.by_user.get(user_id, ()))
        for conn in conns:
            conn.close(code, "account deleted")
        return len(conns)

    async def shutdown(self) -> None:
        """Stop taking sockets and close every one with 1001; the handlers clean up."""
        self.draining = True
        conns = list(self.connections.values())
        for conn in conns:
            conn.close(CLOSE_GOING_AWAY, "server draining")
        deadline = asyncio.get_running_loop().time() + max(self.settings.drain_seconds - 1, 1)
        while self.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)


def _discard(index: dict, key, conn: Connection) -> None:
    bucket = index.get(key)
    if bucket is not None:
        bucket.discard(conn)
        if not bucket:
            index.pop(key, None)
