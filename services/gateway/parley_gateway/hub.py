"""This instance's registry of WebSocket connections and the fan-out to them.

A frame is serialized once per event, and its WebSocket wire bytes (header + JSON, unmasked,
uncompressed: sockets are opened with compression off) are built once too; every target
socket gets the same bytes object. Pushing a frame costs a list append: the hub writes each
socket's frames of one loop turn with one ``transport.write`` (wire.py). No task, no queue
per delivery.

A slow client is bounded the way the kernel tells us: while its transport is paused (its
buffer is over the high-water mark, WS_SOCKET_SNDBUF or asyncio's 64 KiB), frames wait in a
per-socket backlog of at most WS_SEND_QUEUE frames; one more and the socket is closed with
1013 ("try again later"); it reconnects and resumes with ``subscribe {after_seq}``.
"""
from __future__ import annotations

import asyncio
import math
import uuid
from collections import defaultdict, deque
from typing import Iterable

from aiohttp import web

from parley_common.logs import get_logger

from .metrics import NULL_METRICS
from .wire import Frame, OutboundBatcher

log = get_logger("parley_gateway.hub")

# Close codes of the public contract (DESIGN.md §5) plus 1013 for slow consumers.
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009  # sent by aiohttp itself (WebSocketResponse max_msg_size)
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


class LingeringWebSocketResponse(web.WebSocketResponse):
    """aiohttp closes the transport at once when it fails a connection (a frame over the size
    limit, a protocol error). Bytes the client is still sending then reach a closed socket, the
    kernel answers with a reset, and the client loses the close frame (1009) it had not read
    yet. Here that close lingers instead: FIN after our close frame, then keep reading (and
    dropping) what arrives until the client closes too or CLOSE_HANDSHAKE_SECONDS pass."""

    def _close_transport(self) -> None:
        req = self._req
        transport = req.transport if req is not None else None
        if transport is None or transport.is_closing() or not transport.can_write_eof():
            super()._close_transport()
            return
        transport.write_eof()
        asyncio.get_running_loop().call_later(CLOSE_HANDSHAKE_SECONDS, transport.close)


class Connection:
    # One per socket, for the socket's life: no per-instance __dict__ (memory per socket).
    __slots__ = ("hub", "ws", "conn_id", "user_id", "session_id", "expires_at", "user", "rooms",
                 "replaying", "replayed_to", "queue_size", "out", "backlog", "closing",
                 "close_code", "transport", "protocol", "_drainer", "expiry_bucket", "_closer",
                 "_reader", "_reading", "heard", "quiet_sweeps")

    def __init__(self, hub: "Hub", ws: web.WebSocketResponse, queue_size: int):
        self.hub = hub
        self.ws = ws
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
        self.closing = False
        self.close_code: int | None = None
        req = getattr(ws, "_req", None)
        self.transport = req.transport if req is not None else None
        self.protocol = req.protocol if req is not None else None
        self._drainer: asyncio.Task | None = None
        self.expiry_bucket: int | None = None  # Hub.expire_at: the hub's timer that closes it
        self._closer: asyncio.Task | None = None
        self._reader: asyncio.Task | None = None  # the handler's task while it is in receive()
        self._reading = False
        # The hub's heartbeat sweep (Hub.run_heartbeat) instead of aiohttp's per-socket
        # ping timers: anything the client sends counts as a sign of life.
        self.heard = True
        self.quiet_sweeps: int | None = None  # None: not swept (aiohttp's heartbeat, or none)
        protocol = self.protocol
        if protocol is not None and getattr(ws, "_heartbeat", None) is None:
            protocol._data_received_cb = self._heard  # aiohttp's hook for its own heartbeat
            self.quiet_sweeps = 0
        if protocol is not None and protocol._upgraded and protocol._payload_parser is not None:
            # Upgraded: every byte goes to the WebSocket parser from now on; the HTTP request
            # parser (with its C state) is dead weight for the socket's life.
            protocol._parser = None

    def _heard(self) -> None:
        self.heard = True

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
            await self._wait_drained()
            if self.closing:
                return
        self._enqueue(frame, bounded=False)
        self.hub.outbound.count(frame, 1)

    def _enqueue(self, frame: Frame, bounded: bool = True) -> None:
        backlog = self.backlog
        if backlog is None and self.protocol is not None and self.protocol.writing_paused:
            backlog = self._start_backlog()
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

    def _write(self, frames) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if len(frames) == 1:
            transport.write(frames[0].wire)
        else:
            transport.write(b"".join([frame.wire for frame in frames]))
        if self.backlog is None and self.protocol is not None and self.protocol.writing_paused:
            self._start_backlog()

    def _start_backlog(self) -> deque:
        self.backlog = deque()
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name=f"ws-drain-{self.conn_id}")
        return self.backlog

    async def _drain(self) -> None:
        """While the transport is paused: wait for it to resume, then write the backlog."""
        try:
            while self.backlog is not None:
                # aiohttp's own wait-for-resume; shielded: ws.close() may share its waiter
                await asyncio.shield(self.protocol._drain_helper())
                held = self.backlog
                self.backlog = deque()
                if held:
                    self._write(held)
                if not self.protocol.writing_paused and not self.backlog:
                    self.backlog = None
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass  # the socket went away; the reader side cleans up
        except Exception:
            log.exception("ws_drain_failed", conn_id=self.conn_id)

    async def _wait_drained(self) -> None:
        drainer = self._drainer
        if drainer is not None and not drainer.done():
            await asyncio.wait([drainer])

    # --- reading -----------------------------------------------------------------------
    async def receive(self):
        """The handler's next client frame; None once this server is closing the socket.

        aiohttp's ``ws.close()`` called while another task waits in ``receive()`` sends the
        close frame and then drops TCP at once, without the client's close frame (Chromium:
        ``wasClean: false``, aiohttp's client: 1006). So a close from elsewhere first ends
        this read (cancelling just the wait here), and closes with no read pending, which
        completes the closing handshake."""
        if self.closing:
            return None
        self._reader = asyncio.current_task()
        self._reading = True
        try:
            return await self.ws.receive()
        except asyncio.CancelledError:
            if self.closing and self._reader is None:  # interrupted by close(), not shutdown
                asyncio.current_task().uncancel()
                return None
            raise
        finally:
            self._reader = None
            self._reading = False

    async def linger(self) -> None:
        """After aiohttp failed the connection: stay until the client has closed its side (or
        the lingering close gives up), since returning from the handler closes the socket."""
        transport = self.transport
        deadline = asyncio.get_running_loop().time() + CLOSE_HANDSHAKE_SECONDS
        while transport is not None and not transport.is_closing() \
                and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)

    # --- closing -----------------------------------------------------------------------
    def close(self, code: int, reason: str = "") -> None:
        """Close from anywhere (event consumer, timers): never blocks the caller."""
        if self.closing:
            return
        self.closing = True
        self.close_code = code
        self.hub.cancel_expiry(self)
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()  # see receive()
        self._closer = asyncio.create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        if code != CLOSE_TRY_AGAIN_LATER:
            # Frames already queued (e.g. the reply before a close) go out first.
            self.flush()
            if self.backlog is not None:
                try:
                    await asyncio.wait_for(self._wait_drained(), 1.0)
                except asyncio.TimeoutError:
                    pass
        await self._stop_drainer()
        self._discard_queued()
        for _ in range(100):  # the handler's interrupted receive() must have ended first
            if not self._reading:
                break
            await asyncio.sleep(0.01)
        clean = False
        try:
            # The close frame, then the client's close frame within the bound.
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()[:120]),
                                   CLOSE_HANDSHAKE_SECONDS)
            clean = self.ws.exception() is None
        except (Exception, asyncio.CancelledError):
            pass
        if not clean:
            # A client that reads nothing cannot take a close frame either: drop the link.
            if self.transport is not None:
                self.transport.abort()  # also when closing: close() would wait for a flush

    async def _stop_drainer(self) -> None:
        drainer = self._drainer
        if drainer is not None and not drainer.done():
            drainer.cancel()
            await asyncio.wait([drainer], timeout=1.0)

    async def finish(self) -> None:
        """Called by the handler once the socket is done: let a close handshake in progress
        complete (bounded), then drop what is still queued."""
        self.closing = True
        self.hub.cancel_expiry(self)
        if self._closer is not None and not self._closer.done():
            await asyncio.wait([self._closer], timeout=3.5)
        await self._stop_drainer()
        self._discard_queued()

    def _discard_queued(self) -> None:
        self.out = []
        if self.backlog is not None:
            self.backlog = None

    def heartbeat(self) -> None:
        """One sweep of the hub's heartbeat (every half interval): a socket that sent nothing
        for a sweep is pinged at the next, and dropped at the one after if still silent (the
        pong is data too) - what aiohttp's per-socket heartbeat did, without its timers."""
        if self.quiet_sweeps is None:
            return
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
            # aiohttp's own handling of a missing pong: closed 1006, the reader gets an ERROR
            self.ws._handle_ping_pong_exception(asyncio.TimeoutError("no pong received"))

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
    def new_connection(self, ws: web.WebSocketResponse) -> Connection:
        return Connection(self, ws, self.settings.ws_send_queue)

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
        targets = self.by_room.get(room_id)
        if not targets:
            return 0
        count = 0
        outbound = self.outbound
        dirty = outbound.dirty
        for conn in tuple(targets):
            if conn.conn_id == skip:
                continue
            count += 1
            # The common case inline (this loop runs once per delivery): an open socket that
            # replays nothing, holds no backlog and whose transport takes writes gets the
            # frame appended to this turn's batch. Anything else goes through push().
            protocol = conn.protocol
            if (conn.closing or conn.replaying or conn.replayed_to
                    or conn.backlog is not None or protocol is None
                    or protocol.writing_paused):
                conn.push(frame)
                continue
            out = conn.out
            if not out:
                dirty.append(conn)
            out.append(frame)
        outbound.count(frame, count)  # also schedules this turn's flush
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
