"""The pipelined, confirmed event publisher of the rooms service (amqp.ConfirmingChannels)
against the real broker: every event of a batch is confirmed before publish_all returns, and
a dead connection costs a retry on a fresh one, not an event."""
from __future__ import annotations

import socket

import amqp
import pika
import pytest

from parley_rooms.amqp import ConfirmingChannels


@pytest.fixture
def queue(isolation):
    connection = pika.BlockingConnection(pika.URLParameters(isolation.amqp_uri))
    channel = connection.channel()
    name = channel.queue_declare("", exclusive=True).method.queue

    def depth() -> int:
        return channel.queue_declare(name, passive=True).method.message_count

    yield name, depth
    connection.close()


def batch(queue_name: str, tag: str, size: int = 50) -> list:
    return [("", queue_name, amqp.Message(f"{tag}-{n}".encode(), delivery_mode=2))
            for n in range(size)]


def test_publish_all_returns_once_every_event_is_confirmed(isolation, queue):
    name, depth = queue
    channels = ConfirmingChannels(isolation.amqp_uri)
    try:
        channels.publish_all(batch(name, "a"))
        assert depth() == 50  # confirmed means routed and stored: nothing still in flight
        channels.publish_all(batch(name, "b", 1))
        assert depth() == 51
        assert channels.free.qsize() == 1  # one channel, reused
    finally:
        channels.close()


def test_a_dead_connection_costs_a_retry_not_an_event(isolation, queue):
    name, depth = queue
    channels = ConfirmingChannels(isolation.amqp_uri)
    try:
        channels.publish_all(batch(name, "before", 10))
        idle = channels.free.get_nowait()
        idle.connection.connection.transport.sock.shutdown(socket.SHUT_RDWR)  # the peer vanishes
        channels.free.put(idle)
        channels.publish_all(batch(name, "after", 10))
        assert depth() == 20
        assert channels.free.qsize() == 1 and channels.free.get_nowait() is not idle
    finally:
        channels.close()
