"""Leaner AMQP publishing for the rooms hot path (post_message): the RPC reply and the
message_posted event.

nameko 2.14 builds a kombu Connection, looks up a producer pool, merges options and checks
declarations on every publish, and serializes every RPC reply twice (once to check it can be,
once to send it). Profiled, that was ~45% of the rooms process's CPU per post. Here each
publishing greenthread borrows a long-lived kombu Producer with its own connection (one
connection per concurrent publisher: py-amqp connections must not be shared between
greenthreads that wait for confirms), and the body is JSON-encoded once.

Delivery guarantees are nameko's: kombu's `ensure` retries a publish across a reconnect with
nameko's retry policy; events are persistent and published with confirms; replies are
published WITHOUT confirms (see the README, "Throughput": the caller's reply queue is
transient, so a confirm cannot make a reply durable; a lost reply is a caller timeout and an
idempotent retry with the same client_id).
"""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager

import kombu
import kombu.serialization
from eventlet.queue import LightQueue
from nameko.constants import (AMQP_URI_CONFIG_KEY, DEFAULT_RETRY_POLICY,
                              DEFAULT_TRANSPORT_OPTIONS, PERSISTENT)
from nameko.events import EventDispatcher
from nameko.exceptions import UnserializableValueError, serialize
from nameko.extensions import SharedExtension
from nameko.rpc import Rpc, RpcConsumer, get_rpc_exchange


class Producers:
    """A free-list of kombu Producers, each on a connection of its own."""

    def __init__(self, amqp_uri: str, confirms: bool):
        self.amqp_uri = amqp_uri
        self.confirms = confirms
        self.free: LightQueue = LightQueue()
        self.all: list[kombu.Producer] = []

    def _new(self) -> kombu.Producer:
        options = {**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": self.confirms}
        connection = kombu.Connection(self.amqp_uri, transport_options=options)
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


class Publishing(SharedExtension):
    """The process's producers: one set with confirms (events), one without (replies)."""

    confirmed: Producers
    unconfirmed: Producers

    def setup(self):
        uri = self.container.config[AMQP_URI_CONFIG_KEY]
        self.confirmed = Producers(uri, confirms=True)
        self.unconfirmed = Producers(uri, confirms=False)

    def stop(self):
        self.confirmed.close()
        self.unconfirmed.close()

    def publish(self, producers: Producers, body: bytes, *, exchange, routing_key: str,
                **properties) -> None:
        with producers.acquire() as producer:
            producer.publish(body, exchange=exchange, routing_key=routing_key,
                             content_type="application/json", content_encoding="utf-8",
                             retry=True, retry_policy=DEFAULT_RETRY_POLICY, **properties)


def _fast_json(value) -> bytes:
    try:  # what we publish is plain JSON data: the stdlib encoder is enough and quicker
        return json.dumps(value, separators=(",", ":")).encode("utf-8")
    except TypeError:
        return kombu.serialization.dumps(value, "json")[2].encode("utf-8")


class LeanRpcConsumer(RpcConsumer):
    """nameko's RpcConsumer, answering through `Publishing` (unconfirmed, JSON once)."""

    publishing = Publishing()

    def handle_result(self, message, result, exc_info):
        error = serialize(exc_info[1]) if exc_info is not None else None
        if message.properties.get("content_type") != "application/json":
            return super().handle_result(message, result, exc_info)  # not ours to optimise
        try:
            body = _fast_json({"result": result, "error": error})
        except Exception:  # an unserializable result: nameko's answer for it
            exc_info = sys.exc_info()
            body = _fast_json({"result": None, "error": serialize(UnserializableValueError(result))})
            result = None
        self.publishing.publish(
            self.publishing.unconfirmed, body,
            exchange=get_rpc_exchange(self.container.config),
            routing_key=message.properties["reply_to"],
            correlation_id=message.properties.get("correlation_id"),
            delivery_mode=PERSISTENT)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class LeanRpc(Rpc):
    """`@rpc` entrypoint whose replies go out through LeanRpcConsumer. Every rpc method of a
    service must use the same entrypoint class (they share one consumer of rpc-<service>)."""

    rpc_consumer = LeanRpcConsumer()


class LeanEventDispatcher(EventDispatcher):
    """nameko's EventDispatcher (same exchange, declared once at setup by nameko; same routing
    key, headers, persistence, confirms), publishing through `Publishing`."""

    publishing = Publishing()

    def get_dependency(self, worker_ctx):
        extra_headers = self.get_message_headers(worker_ctx)

        def dispatch(event_type, event_data):
            self.publishing.publish(self.publishing.confirmed, _fast_json(event_data),
                                    exchange=self.exchange, routing_key=event_type,
                                    headers=extra_headers, delivery_mode=PERSISTENT)

        return dispatch
