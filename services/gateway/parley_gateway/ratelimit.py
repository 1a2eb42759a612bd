"""Fixed-window counters in Redis (``rl:<bucket>:<key>``): login throttling and write limits.

Login throttling counts FAILED logins per account (the lowercased login) and per client
address within a window and refuses further attempts with 429 before auth is even asked,
so guessing passwords is slow; a successful login clears the account's counter.
"""
from __future__ import annotations

from aiohttp import web

from parley_common.cache_keys import CacheKeys
from parley_common.errors import RateLimited

from .settings import Settings

LOGIN_ACCOUNT = "login-user"
LOGIN_ADDRESS = "login-ip"
WRITE = "write"


def client_address(request: web.Request, settings: Settings) -> str:
    """The client's address; X-Forwarded-For only behind a proxy we trust (its last hop)."""
    if settings.trust_proxy_headers:
        forwarded = request.headers.get("X-Forwarded-For", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1][:64]
    return request.remote or "unknown"


class RateLimiter:
    def __init__(self, redis_client, keys: CacheKeys, settings: Settings, metrics=None):
        self.redis = redis_client
        self.keys = keys
        self.settings = settings
        self.metrics = metrics

    def _refuse(self, bucket: str, ttl: int, message: str) -> RateLimited:
        if self.metrics is not None:
            self.metrics.rate_limited.labels(bucket).inc()
        return RateLimited(message, retry_after=max(1, ttl))

    async def _count(self, key: str, window: int) -> int:
        """Increment a fixed-window counter, starting the window on the first hit."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(key, 0, ex=window, nx=True)
        pipe.incr(key)
        _, count = await pipe.execute()
        return int(count)

    # --- login -------------------------------------------------------------------------
    async def check_login(self, login: str, address: str) -> None:
        s = self.settings
        account_key = self.keys.ratelimit(LOGIN_ACCOUNT, login.lower())
        address_key = self.keys.ratelimit(LOGIN_ADDRESS, address)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(account_key)
        pipe.ttl(account_key)
        pipe.get(address_key)
        pipe.ttl(address_key)
        account_count, account_ttl, address_count, address_ttl = await pipe.execute()
        if int(account_count or 0) >= s.login_failures_per_account:
            raise self._refuse(LOGIN_ACCOUNT, account_ttl,
                               "Too many failed logins for this account; try again later.")
        if int(address_count or 0) >= s.login_failures_per_address:
            raise self._refuse(LOGIN_ADDRESS, address_ttl,
                               "Too many failed logins from your address; try again later.")

    async def login_failed(self, login: str, address: str) -> None:
        window = self.settings.login_window_seconds
        await self._count(self.keys.ratelimit(LOGIN_ACCOUNT, login.lower()), window)
        await self._count(self.keys.ratelimit(LOGIN_ADDRESS, address), window)

    async def login_succeeded(self, login: str) -> None:
        await self.redis.delete(self.keys.ratelimit(LOGIN_ACCOUNT, login.lower()))

    # --- writes ------------------------------------------------------------------------
    async def check_write(self, user_id: str) -> None:
        limit = self.settings.write_rate_per_minute
        if limit <= 0:
            return
        key = self.keys.ratelimit(WRITE, user_id)
        if await self._count(key, 60) > limit:
            raise self._refuse(WRITE, await self.redis.ttl(key),
                               "Too many changes in a short time; slow down.")
