"""nameko's ``@rpc`` entrypoint with leaner replies, for every nameko service of Parley.

nameko 2.14 builds a kombu Connection, looks up a producer pool, merges options and checks
declarations on every publish, and serializes every RPC reply twice (once to check it can be,
once to send it). Here each replying greenthread borrows a long-lived kombu Producer with its
own connection (one connection per concurrent publisher: py-amqp connections must not be
shared between greenthreads), and the body is JSON-encoded once. Profiled, nameko's reply path
was ~45% of the rooms process's CPU per post and a third of auth's per `get_me`.

Replies are published WITHOUT publisher confirms: the caller's reply queue is transient, so a
confirm cannot make a reply durable; a lost reply is a caller timeout and an idempotent retry.
A reply the broker cannot take does not kill the service (OutageTolerantRpcConsumer). The
wire protocol (exchange, routing key, correlation id, body) is nameko's.
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
from nameko.exceptions import UnserializableValueError, serialize
from nameko.extensions import SharedExtension
from nameko.rpc import get_rpc_exchange

from .nameko_support import OutageTolerantRpc, OutageTolerantRpcConsumer


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


class Replies(SharedExtension):
    """The process's reply publishers (producers without confirms)."""

    producers: Producers

    def setup(self):
        self.producers = Producers(self.container.config[AMQP_URI_CONFIG_KEY])

    def stop(self):
        self.producers.close()

    def publish(self, body: bytes, *, exchange, routing_key: str, **properties) -> None:
        with self.producers.acquire() as producer:
            producer.publish(body, exchange=exchange, routing_key=routing_key,
                             content_type="application/json", content_encoding="utf-8",
                             retry=True, retry_policy=DEFAULT_RETRY_POLICY, **properties)


def fast_json(value) -> bytes:
    try:  # what we publish is plain JSON data: the stdlib encoder is enough and quicker
        return json.dumps(value, separators=(",", ":")).encode("utf-8")
    except TypeError:
        return kombu.serialization.dumps(value, "json")[2].encode("utf-8")


class LeanRpcConsumer(OutageTolerantRpcConsumer):
    """nameko's RpcConsumer, answering through `Replies` (unconfirmed, JSON once); a reply
    lost to a broker outage does not kill the service (OutageTolerantRpcConsumer)."""

    replies = Replies()

    def answer(self, message, result, exc_info):
        error = serialize(exc_info[1]) if exc_info is not None else None
        if message.properties.get("content_type") != "application/json":
            return super().answer(message, result, exc_info)  # not ours to optimise
        try:
            body = fast_json({"result": result, "error": error})
        except Exception:  # an unserializable result: nameko's answer for it
            exc_info = sys.exc_info()
            body = fast_json({"result": None, "error": serialize(UnserializableValueError(result))})
            result = None
        self.replies.publish(
            body, exchange=get_rpc_exchange(self.container.config),
            routing_key=message.properties["reply_to"],
            correlation_id=message.properties.get("correlation_id"),
            delivery_mode=PERSISTENT)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class LeanRpc(OutageTolerantRpc):
    """The `@rpc` entrypoint of parley_common.nameko_support.rpc: replies go out through
    LeanRpcConsumer. Every rpc method of a service uses it (they share one consumer of
    rpc-<service>)."""

    rpc_consumer = LeanRpcConsumer()
