"""The gateway application: REST routes, the WebSocket (ws.py), the web client, and the shared
objects every part uses (settings, rpc, redis, keys, tokens, metrics, ratelimit).

The shared objects are created here, before the app starts (aiohttp freezes the app's state at
start-up), and connected by this module's on_startup hook, which runs before the WebSocket
side's hooks because it is registered first.
"""
from __future__ import annotations

import asyncio
import warnings

import redis.asyncio as aioredis
from aiohttp import web

from parley_common.backoff import Backoff
from parley_common.cache_keys import CacheKeys
from parley_common.logs import get_logger
from parley_common.rpc import AsyncRpcClient

from . import api_admin, api_auth, api_health, api_rooms, api_users, openapi
from .http import add_security_headers, error_middleware, make_handler
from .metrics import Metrics
from .posting import PostBatcher
from .ratelimit import RateLimiter
from .settings import Settings
from .tokens import TokenVerifier
from .webclient import setup_webclient
from .ws import setup_ws

log = get_logger("parley_gateway.app")

# The shared-state names are plain strings by contract between the REST and WebSocket sides.
warnings.filterwarnings("ignore", category=web.NotAppKeyWarning)

REDIS_POOL_SIZE = 100  # connections to Redis per gateway process

ENDPOINTS = api_health.ENDPOINTS + api_auth.ENDPOINTS + api_users.ENDPOINTS + api_rooms.ENDPOINTS \
    + api_admin.ENDPOINTS


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


async def _on_startup(app: web.Application) -> None:
    await _start_rpc(app["rpc"])
    app["tokens"].start_background_fetch()  # auth may not be up yet: never block on it


async def _on_cleanup(app: web.Application) -> None:
    await app["tokens"].stop()
    try:
        await app["rpc"].close()
    except Exception:
        pass
    await app["redis"].aclose()


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
    app["settings"] = settings
    app["metrics"] = metrics
    app["keys"] = keys
    app["redis"] = redis_client
    app["rpc"] = rpc
    app["posts"] = PostBatcher(rpc, max_batch=settings.post_batch_max,
                               max_in_flight=settings.post_batches_in_flight,
                               max_waiting=settings.post_queue_max)
    app["tokens"] = TokenVerifier(rpc, redis_client, keys,
                                  refresh_interval=settings.key_refresh_interval)
    app["ratelimit"] = RateLimiter(redis_client, keys, settings, metrics)
    app["openapi"] = openapi.build(ENDPOINTS)

    app.on_startup.append(_on_startup)
    app.on_cleanup.append(_on_cleanup)
    app.on_response_prepare.append(add_security_headers)

    for endpoint in ENDPOINTS:
        app.router.add_route(endpoint.method, endpoint.path, make_handler(endpoint),
                             name=endpoint.operation_id)

    api_admin.setup(app)  # the console's live figures (a sampler per gateway)
    setup_ws(app)  # after the REST side's hooks: its start-up relies on rpc/redis being ready
    setup_webclient(app, settings.static_dir)
    return app
