"""The gateway's limits in-process: whose address counts (TRUSTED_PROXIES, ports, IPv6, the
older switch, a bad CIDR refused at start), the login key, the per-socket frame budget and the
per-user send bucket and caps (budget.py)."""
from __future__ import annotations

import time

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from parley_gateway.budget import Budgets, FrameBudget, Verdict
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
