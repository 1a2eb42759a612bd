"""The typed keys (aiohttp ``web.AppKey``) of the objects the gateway's REST handlers share.

Set once by app.create_app (REST side) and realtime.setup_realtime (hub); aiohttp freezes the
application's state at start-up. The WebSocket side does not look anything up: it gets its
collaborators explicitly (realtime.Realtime).
"""
from __future__ import annotations

import redis.asyncio as aioredis
from aiohttp import web

from parley_common.cache_keys import CacheKeys
from parley_common.rpc import AsyncRpcClient

from .avatar_cache import AvatarCache
from .events import EventConsumer
from .hub import Hub
from .metrics import Metrics
from .posting import PostBatcher
from .ratelimit import RateLimiter
from .settings import Settings
from .tokens import TokenVerifier

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
CACHE_KEYS = web.AppKey("cache_keys", CacheKeys)
REDIS = web.AppKey("redis", aioredis.Redis)
RPC = web.AppKey("rpc", AsyncRpcClient)
POSTS = web.AppKey("posts", PostBatcher)
TOKENS = web.AppKey("tokens", TokenVerifier)
RATELIMIT = web.AppKey("ratelimit", RateLimiter)
OPENAPI = web.AppKey("openapi", dict)
HUB = web.AppKey("hub", Hub)  # REST logout and account deletion close this instance's sockets
EVENTS = web.AppKey("events", EventConsumer)  # readiness: is the event consumer consuming
AVATARS = web.AppKey("avatars", AvatarCache)  # pictures served lately (api_avatars.py)
