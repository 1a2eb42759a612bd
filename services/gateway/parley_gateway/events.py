"""This instance's event consumer: every domain and presence event, turned into frames.

One exclusive, auto-delete queue ``gateway-events-<instance>`` bound with ``#`` to
``auth.events``, ``rooms.events`` and ``presence.events`` (broadcast: every instance sees
every event and delivers it to the sockets it holds). Robust connection, bounded prefetch,
ack after handling. The same connection publishes this instance's presence events.

Acks are batched: the events handled in one loop turn are acknowledged with ONE
``basic.ack(multiple)`` for the highest delivery tag (an ack per event cost a frame, a queue
hop in aiormq's writer and a send syscall each). ``multiple`` also covers an event with a
lower tag still being handled (one awaiting an RPC); that is harmless here: the queue is
exclusive and auto-delete, so nothing is ever redelivered to this instance anyway - the ack
only moves the prefetch window.

Each event type has one handler (``EventConsumer.handlers``, a table built once); an event
type without a handler is acknowledged and ignored.

Deliveries come straight from aiormq (``_on_delivery``): aio-pika's consumer wraps every
delivery in an ``IncomingMessage`` and runs the callback as a second task, work that was paid
per event. aio-pika still owns the robust connection and restores the channel, the queue and
its bindings after a reconnect, but not a consumer it did not register: the consumer is a
``parley_common.aio_consumer.UnderlayConsumer``, which consumes again once aio-pika has
restored the channel (as the RPC client's reply consumer does). Rooms announces a post batch
as ONE ``messages_posted`` event, whose frames reach every socket in one loop turn (one write
per socket for the batch).
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aio_pika
from aiormq.abc import DeliveredMessage

from parley_common import bus
from parley_common.aio_consumer import UnderlayConsumer
from parley_common.errors import ParleyError
from parley_common.logs import get_logger
from parley_common.timeutil import parse_iso

from .hub import CLOSE_SESSION_REVOKED, CLOSE_TRY_AGAIN_LATER, Frame, Hub
from .metrics import NULL_METRICS
from .ordering import RoomSequencer
from .wire import loads

log = get_logger("parley_gateway.events")

MAX_PREFETCH = 64
DEFAULT_SESSION_TTL = 900.0  # when an event names no expiry: the access-token lifetime
PROFILE_LOOKUP_SECONDS = 3.0  # rooms.room_ids_for_user for a user_updated fan-out
HISTORY_FILL_SECONDS = 3.0  # rooms.list_messages closing a gap in a room's live stream


def unix_seconds(value: Any) -> float | None:
    """Unix seconds from a unix number or an ISO 8601 string; None when neither."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    moment = parse_iso(value)
    return None if moment is None else moment.timestamp()


class EventConsumer:
    """Collaborators: the hub (sockets), rpc (history fills, profile fan-out), tokens (local
    revocation), metrics, and presence (membership tracking; set by the wiring, realtime.py,
    since presence publishes through this consumer's connection)."""

    def __init__(self, hub: Hub, *, rpc, tokens, amqp_uri: str, instance: str,
                 send_queue: int = 256, metrics=NULL_METRICS):
        self.rpc = rpc
        self.tokens = tokens
        self.metrics = metrics
        self.presence = None  # presence.Presence, set by the wiring before start()
        # Called with the user id of each user_updated / user_deleted (the avatar cache).
        self.profile_listeners: list = []
        self._events_in: dict[str, Any] = {}  # event type -> its events_in counter child
        self._acks_due: dict[Any, int] = {}  # channel -> highest delivery tag handled this turn
        self._acked_upto: dict[Any, int] = {}  # channel -> highest tag acked (acks only rise)
        # aio-pika runs each delivery as its own task, so a prefetched burst is handled before
        # any socket writer runs: keep a burst well inside a healthy client's send queue.
        self.prefetch = max(1, min(MAX_PREFETCH, send_queue // 2))
        self.hub = hub
        self.amqp_uri = amqp_uri
        self.instance = instance
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._presence_exchange = None
        self._consumer: UnderlayConsumer | None = None  # on the events channel
        # room_id -> (frames, senders) of the messages_posted being handled, else None
        self._runs: dict[str, tuple[list, list]] | None = None
        # Live message frames reach the sockets in seq order per room (ordering.py).
        self.ordering = RoomSequencer(self._deliver_message, self._history_after,
                                      self._resume_room)
        self.handlers = {
            event_type: getattr(self, f"_on_{event_type}") for event_type in (
                "messages_posted", "message_posted", "message_edited", "message_deleted",
                "messages_read", "typing", "online", "offline", "room_created", "room_updated",
                "room_deleted", "member_joined", "member_left", "session_revoked",
                "user_updated", "user_deleted", "reaction_added", "reaction_removed")}

    @property
    def consuming(self) -> bool:
        return (self._consumer is not None and self._consumer.consuming
                and self._connection is not None
                and not self._connection.is_closed)

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.amqp_uri)
        # Events published while the broker was away never reach our (new) queue.
        self._connection.reconnect_callbacks.add(self._resync_rooms)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        queue = await channel.declare_queue(bus.gateway_events_queue(self.instance),
                                            exclusive=True, auto_delete=True)
        for name in bus.EVENT_EXCHANGES:
            exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC,
                                                      durable=True)
            await queue.bind(exchange, routing_key="#")
        publish_channel = await self._connection.channel()
        self._presence_exchange = await publish_channel.declare_exchange(
            bus.PRESENCE_EVENTS, aio_pika.ExchangeType.TOPIC, durable=True)
        self._consumer = UnderlayConsumer(channel, queue.name, self._on_delivery)
        await self._consumer.start()
        log.info("event_consumer_started", queue=queue.name)

    async def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
        self.ordering.close()
        if self._connection is not None:
            try:
                await self._connection.close()
            except Exception:
                pass
            self._connection = None

    async def publish(self, event_type: str, payload: dict, persistent: bool) -> None:
        """Publish on presence.events (routing key = event type), like nameko events."""
        if self._presence_exchange is None:
            return
        await self._presence_exchange.publish(
            aio_pika.Message(
                json.dumps(payload).encode(), content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=(aio_pika.DeliveryMode.PERSISTENT if persistent
                               else aio_pika.DeliveryMode.NOT_PERSISTENT)),
            routing_key=event_type)

    async def _on_delivery(self, message: DeliveredMessage) -> None:
        """One event from aiormq (a task of aiormq's per delivery): handled, then acked."""
        event_type = message.routing_key or ""
        try:
            payload = loads(message.body)
            if not isinstance(payload, dict):
                raise ValueError("payload is not an object")
        except ValueError:
            log.warning("event_undecodable", type=event_type, exchange=message.exchange)
            self._ack(message)
            return
        counter = self._events_in.get(event_type)
        if counter is None:
            counter = self._events_in[event_type] = self.metrics.events_in.labels(type=event_type)
        counter.inc()
        stamp = message.header.properties.timestamp
        sent_at = (stamp.timestamp() if stamp else None) or _payload_time(payload)
        if sent_at is not None:
            self.metrics.event_lag.observe(max(time.time() - sent_at, 0.0))
        try:
            await self.route(event_type, payload)
        except Exception:
            # A broadcast event that fails here would fail again on redelivery: log, move on.
            log.exception("event_handling_failed", type=event_type)
        self._ack(message)

    def _ack(self, message: DeliveredMessage) -> None:
        tag, channel = message.delivery_tag, message.channel
        if tag is None:
            return
        due = self._acks_due
        if not due:
            asyncio.get_running_loop().call_soon(self._flush_acks)
        if tag > due.get(channel, 0):
            due[channel] = tag

    def _flush_acks(self) -> None:
        due, self._acks_due = self._acks_due, {}
        for channel, tag in due.items():
            if tag <= self._acked_upto.get(channel, 0) or channel.is_closed:
                continue
            self._acked_upto[channel] = tag
            asyncio.ensure_future(self._send_ack(channel, tag))

    @staticmethod
    async def _send_ack(channel, tag: int) -> None:
        try:
            await channel.basic_ack(tag, multiple=True, wait=False)
        except Exception as exc:  # the channel went away: its queue (exclusive) went too
            log.warning("event_ack_failed", error=repr(exc))

    # --- routing -----------------------------------------------------------------------
    async def route(self, event_type: str, payload: dict) -> None:
        handler = self.handlers.get(event_type)
        if handler is not None:
            await handler(payload)

    def _to_room(self, room_id: str, frame: Frame, skip=None) -> None:
        self.hub.deliver(frame, self.hub.subscribers(room_id), skip)

    def _to_members_and_subscribers(self, room_id: str, member_ids, frame: Frame) -> None:
        self.hub.deliver(frame, self.hub.subscribers(room_id) | self.hub.of_users(member_ids))

    async def _on_messages_posted(self, payload: dict) -> None:
        """Every message of one post batch (rooms' store/posted.py), handled in this one call:
        all of the batch's frames reach the sockets' batches in the same loop turn, so each
        socket gets its frames of the batch in one write."""
        messages = payload.get("messages")
        if not isinstance(messages, list):
            return
        # The ordering emits this batch's frames into per-room runs; each room's run then
        # reaches its sockets in one pass (hub.deliver_run_to_room), the loop over a room's
        # sockets paid once per room, not once per message. All of it is one synchronous
        # step: no socket changes state between a frame's emission and its delivery.
        self._runs = {}
        try:
            for message in messages:
                if isinstance(message, dict):
                    self._offer_message(message)
        finally:
            self._deliver_runs()
            self._runs = None

    async def _on_message_posted(self, payload: dict) -> None:
        """One message (what rooms published before messages_posted)."""
        self._offer_message(payload.get("message") or {})

    def _offer_message(self, message: dict) -> None:
        room_id, seq = message.get("room_id"), message.get("seq")
        self._mention(message, message.get("mentions"))
        if not self.hub.by_room.get(room_id) or not isinstance(seq, int):
            self.ordering.forget(room_id)  # nobody here listens: nothing to order
            return
        self.ordering.offer(room_id, seq, message)

    def _deliver_message(self, room_id: str, seq: int, message: dict) -> None:
        """The ordering's output: one message frame, in seq order, to the room's sockets."""
        frame = Frame.of("message", _room=room_id, _seq=seq, message=message)
        # The sending connection already has this message in its ack.
        sender = self.hub.acked_by.pop(message.get("id"), None)
        runs = self._runs
        if runs is None:
            self.hub.deliver_to_room(frame, room_id, skip=sender)
            return
        run = runs.get(room_id)
        if run is None:
            run = runs[room_id] = ([], [])
        run[0].append(frame)
        run[1].append(sender)

    def _deliver_runs(self) -> None:
        """Deliver the message frames collected so far in this batch, room by room."""
        runs = self._runs
        if not runs:
            return
        self._runs = {}
        deliver = self.hub.deliver_run_to_room
        for room_id, (frames, senders) in runs.items():
            deliver(room_id, frames, senders)

    async def _history_after(self, room_id: str, after_seq: int, limit: int) -> list:
        """Missing messages of a room, read as one of its subscribers (members may read)."""
        for conn in list(self.hub.by_room.get(room_id, ())):
            page = await self.rpc.call("rooms", "list_messages", conn.user_id, room_id,
                                              after_seq=after_seq, limit=limit,
                                              timeout=HISTORY_FILL_SECONDS)
            return page.get("messages") or []
        return []

    def _resync_rooms(self, *_args) -> None:
        for room_id in list(self.ordering.rooms):
            self.ordering.resync(room_id)

    def _resume_room(self, room_id: str) -> None:
        """A gap we cannot fill: the room's sockets reconnect and resume from history."""
        for conn in list(self.hub.by_room.get(room_id, ())):
            conn.close(CLOSE_TRY_AGAIN_LATER, "missed messages; reconnect and resume")

    async def _on_message_edited(self, payload: dict) -> None:
        message = payload.get("message") or {}
        room_id = message.get("room_id")
        self._to_room(room_id, Frame.of("message_edited", _room=room_id, message=message))
        self._mention(message, payload.get("new_mentions"))  # only those the edit added

    def _mention(self, message: dict, user_ids) -> None:
        """A ``mention`` frame to every socket of the users a message newly mentions, whether
        or not they subscribed to its room (rooms never lists the author; muted rooms too:
        the client counts the mention and shows no notification)."""
        if not user_ids or not isinstance(user_ids, list):
            return
        author_id = (message.get("author") or {}).get("id")
        targets = self.hub.of_users(uid for uid in user_ids if uid != author_id)
        if targets:
            self._deliver_runs()  # the batch's earlier messages go before this mention
            self.hub.deliver(Frame.of("mention", room_id=message.get("room_id"),
                                      message=message), targets)

    async def _on_message_deleted(self, payload: dict) -> None:
        room_id = payload.get("room_id")
        self._to_room(room_id, Frame.of("message_deleted", _room=room_id, room_id=room_id,
                                        message_id=payload.get("message_id"),
                                        seq=payload.get("seq")))

    async def _on_reaction_added(self, payload: dict) -> None:
        self._to_room(payload.get("room_id"), _reaction_frame("reaction_added", payload))

    async def _on_reaction_removed(self, payload: dict) -> None:
        self._to_room(payload.get("room_id"), _reaction_frame("reaction_removed", payload))

    async def _on_messages_read(self, payload: dict) -> None:
        room_id = payload.get("room_id")
        self._to_room(room_id, Frame.of("read", _room=room_id, room_id=room_id,
                                        user_id=payload.get("user_id"),
                                        seq=payload.get("seq")))

    async def _on_typing(self, payload: dict) -> None:
        room_id, user = payload.get("room_id"), payload.get("user") or {}
        user_id = user.get("id")
        frame = Frame.of("typing", _room=room_id, room_id=room_id,
                         user={k: user.get(k) for k in ("id", "username", "display_name")})
        self._to_room(room_id, frame, skip=lambda conn: conn.user_id == user_id)

    async def _presence(self, payload: dict, status: str) -> None:
        user_id = payload.get("user_id")
        for room_id in payload.get("room_ids") or ():
            frame = Frame.of("presence", _room=room_id, room_id=room_id, user_id=user_id,
                             status=status)
            self._to_room(room_id, frame, skip=lambda conn: conn.user_id == user_id)

    async def _on_online(self, payload: dict) -> None:
        await self._presence(payload, "online")

    async def _on_offline(self, payload: dict) -> None:
        await self._presence(payload, "offline")

    async def _on_room_created(self, payload: dict) -> None:
        room = payload.get("room") or {}
        member_ids = payload.get("member_ids") or [room.get("owner_id")]
        frame = Frame.of("room_created", room=room)
        if room.get("kind") == "public":
            targets = set(self.hub.connections.values())
        else:
            targets = self.hub.of_users(member_ids)
        self.hub.deliver(frame, targets)
        await self._track_membership(room.get("id"), member_ids, joined=True)

    async def _on_room_updated(self, payload: dict) -> None:
        room = payload.get("room") or {}
        self._to_members_and_subscribers(room.get("id"), payload.get("member_ids"),
                                         Frame.of("room_updated", room=room))

    async def _on_room_deleted(self, payload: dict) -> None:
        room_id, member_ids = payload.get("room_id"), payload.get("member_ids") or []
        self._to_members_and_subscribers(room_id, member_ids,
                                         Frame.of("room_deleted", room_id=room_id))
        self.hub.drop_room(room_id)
        await self._track_membership(room_id, member_ids, joined=False)

    async def _on_member_joined(self, payload: dict) -> None:
        room_id, user = payload.get("room_id"), payload.get("user") or {}
        self._to_members_and_subscribers(room_id, payload.get("member_ids"),
                                         Frame.of("member_joined", _room=room_id,
                                                  room_id=room_id, user=user))
        await self._track_membership(room_id, [user.get("id")], joined=True)
        # A newcomer who is already connected announced their presence before they belonged
        # here; tell this room's subscribers now, or they would show them offline.
        user_id = user.get("id")
        if user_id and room_id and self.presence is not None \
                and await self.presence.is_online(user_id):
            await self._presence({"user_id": user_id, "room_ids": [room_id]}, "online")

    async def _on_member_left(self, payload: dict) -> None:
        room_id, user = payload.get("room_id"), payload.get("user") or {}
        user_id = user.get("id") or payload.get("user_id")
        # The leaver's own sockets hear it too (their other tabs drop the room).
        self._to_members_and_subscribers(
            room_id, list(payload.get("member_ids") or []) + [user_id],
            Frame.of("member_left", _room=room_id, room_id=room_id, user_id=user_id))
        self.hub.drop_room(room_id, user_id)
        await self._track_membership(room_id, [user_id], joined=False)

    async def _track_membership(self, room_id, user_ids, joined: bool) -> None:
        """Keep user:<uid>:rooms fresh for users connected here (presence fan-out)."""
        presence = self.presence
        if presence is None or not room_id:
            return
        for user_id in user_ids or ():
            if user_id and self.hub.has_user(user_id):
                if joined:
                    await presence.room_joined(user_id, room_id)
                else:
                    await presence.room_left(user_id, room_id)

    async def _on_session_revoked(self, payload: dict) -> None:
        session_id = payload.get("session_id")
        if not session_id:
            return
        expires_at = unix_seconds(payload.get("expires_at")) or time.time() + DEFAULT_SESSION_TTL
        await self.tokens.revoke_local(session_id, expires_at)
        await self.hub.close_session(session_id, CLOSE_SESSION_REVOKED)

    async def _on_user_updated(self, payload: dict) -> None:
        """A new display name or avatar: to everyone on this instance who shows that user,
        i.e. the subscribers of the user's rooms (the web client subscribes to all of its
        rooms) and the user's own other sockets."""
        user = payload.get("user") or {}
        user_id = user.get("id")
        if not user_id:
            return
        self._profile_changed(user_id)
        try:
            room_ids = await self.rpc.call("rooms", "room_ids_for_user", user_id,
                                                  timeout=PROFILE_LOOKUP_SECONDS)
        except ParleyError as exc:  # rooms away: the new name shows on the next load instead
            log.warning("profile_fanout_skipped", user_id=user_id, error=exc.code)
            room_ids = []
        targets = self.hub.of_users([user_id])
        for room_id in room_ids:
            targets |= self.hub.subscribers(room_id)
        public = {key: user.get(key) for key in ("id", "username", "display_name", "avatar_url")}
        self.hub.deliver(Frame.of("user_updated", user=public), targets)

    async def _on_user_deleted(self, payload: dict) -> None:
        user = payload.get("user") or {}
        user_id = user.get("id") or payload.get("user_id")
        if user_id:
            self._profile_changed(user_id)
            await self.hub.close_user(user_id, CLOSE_SESSION_REVOKED)

    def _profile_changed(self, user_id: str) -> None:
        for listener in self.profile_listeners:
            listener(user_id)


def _reaction_frame(type_: str, payload: dict) -> Frame:
    """Who reacted with what, and the message's counts after it (no ``me``: the frame goes to
    everyone; each client knows its own user id)."""
    room_id = payload.get("room_id")
    return Frame.of(type_, _room=room_id, room_id=room_id,
                    **{key: payload.get(key)
                       for key in ("message_id", "seq", "emoji", "user_id", "reactions")})


def _payload_time(payload: dict) -> float | None:
    if "ts" in payload:
        return unix_seconds(payload["ts"])
    message = payload.get("message")
    if message is None and isinstance(payload.get("messages"), list) and payload["messages"]:
        message = payload["messages"][0]  # messages_posted: its first (oldest) message
    if isinstance(message, dict):
        return unix_seconds(message.get("edited_at") or message.get("created_at"))
    return None
