"""The gateway application: REST routes, the realtime side (realtime.py wires the hub, event
consumer and presence), the web client, and the objects every part shares (settings, rpc,
redis, cache keys, tokens, metrics, rate limits; typed keys in appkeys.py).

Everything is built here, before the app starts (aiohttp freezes the app's state at start-up);
each resource that must be connected or stopped has one ``cleanup_ctx``, in dependency order
(redis, rpc, tokens, then the realtime side's), stopped in reverse.
"""
from __future__ import annotations

import asyncio
import functools
from typing import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web

from parley_common.backoff import Backoff
from parley_common.cache_keys import CacheKeys
from parley_common.logs import get_logger
from parley_common.rpc import AsyncRpcClient

from . import (api_admin, api_auth, api_avatars, api_health, api_rooms, api_search, api_users,
               openapi)
from .appkeys import (CACHE_KEYS, METRICS, OPENAPI, POSTS, RATELIMIT, REDIS, RPC, SETTINGS,
                      TOKENS)
from .http import add_security_headers, error_middleware, make_handler
from .metrics import Metrics
from .posting import PostBatcher
from .ratelimit import RateLimiter
from .realtime import setup_realtime
from .settings import Settings
from .tokens import TokenVerifier
from .webclient import setup_webclient

log = get_logger("parley_gateway.app")

REDIS_POOL_SIZE = 100  # connections to Redis per gateway process

ENDPOINTS = api_health.ENDPOINTS + api_auth.ENDPOINTS + api_users.ENDPOINTS + api_rooms.ENDPOINTS \
    + api_admin.ENDPOINTS + api_search.ENDPOINTS + api_avatars.ENDPOINTS


async def _start_rpc(rpc: AsyncRpcClient) -> None:
    """Connect to the broker, retrying with back-off: the gateway may start before it."""
    backoff = Backoff(0.5, 10.0)
    while True:
        try:
            await rpc.start()
            log.info("broker_connected")
            return
        except Exception as exc:  # broker not up yet (connection refused, DNS, auth ...)
            delay = backoff.next()
            log.warning("broker_unavailable", error=repr(exc), retry_in=round(delay, 2))
            await asyncio.sleep(delay)


async def _redis(redis_client: aioredis.Redis, app: web.Application) -> AsyncIterator[None]:
    yield  # connects on first use
    await redis_client.aclose()


async def _rpc(rpc: AsyncRpcClient, app: web.Application) -> AsyncIterator[None]:
    await _start_rpc(rpc)
    yield
    try:
        await rpc.close()
    except Exception:
        pass


async def _tokens(tokens: TokenVerifier, app: web.Application) -> AsyncIterator[None]:
    tokens.start_background_fetch()  # auth may not be up yet: never block on it
    yield
    await tokens.stop()


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings.from_env()
    app = web.Application(middlewares=[error_middleware], client_max_size=settings.max_body_bytes)
    metrics = Metrics()
    keys = CacheKeys(settings.redis_prefix)
    # A blocking pool: a burst beyond REDIS_POOL_SIZE connections waits (up to 5 s) for a free
    # one instead of failing (redis-py's default pool raises "Too many connections" beyond 100,
    # which turned a burst of WebSocket sends into internal_error replies).
    redis_client = aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, decode_responses=True, socket_timeout=5, socket_connect_timeout=3,
        health_check_interval=30, max_connections=REDIS_POOL_SIZE, timeout=5))
    rpc = AsyncRpcClient(settings.amqp_uri, caller="gateway", timeout=settings.rpc_timeout,
                         observe=metrics.observe_rpc)
    posts = PostBatcher(rpc, max_batch=settings.post_batch_max,
                        max_in_flight=settings.post_batches_in_flight,
                        max_waiting=settings.post_queue_max)
    tokens = TokenVerifier(rpc, redis_client, keys, refresh_interval=settings.key_refresh_interval)
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[CACHE_KEYS] = keys
    app[REDIS] = redis_client
    app[RPC] = rpc
    app[POSTS] = posts
    app[TOKENS] = tokens
    app[RATELIMIT] = RateLimiter(redis_client, keys, settings, metrics)
    app[OPENAPI] = openapi.build(ENDPOINTS)

    app.cleanup_ctx.append(functools.partial(_redis, redis_client))
    app.cleanup_ctx.append(functools.partial(_rpc, rpc))
    app.cleanup_ctx.append(functools.partial(_tokens, tokens))
    app.on_response_prepare.append(add_security_headers)

    for endpoint in ENDPOINTS:
        app.router.add_route(endpoint.method, endpoint.path, make_handler(endpoint),
                             name=endpoint.operation_id)

    api_admin.setup(app)  # the console's live figures (a sampler per gateway)
    # after the REST side's resources: the realtime side's start-up relies on rpc being ready
    setup_realtime(app, settings=settings, metrics=metrics, rpc=rpc, redis=redis_client,
                   keys=keys, tokens=tokens, posts=posts)
    api_avatars.setup(app)  # its cache listens to the realtime side's events
    setup_webclient(app, settings.static_dir)
    return app
