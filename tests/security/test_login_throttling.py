"""Login and registration throttling, trusted proxies, and auth's bound on concurrent hashing."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from helpers import (PASSWORD, Client, fake_address, new_user, register, start_extra_gateway,
                     unique)


@pytest.fixture(scope="module")
def guarded_gateway(suite):
    """Behind a pretend load balancer on 127.0.0.0/8: each test speaks from its own fake
    addresses, so the limits of the suite's own 127.0.0.1 are never used up."""
    proc, url = start_extra_gateway(suite, "gateway-guarded", TRUSTED_PROXIES="127.0.0.0/8, ::1/128",
                                    LOGIN_FAILURES_PER_ACCOUNT="5",
                                    LOGIN_FAILURES_PER_ADDRESS="8",
                                    REGISTRATIONS_PER_ADDRESS="3")
    yield url
    proc.stop()


async def login_from(client: Client, login: str, password: str, address: str, hops: str = ""):
    forwarded = f"{hops}, {address}" if hops else address
    return await client.post("/api/v1/auth/login", {"username": login, "password": password},
                             headers={"X-Forwarded-For": forwarded})


async def test_account_counter_is_shared_by_every_spelling_of_the_login(suite, http,
                                                                         guarded_gateway):
    name = unique()
    await register(http, suite.url, name)
    client = Client(http, guarded_gateway)
    spellings = [f" {name}", f"{name.upper()}\t", f"{name}@example.com",
                 f" {name.upper()}@EXAMPLE.COM ", name]
    for login in spellings:  # five failures, each with another spelling and address
        reply = await login_from(client, login, "wrong password", fake_address())
        assert reply.status == 401, (login, reply)
    limited = await login_from(client, f"{name}@example.com", PASSWORD, fake_address())
    assert limited.status == 429 and limited.error["code"] == "rate_limited", limited
    assert int(limited.headers["Retry-After"]) > 0


async def test_a_parallel_burst_is_reserved_before_any_hash(suite, http, guarded_gateway):
    """30 wrong passwords at once for one account: at most the limit (5) reach auth."""
    name = unique()
    await register(http, suite.url, name)
    client = Client(http, guarded_gateway)
    replies = await asyncio.gather(*(login_from(client, name, f"wrong {n}", fake_address())
                                     for n in range(30)))
    statuses = sorted(reply.status for reply in replies)
    assert statuses.count(401) <= 5, statuses
    assert set(statuses) <= {401, 429}, statuses
    # And the real owner is refused too for now: the account is throttled, not the address.
    assert (await login_from(client, name, PASSWORD, fake_address())).status == 429


async def test_address_counter_and_success_gives_the_attempt_back(suite, http, guarded_gateway):
    client = Client(http, guarded_gateway)
    address = fake_address()
    name = unique()
    await register(http, suite.url, name)
    for _ in range(20):  # successes from one address never use up its failure budget
        assert (await login_from(client, name, PASSWORD, address)).status == 200
    for _ in range(8):
        assert (await login_from(client, unique("ghost"), "x" * 10, address)).status == 401
    limited = await login_from(client, name, PASSWORD, address)
    assert limited.status == 429, limited
    assert (await login_from(client, name, PASSWORD, fake_address())).status == 200


async def test_x_forwarded_for_counts_the_rightmost_untrusted_hop(suite, http, guarded_gateway):
    """A client that forges left-hand X-Forwarded-For entries does not get fresh counters."""
    client = Client(http, guarded_gateway)
    address = fake_address()
    for n in range(8):  # a new forged hop each time; the proxy's hop (address) is the same
        reply = await login_from(client, unique("ghost"), "x" * 10, address,
                                 hops=f"{fake_address()}, 127.0.0.1")
        assert reply.status == 401, reply
    limited = await login_from(client, unique("ghost"), "x" * 10, address, hops=fake_address())
    assert limited.status == 429, limited


async def test_an_untrusted_peer_cannot_choose_its_address(suite, http):
    """The suite's gateways trust no proxy: X-Forwarded-For is ignored, the peer counts."""
    proc, url = start_extra_gateway(suite, "gateway-untrusting", LOGIN_FAILURES_PER_ADDRESS="3",
                                    LOGIN_FAILURES_PER_ACCOUNT="0",
                                    REDIS_PREFIX=suite.env["REDIS_PREFIX"] + "untrusting:")
    try:
        client = Client(http, url)
        for _ in range(3):
            assert (await login_from(client, unique("ghost"), "x" * 10, fake_address())).status == 401
        limited = await login_from(client, unique("ghost"), "x" * 10, fake_address())
        assert limited.status == 429, limited
    finally:
        proc.stop()


async def test_registrations_are_limited_per_address(http, guarded_gateway):
    client = Client(http, guarded_gateway)
    address = fake_address()

    async def register_from(addr: str):
        name = unique()
        return await client.post("/api/v1/auth/register",
                                 {"username": name, "email": f"{name}@example.com",
                                  "password": PASSWORD}, headers={"X-Forwarded-For": addr})

    for _ in range(3):
        assert (await register_from(address)).status == 201
    limited = await register_from(address)
    assert limited.status == 429 and int(limited.headers["Retry-After"]) > 0, limited
    assert (await register_from(fake_address())).status == 201


# --- auth's bound on concurrent password hashing ----------------------------------------------

@pytest.fixture(scope="module")
def busy_auth(isolation):
    """auth with production argon2id parameters (64 MiB, 3 passes, 4 lanes), one hash at a
    time, and a gateway without login limits, in an isolation of their own."""
    from parley_common.testing import Proc, free_port, http_ok, queue_consumers, wait_until
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    with isolation.child("busyauth") as iso:
        keyfile = iso.workdir / "jwt.pem"
        keyfile.write_bytes(Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        env = iso.env(JWT_PRIVATE_KEY_FILE=str(keyfile), RPC_TIMEOUT_SECONDS="5",
                      AUTH_HASH_CONCURRENCY="1", AUTH_HASH_WAIT_SECONDS="0.3",
                      LOGIN_FAILURES_PER_ACCOUNT="1000", LOGIN_FAILURES_PER_ADDRESS="1000",
                      REGISTRATIONS_PER_ADDRESS="0")
        auth = Proc("auth", "parley_auth", {**env, "DATABASE_URL": iso.database_url("busyauth"),
                                            "INSTANCE_ID": "busy-auth"}, iso.workdir).start()
        port = free_port()
        gateway = Proc("gateway", "parley_gateway", {**env, "PORT": str(port),
                                                     "INSTANCE_ID": "busy-gw"}, iso.workdir)
        try:
            wait_until(lambda: queue_consumers(iso.amqp_uri, "rpc-auth") > 0, 60,
                       what="auth consuming", proc=auth)
            gateway.start()
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: http_ok(url + "/healthz"), 30, what="gateway", proc=gateway)
            yield url
        finally:
            gateway.stop()
            auth.stop()


async def test_a_login_burst_is_shed_fast_and_auth_stays_available(busy_auth):
    async with aiohttp.ClientSession() as http:
        bystander = await new_user(http, busy_auth)
        victim = await register(http, busy_auth)
        client = Client(http, busy_auth)

        async def attempt(n: int):
            return await client.post("/api/v1/auth/login",
                                     {"username": victim["username"], "password": f"wrong {n}"})

        burst = asyncio.gather(*(attempt(n) for n in range(30)))
        await asyncio.sleep(0.3)  # the burst is being hashed / shed now
        me = await bystander.get("/api/v1/users/me")  # needs auth (get_me) to answer
        replies = await burst
        assert me.status == 200, me
        statuses = [reply.status for reply in replies]
        assert 503 not in statuses and set(statuses) <= {401, 429}, statuses
        assert 429 in statuses, statuses  # one hash at a time: most of the 30 were shed
        for reply in replies:
            if reply.status == 429:
                assert reply.error["code"] == "rate_limited" and int(reply.headers["Retry-After"]) >= 1
        # Right after the burst a real login is answered.
        good = await client.post("/api/v1/auth/login",
                                 {"username": victim["username"], "password": PASSWORD})
        assert good.status == 200, good
