"""Leaner AMQP publishing for the rooms hot path (post_messages): the RPC reply and the
message_posted events.

nameko 2.14 builds a kombu Connection, looks up a producer pool, merges options and checks
declarations on every publish, and serializes every RPC reply twice (once to check it can be,
once to send it). Profiled, that was ~45% of the rooms process's CPU per post. Here each
publishing greenthread borrows a long-lived kombu Producer with its own connection (one
connection per concurrent publisher: py-amqp connections must not be shared between
greenthreads that wait for confirms), and the body is JSON-encoded once. The events of one
call go out pipelined on a channel in confirm mode: all their frames written with ONE socket
send (py-amqp writes each publish with a send of its own, and under eventlet every send is a
trip through the green send loop: ~27% of the process at 200 posts/s), then every confirm
awaited once (instead of a round trip per event).

Delivery guarantees are nameko's: a publish is retried across a reconnect (nameko's retry
policy: 3 retries); events are persistent and confirmed by the broker before the call answers;
replies are published WITHOUT confirms (see the README, "Throughput": the caller's reply queue is
transient, so a confirm cannot make a reply durable; a lost reply is a caller timeout and an
idempotent retry with the same client_id).
"""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager

import amqp
import amqp.exceptions
import eventlet
import kombu
import kombu.serialization
from amqp.exceptions import MessageNacked
from eventlet.queue import LightQueue
from nameko.constants import (AMQP_URI_CONFIG_KEY, DEFAULT_RETRY_POLICY,
                              DEFAULT_TRANSPORT_OPTIONS, PERSISTENT)
from nameko.events import EventDispatcher
from nameko.exceptions import UnserializableValueError, serialize
from nameko.extensions import SharedExtension
from nameko.rpc import get_rpc_exchange

from parley_common.nameko_support import OutageTolerantRpc, OutageTolerantRpcConsumer


class Producers:
    """A free-list of kombu Producers (no publisher confirms), each on a connection of its own."""

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self.free: LightQueue = LightQueue()
        self.all: list[kombu.Producer] = []

    def _new(self) -> kombu.Producer:
        connection = kombu.Connection(self.amqp_uri, transport_options=DEFAULT_TRANSPORT_OPTIONS)
        producer = kombu.Producer(connection)
        self.all.append(producer)
        return producer

    @contextmanager
    def acquire(self):
        producer = self.free.get_nowait() if self.free.qsize() else self._new()
        try:
            yield producer
        except BaseException:
            # In an unknown state (a half-written frame, an unread confirm): never reuse it.
            self._discard(producer)
            raise
        self.free.put(producer)

    def _discard(self, producer: kombu.Producer) -> None:
        if producer in self.all:
            self.all.remove(producer)
        try:
            producer.connection.release()
        except Exception:
            pass

    def close(self) -> None:
        for producer in list(self.all):
            self._discard(producer)


CONFIRM_TIMEOUT_SECONDS = 10.0


class ConfirmingChannels:
    """A free-list of py-amqp channels in publisher-confirm mode, each on its own connection.

    `publish_all` writes every message, then waits once for the broker to confirm them all:
    one round trip for a batch instead of one per message (py-amqp's `confirm_publish` waits
    after each publish)."""

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self.free: LightQueue = LightQueue()

    def _new(self) -> "_ConfirmingChannel":
        connection = kombu.Connection(self.amqp_uri, transport_options=DEFAULT_TRANSPORT_OPTIONS)
        return _ConfirmingChannel(connection)

    def publish_all(self, messages: list[tuple[str, str, amqp.Message]]) -> None:
        """Publish (exchange, routing_key, message) triples; return once all are confirmed.
        A broken connection or a nack is retried on a fresh connection (the whole batch: a
        redelivered event is harmless, a lost one is not), up to nameko's retry count."""
        retries = DEFAULT_RETRY_POLICY["max_retries"]
        for attempt in range(retries + 1):
            channel = self.free.get_nowait() if self.free.qsize() else None
            try:
                channel = channel or self._new()
                channel.publish_all(messages)
            except (MessageNacked, OSError, amqp.exceptions.AMQPError):
                if channel is not None:
                    channel.close()
                if attempt == retries:
                    raise
                eventlet.sleep(min(0.2 * (attempt + 1), 1.0))
                continue
            self.free.put(channel)
            return

    def close(self) -> None:
        while self.free.qsize():
            self.free.get_nowait().close()


class _FrameCollector:
    """Stands in for a py-amqp transport while a batch is framed: keeps the bytes. (py-amqp
    hands write() a view of a buffer it reuses for the next frame, hence the copy.)"""

    def __init__(self):
        self.chunks: list[bytes] = []

    def write(self, data) -> None:
        self.chunks.append(bytes(data))

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


class _ConfirmingChannel:
    def __init__(self, connection: kombu.Connection):
        self.connection = connection
        self.channel = connection.channel()
        self.channel.confirm_select()
        amqp_connection = self.channel.connection
        self.collector = _FrameCollector()
        self.collecting_writer = amqp_connection.frame_writer_cls(amqp_connection, self.collector)
        self.published = 0               # delivery tags count up from 1 per channel
        self.outstanding: set[int] = set()
        self.nacked = False
        self.channel.events["basic_ack"].add(self._on_ack)
        self.channel.events["basic_nack"].add(self._on_nack)

    def _settle(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self.outstanding = {tag for tag in self.outstanding if tag > delivery_tag}
        else:
            self.outstanding.discard(delivery_tag)

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self.nacked = True
        self._settle(delivery_tag, multiple)

    def publish_all(self, messages) -> None:
        amqp_connection = self.channel.connection
        direct_writer = amqp_connection.frame_writer
        self.collector.chunks = []
        amqp_connection.frame_writer = self.collecting_writer
        try:
            for exchange, routing_key, message in messages:
                self.channel.basic_publish(message, exchange=exchange, routing_key=routing_key)
                self.published += 1
                self.outstanding.add(self.published)
        finally:
            amqp_connection.frame_writer = direct_writer
        amqp_connection.transport.write(self.collector.take())  # every frame, one send
        while self.outstanding:
            self.connection.drain_events(timeout=CONFIRM_TIMEOUT_SECONDS)
        if self.nacked:
            raise MessageNacked("the broker refused an event")

    def close(self) -> None:
        try:
            self.connection.release()
        except Exception:
            pass


class Publishing(SharedExtension):
    """The process's publishers: confirming channels (events), producers without confirms
    (replies)."""

    confirmed: ConfirmingChannels
    unconfirmed: Producers

    def setup(self):
        uri = self.container.config[AMQP_URI_CONFIG_KEY]
        self.confirmed = ConfirmingChannels(uri)
        self.unconfirmed = Producers(uri)

    def stop(self):
        self.confirmed.close()
        self.unconfirmed.close()

    def reply(self, body: bytes, *, exchange, routing_key: str, **properties) -> None:
        with self.unconfirmed.acquire() as producer:
            producer.publish(body, exchange=exchange, routing_key=routing_key,
                             content_type="application/json", content_encoding="utf-8",
                             retry=True, retry_policy=DEFAULT_RETRY_POLICY, **properties)


def _fast_json(value) -> bytes:
    try:  # what we publish is plain JSON data: the stdlib encoder is enough and quicker
        return json.dumps(value, separators=(",", ":")).encode("utf-8")
    except TypeError:
        return kombu.serialization.dumps(value, "json")[2].encode("utf-8")


class LeanRpcConsumer(OutageTolerantRpcConsumer):
    """nameko's RpcConsumer, answering through `Publishing` (unconfirmed, JSON once); a reply
    lost to a broker outage does not kill the service (OutageTolerantRpcConsumer)."""

    publishing = Publishing()

    def answer(self, message, result, exc_info):
        error = serialize(exc_info[1]) if exc_info is not None else None
        if message.properties.get("content_type") != "application/json":
            return super().answer(message, result, exc_info)  # not ours to optimise
        try:
            body = _fast_json({"result": result, "error": error})
        except Exception:  # an unserializable result: nameko's answer for it
            exc_info = sys.exc_info()
            body = _fast_json({"result": None, "error": serialize(UnserializableValueError(result))})
            result = None
        self.publishing.reply(
            body, exchange=get_rpc_exchange(self.container.config),
            routing_key=message.properties["reply_to"],
            correlation_id=message.properties.get("correlation_id"),
            delivery_mode=PERSISTENT)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class LeanRpc(OutageTolerantRpc):
    """`@rpc` entrypoint whose replies go out through LeanRpcConsumer. Every rpc method of a
    service must use the same entrypoint class (they share one consumer of rpc-<service>)."""

    rpc_consumer = LeanRpcConsumer()


class LeanEventDispatcher(EventDispatcher):
    """nameko's EventDispatcher (same exchange, declared once at setup by nameko; same routing
    key, headers, persistence, confirms), publishing through `Publishing`. The dependency is
    `dispatch.many([(event_type, data), ...])`: one confirm round trip for all of them."""

    publishing = Publishing()

    def get_dependency(self, worker_ctx):
        return Dispatch(self.publishing.confirmed, self.exchange.name,
                        self.get_message_headers(worker_ctx))


class Dispatch:
    def __init__(self, channels: ConfirmingChannels, exchange: str, headers: dict):
        self.channels = channels
        self.exchange = exchange
        self.headers = headers

    def many(self, events) -> None:
        """Publish (event_type, data) pairs, persistent; return once the broker confirmed all."""
        if not events:
            return
        self.channels.publish_all([
            (self.exchange, event_type,
             amqp.Message(_fast_json(data), content_type="application/json",
                          content_encoding="utf-8", delivery_mode=PERSISTENT,
                          application_headers=self.headers))
            for event_type, data in events])
