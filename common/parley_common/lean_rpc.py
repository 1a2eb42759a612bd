"""nameko's ``@rpc`` entrypoint with leaner replies, for every nameko service of Parley.

nameko 2.14 builds a kombu Connection, looks up a producer pool, merges options and checks
declarations on every publish, and serializes every RPC reply twice (once to check it can be,
once to send it). Here each replying greenthread borrows a long-lived kombu Producer with its
own connection (one connection per concurrent publisher: py-amqp connections must not be
shared between greenthreads), and the body is JSON-encoded once. Profiled, nameko's reply path
was ~45% of the rooms process's CPU per post and a third of auth's per `get_me`.

Replies are transient and published WITHOUT publisher confirms: the caller's reply queue is
exclusive and auto-delete (gone with the caller's connection or a broker restart), so neither a
persistent flag nor a confirm can make a reply outlive it; a lost reply is a caller timeout and
an idempotent retry.
A reply the broker cannot take does not kill the service (OutageTolerantRpcConsumer). The
wire protocol (exchange, routing key, correlation id, body) is nameko's.

Per call, the reply goes straight to py-amqp's ``basic_publish`` (kombu's Producer.publish
added its retry wrapper, declaration checks and message preparation to every reply), once more
on a fresh connection when the pooled one turns out to be dead (a broker restart), as kombu's
retry would; and the request's arguments are checked against a signature computed once per
method (nameko's check runs ``inspect.getcallargs`` on every call).
"""
from __future__ import annotations

import inspect
import json
import sys
from contextlib import contextmanager

import amqp
import kombu
import kombu.serialization
import orjson
from eventlet.queue import LightQueue
from nameko.constants import AMQP_URI_CONFIG_KEY, DEFAULT_TRANSPORT_OPTIONS, NON_PERSISTENT
from nameko.exceptions import IncorrectSignature, UnserializableValueError, serialize
from nameko.extensions import SharedExtension
from nameko.rpc import get_rpc_exchange

from .nameko_support import BROKER_GONE, OutageTolerantRpc, OutageTolerantRpcConsumer


class Producers:
    """A free-list of kombu Producers (no publisher confirms), each on a connection of its own;
    what is published goes out through the producer's py-amqp channel."""

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self.free: LightQueue = LightQueue()
        self.all: list[kombu.Producer] = []

    def _new(self) -> kombu.Producer:
        connection = kombu.Connection(self.amqp_uri, transport_options=DEFAULT_TRANSPORT_OPTIONS)
        producer = kombu.Producer(connection)  # connects (with kombu's retries) here
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

    def publish(self, body: bytes, *, exchange: str, routing_key: str, **properties) -> None:
        """One JSON message on ``exchange``; a dead pooled connection is dropped and the
        message sent once more on a new one (BROKER_GONE if that fails too)."""
        message = amqp.Message(body, content_type="application/json",
                               content_encoding="utf-8", **properties)
        for attempt in (1, 2):
            try:
                with self.producers.acquire() as producer:
                    producer.channel.basic_publish(message, exchange=exchange,
                                                   routing_key=routing_key)
                return
            except BROKER_GONE:
                if attempt == 2:
                    raise


# Plain JSON data only: what orjson would render its own way (datetimes, dataclasses, str
# subclasses) is left to the encoders below, as it always was.
_PLAIN_JSON = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
               | orjson.OPT_PASSTHROUGH_SUBCLASS)


def fast_json(value) -> bytes:
    """The JSON of an RPC reply or an event. orjson for plain data (a post batch's reply or
    messages_posted event, ~50 KB: ~10-15 µs instead of the stdlib's ~130-220 µs); what orjson
    refuses (a non-string key, an integer beyond 64 bits, one of the types above) goes to the
    stdlib encoder, and what that refuses to kombu's (datetimes), so nothing changes shape."""
    try:
        return orjson.dumps(value, option=_PLAIN_JSON)
    except TypeError:  # orjson.JSONEncodeError is one
        pass
    try:
        return json.dumps(value, separators=(",", ":")).encode("utf-8")
    except TypeError:
        return kombu.serialization.dumps(value, "json")[2].encode("utf-8")


class LeanRpcConsumer(OutageTolerantRpcConsumer):
    """nameko's RpcConsumer, answering through `Replies` (unconfirmed, JSON once); a reply
    lost to a broker outage does not kill the service (OutageTolerantRpcConsumer)."""

    replies = Replies()

    def setup(self):
        super().setup()
        self.exchange_name = get_rpc_exchange(self.container.config).name

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
            body, exchange=self.exchange_name, routing_key=message.properties["reply_to"],
            correlation_id=message.properties.get("correlation_id"),
            delivery_mode=NON_PERSISTENT)  # see the module's note
        self.queue_consumer.ack_message(message)
        return result, exc_info


class LeanRpc(OutageTolerantRpc):
    """The `@rpc` entrypoint of parley_common.nameko_support.rpc: replies go out through
    LeanRpcConsumer. Every rpc method of a service uses it (they share one consumer of
    rpc-<service>)."""

    rpc_consumer = LeanRpcConsumer()

    def setup(self):
        super().setup()
        self.signature = inspect.signature(getattr(self.container.service_cls, self.method_name))

    def check_signature(self, args, kwargs):
        """As nameko's (a call with the wrong arguments is IncorrectSignature, not a
        TypeError inside the method), with the signature computed once."""
        try:
            self.signature.bind(None, *args, **kwargs)  # None: the unbound method's self
        except TypeError as exc:
            raise IncorrectSignature(str(exc)) from None
