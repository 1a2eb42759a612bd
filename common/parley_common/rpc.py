"""An asyncio client of nameko's RPC wire protocol, on aio-pika.

One reply queue per process (exclusive, auto-delete, bound to ``nameko-rpc`` under a random
routing key that goes out as ``reply_to``); replies are matched to callers by
``correlation_id``. Every call has a timeout, and the request carries the same number as a
per-message TTL, so a request nobody picked up in time is dropped by the broker instead of
being executed after the caller has given up.

Requests are transient and published without publisher confirms: a request only matters to a
caller that is waiting for its reply on an exclusive, auto-delete reply queue, which does not
survive a broker restart or a lost connection either. Persisting it (a disk write at the broker)
or waiting for its confirm (a second round trip) could not make any call succeed that fails
without them: a lost request is a timeout and an idempotent retry, exactly like a lost reply.
What a call changes is made durable by the service before it answers. Being transient, a
request that carries a password (login, register, change_password, delete_me) never reaches
the broker's disk.

aio-pika owns the connection, its reconnection and the reply queue's declaration (restored
after a reconnect; the reply consumer, registered on aiormq, is registered again by
aio_consumer.UnderlayConsumer); the per-call path talks to the underlying aiormq channel: a
request is one ``basic_publish`` handed to the connection's writer without waiting for the
write, and a reply resolves its caller's future straight from aiormq's delivery (aio-pika
would wrap each reply in an IncomingMessage and run the callback in a task of its own, and
each request in a Message). Measured in bench/RESULTS.md, "Round trips (issue-17-rpc2)".
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, Callable

import aio_pika
import aiormq
from aiormq import spec
from aiormq.abc import DeliveredMessage

from . import bus
from .aio_consumer import UnderlayConsumer
from .errors import Unavailable, from_remote
from .logs import get_logger

log = get_logger("parley_common.rpc")


class AsyncRpcClient:
    def __init__(self, amqp_uri: str, *, caller: str = "gateway", timeout: float = 5.0,
                 observe: Callable[[str, float, str], None] | None = None):
        self.amqp_uri = amqp_uri
        self.caller = caller
        self.timeout = timeout
        self._observe = observe  # (service.method, seconds, outcome) -> None, for metrics
        self._pending: dict[str, asyncio.Future] = {}
        self._reply_key = uuid.uuid4().hex
        self._reply_queue = f"rpc.reply-{self.caller}-{self._reply_key}"
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        # Its underlay is the aiormq channel requests go out on and replies come in on; None
        # while aio-pika reopens it after a lost connection (calls then answer Unavailable).
        self._replies: UnderlayConsumer | None = None

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.amqp_uri)
        channel = await self._connection.channel(publisher_confirms=False)
        exchange = await channel.declare_exchange(
            bus.RPC_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(self._reply_queue, exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=self._reply_key)
        # aio-pika restores the queue and its binding on a new connection; the consumer
        # consumes again then.
        self._replies = UnderlayConsumer(channel, self._reply_queue, self._on_reply, no_ack=True)
        await self._replies.start()

    async def close(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(Unavailable("The gateway is shutting down."))
        if self._replies is not None:
            self._replies.close()
        if self._connection is not None:
            await self._connection.close()

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    def _on_reply(self, message: DeliveredMessage) -> None:
        future = self._pending.get(message.header.properties.correlation_id or "")
        if future is None or future.done():
            return  # a reply for a call that already timed out
        try:
            future.set_result(json.loads(message.body))
        except ValueError:
            future.set_result({"result": None, "error": {"exc_type": "BadReply"}})

    async def call(self, service: str, method: str, *args: Any, timeout: float | None = None,
                   **kwargs: Any) -> Any:
        """Call ``service.method(*args, **kwargs)``; raise the remote ParleyError, or
        Unavailable on timeout or a broken connection. The request is transient (see the
        module's note), so the passwords that login and register carry never reach the
        broker's disk."""
        timeout = self.timeout if timeout is None else timeout
        name = f"{service}.{method}"
        underlay = self._replies.underlay if self._replies is not None else None
        if underlay is None or underlay.is_closed or not self.connected:
            self._record(name, 0.0, "unavailable")
            raise Unavailable(retry_after=2)
        correlation_id = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                await underlay.basic_publish(
                    json.dumps({"args": list(args), "kwargs": kwargs}).encode(),
                    exchange=bus.RPC_EXCHANGE, routing_key=name,
                    properties=spec.Basic.Properties(
                        content_type="application/json", content_encoding="utf-8",
                        correlation_id=correlation_id, message_id=correlation_id,
                        reply_to=self._reply_key, delivery_mode=1,  # transient
                        expiration=str(int(timeout * 1000))),  # dropped unread after that
                    wait=False)  # the writer task sends it; the reply is what we wait for
                reply = await future
        except TimeoutError:
            self._record(name, time.perf_counter() - started, "timeout")
            raise Unavailable(f"The {service} service did not answer in time.", retry_after=2) from None
        except (aio_pika.exceptions.AMQPError, aiormq.exceptions.AMQPError, ConnectionError,
                RuntimeError):
            self._record(name, time.perf_counter() - started, "unavailable")
            raise Unavailable(retry_after=2) from None
        finally:
            self._pending.pop(correlation_id, None)
        error = reply.get("error")
        self._record(name, time.perf_counter() - started, "error" if error else "ok")
        if error:
            exc = from_remote(error)
            remote = getattr(exc, "remote", None)
            if remote is not None:  # not one of our errors: a fault worth a log line
                log.error("rpc_remote_fault", call=name, remote=remote)
            raise exc
        return reply.get("result")

    def _record(self, name: str, seconds: float, outcome: str) -> None:
        if self._observe is not None:
            self._observe(name, seconds, outcome)
