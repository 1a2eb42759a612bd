"""In-process checks of the pieces behind the limits: whose address counts (TRUSTED_PROXIES),
the token buckets, bounded JSON, the control-character rule, the bounded post queue."""
from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from parley_common.errors import Unavailable
from parley_common.rpc import AsyncRpcClient
from parley_common.text import has_control_chars, loads_bounded
from parley_gateway.budget import Budgets, FrameBudget, Verdict
from parley_gateway.posting import PostBatcher
from parley_gateway.ratelimit import client_address, login_key
from parley_gateway.settings import Settings, parse_networks


class _Transport:
    def __init__(self, peer: str):
        self.peer = peer

    def get_extra_info(self, name, default=None):
        return (self.peer, 40000) if name == "peername" else default


def address(peer: str, *forwarded: str, trusted: str = "", legacy: bool = False) -> str:
    headers = CIMultiDict(("X-Forwarded-For", value) for value in forwarded)
    request = make_mocked_request("POST", "/api/v1/auth/login", headers=headers,
                                  transport=_Transport(peer))
    settings = Settings(trusted_proxies=parse_networks(trusted), trust_proxy_headers=legacy)
    return client_address(request, settings)


def test_client_address_trusts_only_configured_proxies():
    # No trusted proxy: the header is the client's own words, ignored.
    assert address("203.0.113.5", "198.51.100.1") == "203.0.113.5"
    # Peer is a trusted proxy: the right-most address that is not one of ours.
    lb = "10.0.0.0/8"
    assert address("10.0.0.2", "1.2.3.4, 198.51.100.7", trusted=lb) == "198.51.100.7"
    assert address("10.0.0.2", "1.2.3.4, 198.51.100.7, 10.0.0.9", trusted=lb) == "198.51.100.7"
    assert address("10.0.0.2", "1.2.3.4", "198.51.100.7", trusted=lb) == "198.51.100.7"
    # A peer outside the trusted networks cannot choose its address.
    assert address("203.0.113.5", "198.51.100.7", trusted=lb) == "203.0.113.5"
    # Ports and IPv6 spellings.
    assert address("10.0.0.2", "198.51.100.7:5555", trusted=lb) == "198.51.100.7"
    assert address("::1", "[2001:db8::1]:443", trusted="::1/128") == "2001:db8::1"
    # Everything trusted: the left-most is the best we know; no header: the peer.
    assert address("10.0.0.2", "10.1.1.1, 10.2.2.2", trusted=lb) == "10.1.1.1"
    assert address("10.0.0.2", trusted=lb) == "10.0.0.2"
    # The older TRUST_PROXY_HEADERS=1: the right-most hop.
    assert address("203.0.113.5", "1.2.3.4, 198.51.100.7", legacy=True) == "198.51.100.7"
    with pytest.raises(ValueError):
        parse_networks("10.0.0.0/8, not-a-network")


def test_login_key_is_what_auth_matches():
    assert login_key(" ALICE\t") == login_key("alice") == "alice"


def test_frame_budget_warns_then_closes_and_refills():
    budget = FrameBudget(rate=10, burst=5)
    assert [budget.admit() for _ in range(5)] == [Verdict.OK] * 5
    assert [budget.admit() for _ in range(4)] == [Verdict.WARN] * 3 + [Verdict.CLOSE]
    assert budget.retry_after > 0
    time.sleep(0.25)  # 2.5 tokens back
    assert budget.admit() == Verdict.OK
    assert FrameBudget(rate=0, burst=5).admit() == Verdict.OK  # 0 disables


def test_send_bucket_is_per_user_and_caps_can_be_disabled():
    budgets = Budgets(Settings(ws_rate=3, ws_max_subscriptions=2, ws_max_sockets_per_user=0))
    assert [budgets.send_wait("alice") == 0.0 for _ in range(4)] == [True] * 3 + [False]
    assert budgets.send_wait("bob") == 0.0
    assert budgets.subscription_allowed(1) and not budgets.subscription_allowed(2)
    assert budgets.socket_allowed(10_000)  # 0 disables
    assert Budgets(Settings(ws_rate=0)).send_wait("alice") == 0.0


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
