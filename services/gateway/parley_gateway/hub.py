"""This instance's registry of WebSocket connections and the fan-out to them.

Every connection owns a bounded send queue drained by one writer task, so a slow client
never stalls the event consumer or the other sockets: frames are serialized once per event
and the same string is queued to every target. A client whose queue is full is disconnected
with close code 1013 ("try again later"); it reconnects and resumes with
``subscribe {after_seq}``.
"""
from __future__ import annotations

import asyncio
import json
import uuid
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

from aiohttp import web

from parley_common.logs import get_logger

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

RECENT_ACKS = 256  # message ids a connection remembers having acked (to skip their echo)
CLOSE_HANDSHAKE_SECONDS = 2.0  # how long a server-initiated close waits for the client's reply


@dataclass(frozen=True)
class Frame:
    """One outgoing frame, serialized once and shared by every socket it goes to."""
    type: str
    text: str
    room_id: str | None = None  # frames about a room are held back while it replays
    seq: int | None = None  # message frames: lets a resuming subscription drop duplicates

    @classmethod
    def of(cls, type_: str, *, _room: str | None = None, _seq: int | None = None,
           **fields: Any) -> "Frame":
        """``_room``/``_seq`` steer delivery; ``fields`` are the frame's JSON content."""
        return cls(type_, json.dumps({"type": type_, **fields}, separators=(",", ":")),
                   _room, _seq)


_CLOSE = object()


class Connection:
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
        self.acked: OrderedDict[str, None] = OrderedDict()
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=queue_size)
        self.closing = False
        self.close_code: int | None = None
        self._writer: asyncio.Task | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._closer: asyncio.Task | None = None
        self._reader: asyncio.Task | None = None  # the handler's task while it is in receive()
        self._reading = False

    # --- sending -----------------------------------------------------------------------
    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.conn_id}")

    def push(self, frame: Frame) -> None:
        """Queue a live frame without waiting; an overflowing client is disconnected."""
        if self.closing:
            return
        if frame.room_id is not None and frame.room_id in self.replaying:
            self.replaying[frame.room_id].append(frame)
            return
        if frame.seq is not None and frame.seq <= self.replayed_to.get(frame.room_id, -1):
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("ws_slow_consumer", conn_id=self.conn_id, user_id=self.user_id,
                        queued=self.queue.qsize())
            self.close(CLOSE_TRY_AGAIN_LATER, "send queue overflow; reconnect and resume")

    async def send(self, frame: Frame) -> None:
        """Queue a direct reply (or replayed history), waiting for room in the queue."""
        if not self.closing:
            await self.queue.put(frame)

    def remember_ack(self, message_id: str) -> None:
        self.acked[message_id] = None
        while len(self.acked) > RECENT_ACKS:
            self.acked.popitem(last=False)

    async def _write_loop(self) -> None:
        metrics = self.hub.metrics
        try:
            while True:
                item = await self.queue.get()
                if item is _CLOSE:
                    break
                await self.ws.send_str(item.text)
                if metrics is not None:
                    metrics.ws_frames_out.labels(type=item.type).inc()
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass  # the socket went away; the reader side cleans up
        except Exception:
            log.exception("ws_writer_failed", conn_id=self.conn_id)

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

    # --- closing -----------------------------------------------------------------------
    def close(self, code: int, reason: str = "") -> None:
        """Close from anywhere (event consumer, timers): never blocks the caller."""
        if self.closing:
            return
        self.closing = True
        self.close_code = code
        if self._expiry is not None:
            self._expiry.cancel()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()  # see receive()
        self._closer = asyncio.create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        writer = self._writer
        if writer is not None:
            if code != CLOSE_TRY_AGAIN_LATER:
                # Frames already queued (e.g. the reply before a close) go out first.
                try:
                    self.queue.put_nowait(_CLOSE)
                    await asyncio.wait_for(asyncio.shield(writer), 1.0)
                except (asyncio.QueueFull, asyncio.TimeoutError):
                    pass
            writer.cancel()
            # Let the cancellation settle: the writer may share the transport's drain waiter
            # with ws.close() below, and a cancelled shared waiter would cancel that too.
            await asyncio.wait([writer], timeout=1.0)
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
            req = getattr(self.ws, "_req", None)
            transport = req.transport if req is not None else None
            if transport is not None:
                transport.abort()  # also when closing: close() would wait for a flush

    async def finish(self) -> None:
        """Called by the handler once the socket is done: let a close handshake in progress
        complete (bounded), then stop the writer task."""
        self.closing = True
        if self._expiry is not None:
            self._expiry.cancel()
        if self._closer is not None and not self._closer.done():
            await asyncio.wait([self._closer], timeout=3.5)
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            try:
                await self._writer
            except (asyncio.CancelledError, Exception):
                pass
        self._discard_queued()

    def _discard_queued(self) -> None:
        # Frees a handler blocked in send() on a full queue whose writer is gone.
        while True:
            try:
                self.queue.get_nowait()
            except asyncio.QueueEmpty:
                return

    def expire_at(self, loop_delay: float) -> None:
        if self._expiry is not None:  # a renewed token replaces the earlier deadline
            self._expiry.cancel()
        self._expiry = asyncio.get_running_loop().call_later(
            max(loop_delay, 0.0), self.close, CLOSE_UNAUTHENTICATED, "token expired")


class Hub:
    def __init__(self, settings, metrics=None):
        self.settings = settings
        self.metrics = metrics
        self.connections: dict[str, Connection] = {}
        self.by_user: dict[str, set[Connection]] = defaultdict(set)
        self.by_session: dict[str, set[Connection]] = defaultdict(set)
        self.by_room: dict[str, set[Connection]] = defaultdict(set)
        self.draining = False
        self.consumer = None  # events.EventConsumer, set by ws.setup_ws

    @property
    def consuming(self) -> bool:
        return self.consumer is not None and self.consumer.consuming

    # --- registry ----------------------------------------------------------------------
    def new_connection(self, ws: web.WebSocketResponse) -> Connection:
        conn = Connection(self, ws, self.settings.ws_send_queue)
        conn.start()
        return conn

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
