"""A small base for Parley's pika worker processes (the logger's consumers, the cleaner's
publisher), in the spirit of Zulip's queue workers: one small class per queue, the plumbing
here.

- graceful stop: SIGTERM/SIGINT only set a flag; loops notice it within one tick;
- reconnect with capped exponential back-off when the broker goes away;
- bounded prefetch; deliveries are handed over in batches (up to ``batch_size`` messages or
  ``batch_ms`` milliseconds) and acked with ``multiple=True`` only after the handler returned,
  i.e. after its transaction committed. A handler that raises keeps its batch unacked and is
  retried after a back-off (so a database outage stalls the queue instead of losing records);
- on a lost connection the unacked batch is dropped: the broker redelivers it, which is why
  every handler must be idempotent.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pika
import pika.exceptions

from . import config
from .backoff import Backoff
from .logs import get_logger

# What a lost or refused broker connection looks like to pika's blocking adapter.
BROKER_ERRORS = (pika.exceptions.AMQPError, OSError)


class StopFlag:
    """Set by SIGTERM/SIGINT (or by code); interruptible sleeps watch it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def install(self) -> "StopFlag":
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _sig, _frame: self._event.set())
        return self

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when woken by a stop. Short slices keep signals prompt."""
        deadline = time.monotonic() + seconds
        while not self._event.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._event.wait(min(remaining, 0.2))
        return self._event.is_set()


@dataclass
class Delivery:
    delivery_tag: int
    routing_key: str
    body: bytes
    redelivered: bool
    properties: Any = None


class QueueConsumer:
    """One queue, consumed on its own channel. Subclasses set the class attributes and
    implement :meth:`handle_batch`, which must be idempotent and must return only once its
    work is durable (the batch is acked right after)."""

    queue: str = ""
    prefetch: int = 100
    batch_size: int = 1
    batch_ms: int = 0

    def handle_batch(self, deliveries: list[Delivery]) -> None:
        raise NotImplementedError

    def stats(self) -> dict:
        """Counters for the periodic stats line (optional)."""
        return {}

    def attach(self, channel) -> None:
        """Called with the consumer's channel on every (re)connect, before consuming: declare
        its own queue there, or keep the channel to publish replies on (optional)."""


class _Subscription:
    """The per-connection state of one consumer: its channel and the unacked batch."""

    def __init__(self, consumer: QueueConsumer, channel, log) -> None:
        self.consumer, self.channel, self.log = consumer, channel, log
        self.pending: list[Delivery] = []
        self.first_at = 0.0
        self.retry_at = 0.0
        self.backoff = Backoff(0.5, 30.0)
        consumer.attach(channel)
        self.consumer_tag = channel.basic_consume(consumer.queue, self.on_message)

    def on_message(self, _channel, method, properties, body: bytes) -> None:
        if not self.pending:
            self.first_at = time.monotonic()
        self.pending.append(Delivery(method.delivery_tag, method.routing_key, body,
                                     bool(method.redelivered), properties))
        if len(self.pending) >= self.consumer.batch_size:
            self.flush()

    def due(self, now: float) -> bool:
        if not self.pending or now < self.retry_at:
            return False
        return (len(self.pending) >= self.consumer.batch_size
                or (now - self.first_at) * 1000 >= self.consumer.batch_ms)

    def flush(self, final: bool = False) -> bool:
        """Hand the batch to the consumer, then ack it. False if the handler failed."""
        if not self.pending:
            return True
        if not final and time.monotonic() < self.retry_at:
            return False  # still backing off after a failure; deliveries stay unacked
        batch = self.pending
        try:
            self.consumer.handle_batch(batch)
        except Exception as exc:  # noqa: BLE001 - any handler fault: keep the batch, retry later
            delay = self.backoff.next()
            self.retry_at = time.monotonic() + delay
            self.log.error("batch_failed", queue=self.consumer.queue, size=len(batch),
                           error=f"{type(exc).__name__}: {exc}", retry_in=round(delay, 2))
            return False
        self.channel.basic_ack(delivery_tag=batch[-1].delivery_tag, multiple=True)
        self.pending = []
        self.retry_at = 0.0
        self.backoff.reset()
        return True


class PikaWorker:
    """Runs one or more :class:`QueueConsumer` on one connection until stopped.

    ``declare(channel)`` is called on every (re)connect before consuming, so the topology
    exists whatever the start order. ``heartbeat_path`` (optional) is touched every few
    seconds while consuming, for a container healthcheck (:func:`heartbeat_fresh`).
    """

    def __init__(self, consumers: Sequence[QueueConsumer], *, amqp_uri: str | None = None,
                 declare: Callable | None = None, stop: StopFlag | None = None,
                 heartbeat_path: Path | None = None, stats_interval: float = 60.0,
                 tick: float = 0.1, name: str = "worker") -> None:
        self.consumers = list(consumers)
        self.amqp_uri = amqp_uri or config.amqp_uri()
        self.declare = declare
        self.stop = stop or StopFlag()
        self.heartbeat_path = heartbeat_path
        self.stats_interval = stats_interval
        self.tick = tick
        self.log = get_logger(name)
        self._backoff = Backoff(0.5, 15.0)
        self._last_stats: dict = {}

    def run(self) -> int:
        """Consume until stopped; reconnects on broker trouble. Returns the exit status."""
        while not self.stop.is_set():
            try:
                self._serve()
            except BROKER_ERRORS as exc:
                if self.stop.is_set():
                    break
                delay = self._backoff.next()
                self.log.warning("broker_unavailable", error=f"{type(exc).__name__}: {exc}",
                                 retry_in=round(delay, 2))
                self.stop.sleep(delay)
        self._log_stats(final=True)
        return 0

    def _connect(self):
        params = pika.URLParameters(self.amqp_uri)
        params.connection_attempts = 1
        params.heartbeat = 30
        params.blocked_connection_timeout = 60
        return pika.BlockingConnection(params)

    def _serve(self) -> None:
        connection = self._connect()
        try:
            subscriptions = []
            for consumer in self.consumers:
                channel = connection.channel()
                if self.declare is not None and not subscriptions:
                    self.declare(channel)
                channel.basic_qos(prefetch_count=consumer.prefetch)
                subscriptions.append(_Subscription(consumer, channel, self.log))
            self._backoff.reset()
            self.log.info("worker_consuming", queues=[c.queue for c in self.consumers])
            last_beat = last_stats = 0.0
            while not self.stop.is_set():
                connection.process_data_events(time_limit=self.tick)
                now = time.monotonic()
                for subscription in subscriptions:
                    if subscription.due(now):
                        subscription.flush()
                if now - last_beat >= 5:
                    self._touch_heartbeat()
                    last_beat = now
                if now - last_stats >= self.stats_interval:
                    if last_stats:
                        self._log_stats()
                    last_stats = now
            # Graceful stop: no new deliveries, finish and ack what we hold, then close.
            for subscription in subscriptions:
                subscription.channel.basic_cancel(subscription.consumer_tag)
            for subscription in subscriptions:
                if not subscription.flush(final=True):
                    self.log.warning("stop_left_unacked", queue=subscription.consumer.queue,
                                     size=len(subscription.pending))
        finally:
            try:
                if connection.is_open:
                    connection.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail; nothing to do
                pass

    def _touch_heartbeat(self) -> None:
        if self.heartbeat_path is None:
            return
        try:
            self.heartbeat_path.parent.mkdir(parents=True, exist_ok=True)
            self.heartbeat_path.write_text(str(int(time.time())))
        except OSError:
            pass

    def _log_stats(self, final: bool = False) -> None:
        stats = {c.queue: c.stats() for c in self.consumers if c.stats()}
        if not stats or (stats == self._last_stats and not final):
            return  # nothing new: stay quiet
        self._last_stats = json.loads(json.dumps(stats))
        self.log.info("worker_stopped" if final else "worker_stats", **stats)


def heartbeat_file(service: str) -> Path:
    """Per-host (per-container) heartbeat file under PARLEY_VAR_DIR."""
    host = os.uname().nodename
    return config.var_dir() / f"{service}-{host}.alive"


def heartbeat_fresh(path: Path, max_age: float = 30.0) -> bool:
    try:
        return time.time() - path.stat().st_mtime <= max_age
    except OSError:
        return False


class Publisher:
    """Publishes JSON with publisher confirms on a lazily (re)opened blocking connection.

    One retry on a fresh connection; a second failure raises, so callers keep the state the
    message was derived from and try again later (at-least-once).
    """

    def __init__(self, amqp_uri: str | None = None, declare: Callable | None = None) -> None:
        self.amqp_uri = amqp_uri or config.amqp_uri()
        self.declare = declare
        self._connection = None
        self._channel = None

    def _ensure(self):
        if self._channel is None or not self._channel.is_open:
            self.close()
            params = pika.URLParameters(self.amqp_uri)
            params.connection_attempts = 1
            params.heartbeat = 30
            params.blocked_connection_timeout = 30
            self._connection = pika.BlockingConnection(params)
            channel = self._connection.channel()
            if self.declare is not None:
                self.declare(channel)
            channel.confirm_delivery()
            self._channel = channel
        return self._channel

    def publish(self, exchange: str, routing_key: str, payload: Any, *,
                persistent: bool = True) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        properties = pika.BasicProperties(content_type="application/json",
                                          delivery_mode=2 if persistent else 1)
        for attempt in (1, 2):
            try:
                self._ensure().basic_publish(exchange, routing_key, body, properties)
                return
            except BROKER_ERRORS:
                self.close()
                if attempt == 2:
                    raise

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                if connection.is_open:
                    connection.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
