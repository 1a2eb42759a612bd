"""Limits that several gateway instances must agree on, as fixed-window counters in Redis
(``rl:<bucket>:<key>``): login attempts, registrations, REST writes. Per-socket frame budgets
are decided in-process (budget.py): they need no agreement and no round trip.

Login: an attempt is RESERVED atomically (one Lua script) against two counters before auth
is asked to hash anything: the account's (auth resolves the login to its account, so
" ALICE\\t", "alice" and alice's e-mail share one counter) and the client address's. Past
either limit the gateway answers 429 with Retry-After and auth never sees the attempt, so at
most the configured number of passwords is evaluated per window even under a parallel burst.
A successful login clears the account's counter and gives the address its attempt back; an
attempt auth could not evaluate (busy, down) is given back to both.
"""
from __future__ import annotations

import ipaddress

from aiohttp import web

from parley_common.cache_keys import CacheKeys
from parley_common.errors import RateLimited

from .metrics import NULL_METRICS
from .settings import Settings

LOGIN_ACCOUNT = "login-user"
LOGIN_ADDRESS = "login-ip"
REGISTER_ADDRESS = "register-ip"
WRITE = "write"

# KEYS: counters; ARGV: their limits (0 = no limit), then the window in seconds.
# Refuses (answers the index of the full counter and its TTL) without counting anything when
# any counter is full; otherwise counts one on every limited counter and answers {0, 0}.
_RESERVE = """
local window = tonumber(ARGV[#KEYS + 1])
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i])
  if limit > 0 and tonumber(redis.call('GET', key) or '0') >= limit then
    return {i, redis.call('TTL', key)}
  end
end
for i, key in ipairs(KEYS) do
  if tonumber(ARGV[i]) > 0 then
    redis.call('SET', key, 0, 'EX', window, 'NX')
    redis.call('INCR', key)
  end
end
return {0, 0}
"""
# Gives one reserved attempt back (never below zero; the key keeps its TTL).
_REFUND = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 0
"""


def _ip(text: str):
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:443"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(request: web.Request, settings: Settings) -> str:
    """The client's address. X-Forwarded-For is believed only when the direct peer is a
    trusted proxy (TRUSTED_PROXIES): walking the header from the right, the first address
    that is not a trusted proxy is the client (a client can write anything on the left, but
    cannot stop a trusted proxy from appending what it saw). TRUST_PROXY_HEADERS=1 (older
    setting) trusts the direct peer only: its right-most entry is the client."""
    peer = request.remote or "unknown"
    networks = settings.trusted_proxies
    if not networks and not settings.trust_proxy_headers:
        return peer
    peer_ip = _ip(peer)

    def trusted(ip) -> bool:
        return ip is not None and any(ip in net for net in networks if ip.version == net.version)

    if networks and not trusted(peer_ip):
        return peer
    hops = [hop.strip() for header in request.headers.getall("X-Forwarded-For", [])
            for hop in header.split(",") if hop.strip()]
    if not hops:
        return peer
    if not networks:  # legacy TRUST_PROXY_HEADERS: the peer's own hop
        return hops[-1][:64]
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            return hop[:64]  # garbage a trusted proxy passed on: still this client's key
        if not trusted(ip):
            return str(ip)
    return hops[0][:64]  # every hop is one of ours: the left-most is the best we know


def login_key(login: str) -> str:
    """The login as auth matches it (auth.login: ``login.strip().lower()``)."""
    return login.strip().lower()


class RateLimiter:
    def __init__(self, redis_client, keys: CacheKeys, settings: Settings, metrics=NULL_METRICS):
        self.redis = redis_client
        self.keys = keys
        self.settings = settings
        self.metrics = metrics
        self._reserve = redis_client.register_script(_RESERVE)
        self._refund = redis_client.register_script(_REFUND)

    def _refuse(self, bucket: str, ttl: int, message: str) -> RateLimited:
        self.metrics.rate_limited.labels(bucket).inc()
        return RateLimited(message, retry_after=max(1, int(ttl)))

    async def _count(self, key: str, window: int) -> int:
        """Increment a fixed-window counter, starting the window on the first hit."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(key, 0, ex=window, nx=True)
        pipe.incr(key)
        _, count = await pipe.execute()
        return int(count)

    # --- login -------------------------------------------------------------------------
    def _login_keys(self, account: str, address: str) -> list[str]:
        return [self.keys.ratelimit(LOGIN_ACCOUNT, account),
                self.keys.ratelimit(LOGIN_ADDRESS, address)]

    async def reserve_login(self, account: str, address: str) -> None:
        """Count one attempt for ``account`` (auth's account id, or the normalised login when
        it names nobody) and ``address``, or raise RateLimited without counting."""
        s = self.settings
        full, ttl = await self._reserve(
            keys=self._login_keys(account, address),
            args=[s.login_failures_per_account, s.login_failures_per_address,
                  s.login_window_seconds])
        if full == 1:
            raise self._refuse(LOGIN_ACCOUNT, ttl,
                               "Too many failed logins for this account; try again later.")
        if full == 2:
            raise self._refuse(LOGIN_ADDRESS, ttl,
                               "Too many failed logins from your address; try again later.")

    async def login_succeeded(self, account: str, address: str) -> None:
        account_key, address_key = self._login_keys(account, address)
        await self.redis.delete(account_key)
        await self._refund(keys=[address_key])

    async def login_not_evaluated(self, account: str, address: str) -> None:
        """auth did not judge the password (busy, down): the attempt does not count."""
        await self._refund(keys=self._login_keys(account, address))

    # --- registration ------------------------------------------------------------------
    async def reserve_registration(self, address: str) -> None:
        s = self.settings
        full, ttl = await self._reserve(
            keys=[self.keys.ratelimit(REGISTER_ADDRESS, address)],
            args=[s.registrations_per_address, s.registration_window_seconds])
        if full:
            raise self._refuse(REGISTER_ADDRESS, ttl,
                               "Too many accounts created from your address; try again later.")

    # --- writes ------------------------------------------------------------------------
    async def check_write(self, user_id: str) -> None:
        limit = self.settings.write_rate_per_minute
        if limit <= 0:
            return
        key = self.keys.ratelimit(WRITE, user_id)
        if await self._count(key, 60) > limit:
            raise self._refuse(WRITE, await self.redis.ttl(key),
                               "Too many changes in a short time; slow down.")
