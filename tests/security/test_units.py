"""In-process checks of the pieces behind the limits: bounded JSON, the control-character rule,
the bounded post queue. The gateway's own (whose address counts, the token buckets) are its
unit tests: services/gateway/tests/unit/test_budgets_and_addresses.py."""
from __future__ import annotations

import asyncio
import time

import pytest

from parley_common.errors import Unavailable
from parley_common.rpc import AsyncRpcClient
from parley_common.text import has_control_chars, loads_bounded
from parley_gateway.posting import PostBatcher


def test_bounded_json():
    assert loads_bounded('{"a": [[1]]}') == {"a": [[1]]}
    for text in ("[" * 33 + "]" * 33, "[" * 100_000 + "]" * 100_000,
                 '{"a":' * 40 + "1" + "}" * 40):
        with pytest.raises(ValueError):
            loads_bounded(text)
    loads_bounded("[" * 32 + "]" * 32)  # the limit itself is fine


def test_control_and_format_characters():
    for bad in ("a\u200bb", "a\u202eb", "a\u2066b", "a\x07b", "a\nb", "a\ufeffb"):
        assert has_control_chars(bad), repr(bad)
    for fine in ("Café", "日本語", "emoji ☕", "עברית"):
        assert not has_control_chars(fine)


async def test_the_post_queue_is_bounded(isolation):
    """rooms is away (a vhost with nobody serving it): the batch in flight hangs, two posts
    wait, and the next one is refused at once instead of queueing without end."""
    with isolation.child("slow-rooms") as empty:
        client = AsyncRpcClient(empty.amqp_uri, caller="queue-test", timeout=3)
        await client.start()
        try:
            batcher = PostBatcher(client, max_batch=1, max_in_flight=1, max_waiting=2)
            waiting = [asyncio.ensure_future(batcher.post("u", "r", "hi", "c0"))]
            await asyncio.sleep(0.1)  # c0 is out (and hangs): the one call in flight
            waiting += [asyncio.ensure_future(batcher.post("u", "r", "hi", f"c{i}"))
                        for i in (1, 2)]
            await asyncio.sleep(0.1)  # c1 and c2 wait for a free call
            assert not any(w.done() for w in waiting)
            started = time.monotonic()
            with pytest.raises(Unavailable):
                await batcher.post("u", "r", "hi", "c3")
            assert time.monotonic() - started < 0.5, "refused at once"
            results = await asyncio.gather(*waiting, return_exceptions=True)
            assert all(isinstance(result, Unavailable) for result in results)
        finally:
            await client.close()
