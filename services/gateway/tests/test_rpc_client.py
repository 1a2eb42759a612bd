"""parley_common.rpc.AsyncRpcClient against a bare AMQP responder speaking nameko's RPC wire
protocol: calls are answered, and the reply consumer (registered on aiormq, not aio-pika) is
registered again after its channel closed, so calls are answered again."""
from __future__ import annotations

import asyncio
import json

import aio_pika

from parley_common import bus
from parley_common.rpc import AsyncRpcClient


async def wait_for(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def echo_responder(amqp_uri: str, service: str) -> aio_pika.abc.AbstractConnection:
    """``<service>.echo(*args)`` answers ``args`` as nameko would (reply to ``reply_to`` on
    the RPC exchange, same correlation id)."""
    connection = await aio_pika.connect_robust(amqp_uri)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(bus.RPC_EXCHANGE, aio_pika.ExchangeType.TOPIC,
                                              durable=True)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(exchange, routing_key=f"{service}.echo")

    async def answer(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            request = json.loads(message.body)
            reply = {"result": request["args"], "error": None}
            await exchange.publish(
                aio_pika.Message(json.dumps(reply).encode(), content_type="application/json",
                                 correlation_id=message.correlation_id),
                routing_key=message.reply_to)

    await queue.consume(answer)
    return connection


async def test_calls_are_answered_again_after_the_reply_channel_closed(isolation):
    service = f"echo{id(isolation) % 100000}"
    responder = await echo_responder(isolation.amqp_uri, service)
    client = AsyncRpcClient(isolation.amqp_uri, caller="rpc-client-test", timeout=5)
    await client.start()
    try:
        assert await client.call(service, "echo", 1, "a") == [1, "a"]
        await client._replies.underlay.close()  # as a channel error would; aio-pika restores the channel
        await wait_for(lambda: client._replies.consuming)
        assert await client.call(service, "echo", 2) == [2]
    finally:
        await client.close()
        await responder.close()
