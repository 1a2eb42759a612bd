"""The gateway's event consumer on the real broker (the run's own vhost): a messages_posted
event reaches every subscribed socket's batch in one loop turn, and consuming straight from
aiormq survives its channel being closed under it (aio-pika restores the channel, the queue
and its bindings; the consumer consumes again)."""
from __future__ import annotations

import asyncio
import json
import uuid
from types import SimpleNamespace

import aio_pika

from parley_common import bus
from parley_gateway.events import EventConsumer
from parley_gateway.hub import Hub


class FakeConnection:
    """Just enough of hub.Connection for room delivery: frames land in ``out``."""

    def __init__(self, hub: Hub, user_id: str):
        self.conn_id, self.user_id = uuid.uuid4().hex, user_id
        self.closing, self.replaying, self.replayed_to, self.backlog = False, {}, {}, None
        self.writing_paused = False
        self.out, self.written, self.rooms = [], [], set()

    def flush(self) -> None:
        if self.out:  # an item is a frame or a run of frames (wire.FrameRun)
            self.written.append([frame.type for item in self.out
                                 for frame in getattr(item, "frames", (item,))])
            self.out = []


async def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_post_batch_is_one_write_per_socket_and_consuming_survives_a_channel_close(
        isolation):
    hub = Hub(SimpleNamespace(ws_send_queue=64, drain_seconds=2))
    consumer = EventConsumer(hub, rpc=None, tokens=None, amqp_uri=isolation.amqp_uri,
                             instance="t-" + uuid.uuid4().hex[:8])
    sockets = [FakeConnection(hub, f"u{i}") for i in range(3)]
    for conn in sockets:
        hub.subscribe(conn, "room-a")
    consumer.ordering.baseline("room-a", 0)
    await consumer.start()
    publisher = await aio_pika.connect_robust(isolation.amqp_uri)
    try:
        channel = await publisher.channel()
        exchange = await channel.declare_exchange(bus.ROOMS_EVENTS, aio_pika.ExchangeType.TOPIC,
                                                  durable=True)

        async def post(first_seq: int, count: int) -> None:
            messages = [{"id": uuid.uuid4().hex, "room_id": "room-a", "seq": seq, "text": "hi"}
                        for seq in range(first_seq, first_seq + count)]
            body = json.dumps({"messages": messages, "member_ids": {"room-a": []}}).encode()
            await exchange.publish(aio_pika.Message(body), routing_key="messages_posted")

        await post(1, 3)
        await wait_for(lambda: all(conn.written for conn in sockets))
        assert all(conn.written == [["message"] * 3] for conn in sockets)  # one write each

        await consumer._consumer.underlay.close()  # as a channel error would; aio-pika restores the channel
        await wait_for(lambda: consumer.consuming)
        await post(1, 1)  # a repeat: dropped by the room's seq
        await post(4, 2)
        await wait_for(lambda: all(len(conn.written) == 2 for conn in sockets))
        assert all(conn.written[1] == ["message"] * 2 for conn in sockets)
        assert consumer.ordering.rooms["room-a"].last == 5
    finally:
        await publisher.close()
        await consumer.close()
