"""WebSocket ``GET /api/v1/ws``: authentication and the frame protocol (DESIGN.md §5). The
hub, event consumer and presence are wired, started and drained by realtime.py; a session
gets them explicitly (realtime.Realtime).

Close codes: 4401 not authenticated / token expired, 4408 no auth frame in time, 4001
session revoked, 4429 too many messages, 1009 frame too large, 1001 server draining, and
1013 "try again later" when this server's send queue to a client overflowed (a client too
slow to read; it reconnects and resumes with ``subscribe {after_seq}``).

Tuning (environment, via Settings): WS_SEND_QUEUE (frames held per socket while its
transport is over its high-water mark, 256; see hub.py),
WS_RATE_PER_10S (send frames per user per 10 s, 30; this and the per-socket frame budget,
subscription and socket caps are in-process: budget.py), WS_AUTH_TIMEOUT_SECONDS (5),
WS_MAX_FRAME_BYTES (65536), and WS_SOCKET_SNDBUF (bytes the kernel and asyncio may buffer per
socket; 0 = kernel default) which bounds memory per client and makes a stalled client show
up as a full send queue sooner.
"""
from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from aiohttp import web

from parley_common.errors import (Forbidden, InvalidJson, ParleyError, RateLimited,
                                  Unavailable, ValidationFailed)
from parley_common.logs import get_logger
from parley_common.text import loads_bounded, storable, unstorable_details

from . import schemas, upgrade
from .budget import Verdict
from .frame_checks import FRAME_CHECKS
from .http import SchemaValidator
from .hub import (CLOSE_AUTH_TIMEOUT, CLOSE_INTERNAL, CLOSE_RATE_LIMITED,
                  CLOSE_SESSION_REVOKED, CLOSE_TRY_AGAIN_LATER, CLOSE_UNAUTHENTICATED,
                  Connection, Frame, Hub)
from .tokens import bearer
from .wire import OP_TEXT

if TYPE_CHECKING:
    from .realtime import Realtime

log = get_logger("parley_gateway.ws")

WS_PATH = "/api/v1/ws"
RATE_WINDOW = 10  # seconds of the ws-send budget (settings.ws_rate per window)
RATE_WARNINGS = 3  # rate_limited error frames before we close with 4429
REPLAY_PAGE = 100
MAX_PENDING = 32  # client messages waiting for the one being handled before reads pause
CLIENT_FRAME_TYPES = frozenset(schemas.FRAMES)
# Each client frame is checked against its schema before its handler runs, as REST bodies are.
FRAME_VALIDATORS = {type_: SchemaValidator(schema) for type_, schema in schemas.FRAMES.items()}


# --- the connection handler --------------------------------------------------------------

async def websocket_handler(realtime: "Realtime", request: web.Request) -> web.StreamResponse:
    """The upgrade, then the socket belongs to its Connection and session; this handler (and
    aiohttp's request) ends right after the handshake."""
    hub = realtime.hub
    if hub.draining:
        error = Unavailable("This server is draining; reconnect to another one.", retry_after=1)
        return web.json_response(error.to_body(), status=503,
                                 headers={"Retry-After": str(error.retry_after)})
    settings = realtime.settings
    # No permessage-deflate (none is offered back): the hub writes prepared uncompressed
    # frames (wire.py). No timers per socket: the hub pings silent sockets in one sweep.
    conn = hub.new_connection()
    response = await upgrade.accept(request, conn)
    _bound_socket_buffers(conn.transport, settings.ws_socket_sndbuf)
    WsSession(realtime, conn).start(request.headers.get("Authorization"))
    return response


class WsSession:
    """One socket's protocol state machine, driven by its Connection's callbacks: a client
    message starts a task only to handle it (and the ones that arrive meanwhile, in order);
    an idle socket has none."""

    __slots__ = ("realtime", "conn", "hub", "settings", "rpc", "metrics", "registered",
                 "rate_warnings", "budget", "authenticated", "task", "pending", "auth_timer",
                 "paused")

    def __init__(self, realtime: "Realtime", conn: Connection):
        self.realtime = realtime
        self.conn = conn
        self.hub: Hub = realtime.hub
        self.settings = realtime.settings
        self.rpc = realtime.rpc
        self.metrics = realtime.metrics
        self.registered = False
        self.rate_warnings = 0
        self.budget = realtime.budgets.for_connection()  # every client frame takes a token
        self.authenticated = False
        self.task: asyncio.Task | None = None  # handling messages; None when idle
        self.pending: deque | None = None  # messages that arrived while the task ran
        self.auth_timer: asyncio.TimerHandle | None = None
        self.paused = False  # reading paused: too many messages waiting
        conn.listener = self

    # --- life cycle --------------------------------------------------------------------
    def start(self, authorization: str | None) -> None:
        token = bearer(authorization)
        if token is not None:
            self._run(self.authenticate(token, None))
        else:
            self.auth_timer = asyncio.get_running_loop().call_later(
                self.settings.ws_auth_timeout, self._auth_timed_out)

    def _auth_timed_out(self) -> None:
        self.auth_timer = None
        if not self.authenticated and self.task is None:
            self.conn.close(CLOSE_AUTH_TIMEOUT, "no auth frame in time")

    def on_message(self, opcode: int, payload) -> None:
        """A whole client message (Connection): handled now, or after the ones before it.
        It takes its budget token as it arrives (the client's rate, not how fast we answer);
        the verdict is acted on in order."""
        verdict = self.budget.admit() if self.authenticated else None
        if self.task is not None:
            pending = self.pending
            if pending is None:
                pending = self.pending = deque()
            pending.append((opcode, payload, verdict))
            if len(pending) >= MAX_PENDING and not self.paused:
                self.paused = True  # the client pipelines faster than we answer: TCP waits
                self.conn.transport.pause_reading()
            return
        self._run(self.handle_message(opcode, payload, verdict))

    def _run(self, first) -> None:
        self.task = asyncio.create_task(self._work(first))

    async def _work(self, first) -> None:
        """Handle ``first``, then every message that arrived meanwhile, in order."""
        conn = self.conn
        try:
            await first
            while self.pending and not conn.closing:
                await self.handle_message(*self.pending.popleft())
                if self.paused and len(self.pending) <= MAX_PENDING // 2:
                    self._resume_reading()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("ws_handler_failed", conn_id=conn.conn_id)
            conn.close(CLOSE_INTERNAL, "internal error")
        finally:
            self.task = None
            self.pending = None
            if self.paused:  # also while closing: the client's close frame must be read
                self._resume_reading()
            if conn.listener is None:  # the socket went away while we worked
                await self.finish()

    def _resume_reading(self) -> None:
        self.paused = False
        if not self.conn.transport.is_closing():
            self.conn.transport.resume_reading()

    def on_closed(self) -> None:
        """The socket is gone (Connection.connection_lost)."""
        if self.auth_timer is not None:
            self.auth_timer.cancel()
            self.auth_timer = None
        if self.task is not None:
            return  # _work finishes once its message is handled
        if self.registered:
            asyncio.create_task(self.finish())  # presence is told over the network
        else:
            self._log_closed()

    async def finish(self) -> None:
        conn = self.conn
        if self.registered:
            self.registered = False
            self.metrics.ws_connections.dec()
            try:
                await self.realtime.presence.disconnected(conn.conn_id, conn.user_id)
            except Exception as exc:
                log.warning("presence_disconnect_failed", conn_id=conn.conn_id,
                            error=str(exc))
        self._log_closed()

    def _log_closed(self) -> None:
        log.info("ws_closed", conn_id=self.conn.conn_id, user_id=self.conn.user_id,
                 code=self.conn.close_code)

    async def handle_message(self, opcode: int, payload, verdict: str | None = None) -> None:
        if self.conn.closing:
            return
        if not self.authenticated:
            await self.authenticate_frame(opcode, payload)
        elif not await self.admit_frame(verdict):
            pass  # refused with a warning (or the socket is closing): not handled
        elif opcode == OP_TEXT:
            await self.handle_text(payload)
        else:
            self.count_in("binary")
            await self.reply_error(InvalidJson("Send text frames holding one JSON object."))

    async def authenticate_frame(self, opcode: int, payload) -> None:
        """The first frame of a socket opened without an Authorization header."""
        if self.auth_timer is not None:
            self.auth_timer.cancel()
            self.auth_timer = None
        if opcode != OP_TEXT:
            self.conn.close(CLOSE_UNAUTHENTICATED, "authenticate first")
            return
        self.count_in("auth")
        frame = _loads(payload)
        ref = frame.get("ref") if isinstance(frame, dict) else None
        if (not isinstance(frame, dict) or frame.get("type") != "auth"
                or not FRAME_VALIDATORS["auth"].is_valid(frame)):
            self.conn.close(CLOSE_UNAUTHENTICATED, "first frame must be auth {token}")
            return
        await self.authenticate(frame["token"], ref)

    async def authenticate(self, token: str, ref) -> None:
        conn = self.conn
        try:
            principal = await self.realtime.tokens.verify(token)
            me = await self.rpc.call("auth", "get_me", principal.user_id)
        except ParleyError as exc:  # Unauthenticated, or NotFound for a deleted user
            if isinstance(exc, Unavailable):
                conn.close(CLOSE_TRY_AGAIN_LATER, "try again later")
            else:
                conn.close(CLOSE_UNAUTHENTICATED, "not authenticated")
            return
        if conn.closing:  # the client left meanwhile
            return
        conn.user_id, conn.session_id = principal.user_id, principal.session_id
        conn.expires_at = float(principal.expires_at)
        conn.user = {k: me.get(k) for k in ("id", "username", "display_name")}
        if not self.realtime.budgets.socket_allowed(len(self.hub.by_user.get(conn.user_id, ()))):
            conn.close(CLOSE_RATE_LIMITED, "too many sockets for this user")
            return
        self.hub.register(conn)
        self.registered = True
        self.authenticated = True
        self.metrics.ws_connections.inc()
        # A logout may have raced this auth: its event found no socket to close. Registered
        # now, a later event finds it; an earlier revocation is in the cache.
        try:
            revoked = await self.realtime.tokens.is_revoked(conn.session_id)
        except ParleyError:  # neither the cache nor auth can tell: come back later
            conn.close(CLOSE_TRY_AGAIN_LATER, "try again later")
            return
        if revoked:
            conn.close(CLOSE_SESSION_REVOKED, "session revoked")
            return
        conn.expire_at(conn.expires_at - time.time())
        try:
            await self.realtime.presence.connected(conn.conn_id, conn.user_id)
        except Exception as exc:  # presence is best effort; the socket still works
            log.warning("presence_connect_failed", conn_id=conn.conn_id, error=str(exc))
        await self.reply("ready", ref, user=me, session_id=conn.session_id)
        log.info("ws_ready", conn_id=conn.conn_id, user_id=conn.user_id)

    # --- frames ------------------------------------------------------------------------
    async def handle_text(self, data: str) -> None:
        frame = _loads(data)
        if frame is None:
            self.count_in("invalid")
            await self.reply_error(InvalidJson("The frame is not valid JSON."))
            return
        if not isinstance(frame, dict):
            self.count_in("invalid")
            await self.reply_error(ValidationFailed("A frame must be a JSON object.",
                                                    {"frame": "must be an object"}))
            return
        ref = frame.get("ref")
        if ref is not None and not (isinstance(ref, int) or isinstance(ref, str) and storable(ref)):
            ref = None
        unstorable = unstorable_details(frame)
        if unstorable:
            self.count_in("invalid")
            await self.reply_error(ValidationFailed(details=unstorable), ref)
            return
        frame_type = frame.get("type")
        handler = HANDLERS.get(frame_type) if isinstance(frame_type, str) else None
        self.count_in(frame_type if handler is not None else "unknown")
        if handler is None:
            await self.reply_error(ValidationFailed(
                "Unknown frame type.", {"type": f"must be one of {sorted(CLIENT_FRAME_TYPES)}"}),
                ref)
            return
        try:
            FRAME_CHECKS[frame_type](frame)  # send: by hand, same errors (frame_checks.py)
            await handler(self, frame, ref)
        except ParleyError as exc:
            await self.reply_error(exc, ref)
        except Exception:
            log.exception("ws_frame_failed", type=frame_type, conn_id=self.conn.conn_id)
            await self.reply_error(ParleyError(), ref)

    async def on_ping(self, frame: dict, ref) -> None:
        await self.reply("pong", ref)

    async def on_renew(self, frame: dict, ref) -> None:
        """A second ``auth {token}``: a refreshed token of the same session keeps the socket
        open past the first token's expiry (POST /auth/refresh issues it)."""
        # expired or revoked: an error frame
        principal = await self.realtime.tokens.verify(frame["token"])
        conn = self.conn
        if (principal.user_id, principal.session_id) != (conn.user_id, conn.session_id):
            raise Forbidden("A socket keeps the session it was opened with.")
        if principal.expires_at > conn.expires_at:
            conn.expires_at = float(principal.expires_at)
            conn.expire_at(conn.expires_at - time.time())
        await self.reply("renewed", ref, expires_in=max(0, int(conn.expires_at - time.time())))

    async def on_subscribe(self, frame: dict, ref) -> None:
        room_id, after_seq = frame["room_id"], frame.get("after_seq")
        conn, uid = self.conn, self.conn.user_id
        if room_id not in conn.rooms:
            if not self.realtime.budgets.subscription_allowed(len(conn.rooms)):
                raise RateLimited(f"A socket may subscribe to at most "
                                  f"{self.settings.ws_max_subscriptions} rooms; unsubscribe "
                                  f"from one first.", retry_after=1)
            # Membership first (403 public / 404 hidden rooms): a non-member is never
            # registered on the room, not even while a check is under way.
            await self.rpc.call("rooms", "list_messages", uid, room_id, limit=1)
        # Hold live frames for this room from now on, so nothing falls between the history
        # we replay and the live stream; duplicates are dropped by seq when we flush.
        conn.replaying[room_id] = []
        self.hub.subscribe(conn, room_id)
        last = after_seq
        try:
            try:
                # One call: list_messages enforces membership (403 public / 404 hidden rooms)
                # and answers the room's last_seq too.
                page = await self.rpc.call(
                    "rooms", "list_messages", uid, room_id,
                    **({"limit": 1} if after_seq is None
                       else {"after_seq": after_seq, "limit": REPLAY_PAGE}))
            except ParleyError:
                self.hub.unsubscribe(conn, room_id)
                raise
            # live frames of this room start after it
            self.realtime.events.ordering.baseline(room_id, page.get("last_seq"))
            await self.reply("subscribed", ref, room_id=room_id, last_seq=page.get("last_seq"))
            if after_seq is not None:
                while True:
                    messages = page.get("messages") or []
                    for message in messages:
                        await conn.send(Frame.of("message", message=message))
                        last = message.get("seq", last)
                    if not messages or not page.get("has_more"):
                        break
                    page = await self.rpc.call("rooms", "list_messages", uid, room_id,
                                               after_seq=last, limit=REPLAY_PAGE)
        finally:
            held = conn.replaying.pop(room_id, [])
            if last is not None:
                conn.replayed_to[room_id] = last
            for held_frame in held:
                if held_frame.seq is None or last is None or held_frame.seq > last:
                    conn.push(held_frame)

    async def on_unsubscribe(self, frame: dict, ref) -> None:
        room_id = frame["room_id"]
        self.hub.unsubscribe(self.conn, room_id)
        await self.reply("unsubscribed", ref, room_id=room_id)

    async def on_send(self, frame: dict, ref) -> None:
        room_id, text, client_id = frame["room_id"], frame["text"], frame["client_id"]
        if not await self.within_rate(ref):
            return
        result = await self.realtime.posts.post(self.conn.user_id, room_id, text, client_id,
                                                reply_to=frame.get("reply_to"))
        message = result["message"]  # {message, created}
        self.hub.remember_ack(self.conn, message["id"])
        await self.reply("ack", ref, client_id=client_id, message=message)

    async def on_typing(self, frame: dict, ref) -> None:
        room_id = frame["room_id"]
        if room_id not in self.conn.rooms:
            raise Forbidden("Subscribe to the room before sending typing.")
        await self.realtime.presence.typing(room_id, self.conn.user)

    async def on_read(self, frame: dict, ref) -> None:
        room_id, seq = frame["room_id"], frame["seq"]
        result = await self.rpc.call("rooms", "mark_read", self.conn.user_id, room_id, seq)
        await self.reply("read", ref, room_id=room_id, user_id=self.conn.user_id,
                         seq=result.get("last_read_seq", seq),
                         unread_count=result.get("unread_count"),
                         mention_count=result.get("mention_count"))

    # --- rate limit --------------------------------------------------------------------
    async def admit_frame(self, verdict: str | None = None) -> bool:
        """Every client frame takes a token of this socket's budget (budget.py): its verdict
        from when it arrived, or now (a frame that arrived before the socket was ready)."""
        if verdict is None:
            verdict = self.budget.admit()
        if verdict == Verdict.OK:
            return True
        if verdict == Verdict.CLOSE:
            log.warning("ws_frame_budget_close", user_id=self.conn.user_id)
            self.conn.close(CLOSE_RATE_LIMITED, "too many frames")
            return False
        await self.reply_error(RateLimited(
            f"At most {self.settings.ws_frames_per_second:g} frames per second; slow down.",
            retry_after=max(1, int(self.budget.retry_after + 0.999))))
        return False

    async def within_rate(self, ref) -> bool:
        wait = self.realtime.budgets.send_wait(self.conn.user_id)  # in-process, per user
        ttl = wait + 0.999
        if wait == 0.0:
            self.rate_warnings = 0
            return True
        self.rate_warnings += 1
        if self.rate_warnings > RATE_WARNINGS:
            log.warning("ws_rate_limit_close", user_id=self.conn.user_id)
            self.conn.close(CLOSE_RATE_LIMITED, "too many messages")
            return False
        await self.reply_error(RateLimited(
            f"At most {self.settings.ws_rate} messages per {RATE_WINDOW} seconds; slow down.",
            retry_after=max(int(ttl), 1)), ref)
        return False

    # --- replies -----------------------------------------------------------------------
    async def reply(self, type_: str, ref, **fields: Any) -> None:
        if ref is not None:
            fields["ref"] = ref
        await self.conn.send(Frame.of(type_, **fields))

    async def reply_error(self, exc: ParleyError, ref=None) -> None:
        fields: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.details:
            fields["details"] = exc.details
        await self.reply("error", ref, **fields)

    def count_in(self, frame_type: str) -> None:
        label = frame_type if frame_type in CLIENT_FRAME_TYPES else "invalid"
        self.metrics.count_frame_in(label)


# Client frame type -> its WsSession handler (built once, not per socket).
HANDLERS = {
    "subscribe": WsSession.on_subscribe,
    "unsubscribe": WsSession.on_unsubscribe,
    "send": WsSession.on_send,
    "typing": WsSession.on_typing,
    "read": WsSession.on_read,
    "ping": WsSession.on_ping,
    "auth": WsSession.on_renew,
}


def _bound_socket_buffers(transport, size: int) -> None:
    """Cap what the kernel and asyncio buffer for one client (0 = kernel default), so a
    client that stops reading fills its send queue, and is dropped, sooner."""
    if size <= 0 or transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        except OSError:
            pass
    transport.set_write_buffer_limits(high=size)


# --- validation helpers ------------------------------------------------------------------

def _loads(data: str):
    try:
        return loads_bounded(data)
    except ValueError:  # not JSON, or nested too deeply
        return None
