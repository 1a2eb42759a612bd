"""A consumer registered on the aiormq channel under an aio-pika robust channel, and registered
again whenever aio-pika restores that channel (after a lost connection or a channel error).

Consuming from aiormq directly spares each delivery aio-pika's IncomingMessage and a task of
its own, but aio-pika then does not know the consumer and cannot restore it: this does. When the
aiormq channel closes, ``underlay`` and ``consumer_tag`` go to None at once, and a task waits
for aio-pika to have restored the channel (reopened, queues declared and bound again) and
consumes again, every 0.5 s until that succeeds (the channel may close again meanwhile) or
:meth:`close` is called. The gateway's event consumer and its RPC reply consumer use it.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable

import aio_pika
import aiormq

from .logs import get_logger

log = get_logger("parley_common.aio_consumer")

RETRY_SECONDS = 0.5


class UnderlayConsumer:
    def __init__(self, channel: aio_pika.abc.AbstractRobustChannel, queue: str,
                 on_delivery: Callable[[aiormq.abc.DeliveredMessage], Any], *,
                 no_ack: bool = False):
        self.channel = channel
        self.queue = queue
        self._on_delivery = on_delivery
        self._no_ack = no_ack
        # The aiormq channel consumed on and the consumer's tag; None while aio-pika restores it.
        self.underlay: aiormq.abc.AbstractChannel | None = None
        self.consumer_tag: str | None = None
        self._restorer: asyncio.Task | None = None
        self._closed = False

    @property
    def consuming(self) -> bool:
        return self.consumer_tag is not None

    async def start(self) -> None:
        underlay = await self.channel.get_underlay_channel()
        consume_ok = await underlay.basic_consume(self.queue, self._on_delivery,
                                                  no_ack=self._no_ack)
        self.consumer_tag = consume_ok.consumer_tag
        self.underlay = underlay
        underlay.closing.add_done_callback(self._on_channel_closing)

    def _on_channel_closing(self, _closing) -> None:
        self.underlay = None
        self.consumer_tag = None
        if self._closed:
            return
        if self._restorer is None or self._restorer.done():
            self._restorer = asyncio.get_running_loop().create_task(self._consume_again())

    async def _consume_again(self) -> None:
        while not self._closed:
            try:
                await self.channel.ready()
                await self.start()
                log.info("consumer_resumed", queue=self.queue)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the channel closed again meanwhile: wait for the next
                log.warning("consume_retry", queue=self.queue, error=repr(exc))
                await asyncio.sleep(RETRY_SECONDS)

    def close(self) -> None:
        """No consuming again after this (the caller closes the channel or connection)."""
        self._closed = True
        if self._restorer is not None:
            self._restorer.cancel()
