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
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, Callable

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from . import bus
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
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.amqp_uri)
        channel = await self._connection.channel(publisher_confirms=False)
        self._exchange = await channel.declare_exchange(
            bus.RPC_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(
            f"rpc.reply-{self.caller}-{self._reply_key}", exclusive=True, auto_delete=True)
        await queue.bind(self._exchange, routing_key=self._reply_key)
        await queue.consume(self._on_reply, no_ack=True)

    async def close(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(Unavailable("The gateway is shutting down."))
        if self._connection is not None:
            await self._connection.close()

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.get(message.correlation_id or "")
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
        if self._exchange is None or not self.connected:
            self._record(name, 0.0, "unavailable")
            raise Unavailable(retry_after=2)
        correlation_id = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        started = time.perf_counter()
        try:
            await self._exchange.publish(
                aio_pika.Message(
                    json.dumps({"args": list(args), "kwargs": kwargs}).encode(),
                    content_type="application/json",
                    content_encoding="utf-8",
                    correlation_id=correlation_id,
                    reply_to=self._reply_key,
                    delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
                    expiration=timeout,
                ),
                routing_key=name,
            )
            reply = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            self._record(name, time.perf_counter() - started, "timeout")
            raise Unavailable(f"The {service} service did not answer in time.", retry_after=2) from None
        except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError):
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
