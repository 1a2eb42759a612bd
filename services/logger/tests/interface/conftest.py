"""Logger tests get their own RabbitMQ vhost: in a full run the session-wide ``suite`` has
its own logger consuming ``logs.archive`` of the shared vhost, which would compete for our
messages and store them in another database."""
from __future__ import annotations

import uuid

import pika
import pytest


@pytest.fixture(scope="module")
def logger_amqp_uri(isolation):
    with isolation.child(f"logger-{uuid.uuid4().hex[:6]}") as own:
        yield own.amqp_uri


@pytest.fixture
def amqp_channel(logger_amqp_uri):
    connection = pika.BlockingConnection(pika.URLParameters(logger_amqp_uri))
    channel = connection.channel()
    channel.confirm_delivery()
    yield channel
    if connection.is_open:
        connection.close()
