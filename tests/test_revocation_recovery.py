"""A revoked session stays revoked when the cache loses its revocations (a Redis restart
without persistence): the gateway notices the missing ``revocations:loaded`` mark, asks auth
meanwhile, and loads auth's revoked sessions back (``auth.revoked_sessions``)."""
from __future__ import annotations

import asyncio
import time

import jwt
import redis.asyncio as aioredis

from helpers import Client, PASSWORD, login, new_user


async def test_revoked_session_stays_revoked_after_the_cache_is_emptied(suite, http):
    alice = await new_user(http, suite.url)
    revoked = (await login(http, suite.url, alice.user["username"], PASSWORD))["access_token"]
    assert (await alice.post("/api/v1/auth/logout", token=revoked)).status == 204
    prefix = suite.env["REDIS_PREFIX"]
    cache = aioredis.from_url(suite.env["REDIS_URL"], decode_responses=True)
    try:
        session_keys = [key async for key in cache.scan_iter(match=f"{prefix}revoked:*")]
        assert session_keys  # the logout was cached
        # What a restart of a non-persistent Redis does to this run's keys:
        await cache.delete(*session_keys, f"{prefix}revocations:loaded")

        for url in suite.gateway_urls:
            me = await Client(http, url, revoked).get("/api/v1/users/me")
            assert me.status == 401, me
            assert (await Client(http, url, alice.token).get("/api/v1/users/me")).status == 200
        deadline = time.monotonic() + 10
        while not await cache.exists(f"{prefix}revocations:loaded"):
            assert time.monotonic() < deadline, "revocations were not loaded back"
            await asyncio.sleep(0.1)
        # This logout's session is back, remembered for as long as its token lives. (The run's
        # other revoked keys belong to other tests: those whose tokens have lapsed meanwhile
        # are rightly not loaded back.)
        own_key = f"{prefix}revoked:{jwt.decode(revoked, options={'verify_signature': False})['sid']}"
        assert own_key in session_keys
        assert own_key in {key async for key in cache.scan_iter(match=f"{prefix}revoked:*")}
        assert 0 < await cache.ttl(own_key) <= 900 + 10
        assert (await Client(http, suite.url, revoked).get("/api/v1/users/me")).status == 401
    finally:
        await cache.aclose()
