"""Cleaner tests get their own Redis key prefix and RabbitMQ vhost: in a full run the
session-wide ``suite`` has its own cleaner sweeping the shared prefix every 2 s, which would
race our ``--once`` sweeps for the state we seed."""
from __future__ import annotations

import json
import uuid

import pika
import pytest
import redis as redis_lib
from parley_common import bus


@pytest.fixture(scope="module")
def cleaner_amqp_uri(isolation):
    with isolation.child(f"cleaner-{uuid.uuid4().hex[:6]}") as own:
        yield own.amqp_uri


@pytest.fixture
def prefix(isolation):
    # Under the run's prefix, so the isolation teardown removes it too.
    return f"{isolation.redis_prefix}cleaner-{uuid.uuid4().hex[:6]}:"


@pytest.fixture
def redis(isolation, prefix):
    client = redis_lib.Redis.from_url(isolation.redis_url, decode_responses=True)
    yield client
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


class PresenceListener:
    """A temporary queue bound to ``presence.events`` with ``#``."""

    def __init__(self, amqp_uri: str):
        self.connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
        self.channel = self.connection.channel()
        bus.declare_event_exchanges_pika(self.channel)
        self.queue = self.channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        self.channel.queue_bind(self.queue, bus.PRESENCE_EVENTS, routing_key="#")

    def drain(self) -> list[tuple[str, dict, object]]:
        """Every message waiting now: (routing key, payload, properties)."""
        messages = []
        while True:
            method, properties, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return messages
            messages.append((method.routing_key, json.loads(body), properties))

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


@pytest.fixture
def presence(cleaner_amqp_uri):
    listener = PresenceListener(cleaner_amqp_uri)
    yield listener
    listener.close()
