"""Local verification of access tokens with the auth service's public keys.

Tokens are EdDSA JWTs signed by auth; the gateway checks them without a call per request:
the public keys come from ``auth.public_keys()`` (fetched at start with back-off, and again
when a token names an unknown ``kid``, at most once per ``refresh_interval``), and revoked
sessions are Redis keys ``revoked:<sid>`` written by logout and by ``session_revoked`` events.
Redis keeps no other copy of them, so they are also marked loaded (``revocations:loaded``); a
cache that lost the mark lost the revocations too: until they are loaded back from auth
(``auth.revoked_sessions``), every verification asks auth (``session_active``).

A token whose signature and claims checked out is remembered (by its exact string, until it
expires, at most VERIFIED_TOKENS of them, forgotten when the key set changes), so a client's
next requests skip the decoding and the EdDSA check; the revocation lookup is never cached.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import jwt
import redis.exceptions
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from parley_common.backoff import Backoff
from parley_common.cache_keys import CacheKeys
from parley_common.errors import ParleyError, Unauthenticated, Unavailable
from parley_common.logs import get_logger

from .events import unix_seconds

log = get_logger("parley_gateway.tokens")

REQUIRED_CLAIMS = ["exp", "iat", "sub", "sid"]
LEEWAY_SECONDS = 5
DEFAULT_REVOKED_TTL = 900.0  # a revoked session auth names without an expiry: a token's life
# Tokens remembered as verified: a bound on memory (a few hundred bytes each, not per socket
# for long: the oldest goes first), large enough for the clients calling REST at any moment.
VERIFIED_TOKENS = 4096


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (any case of "Bearer"), or
    None when the header is missing or not of that form. REST answers None with 401, the
    WebSocket waits for an ``auth`` frame instead."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@dataclass(frozen=True)
class Principal:
    user_id: str
    session_id: str
    expires_at: float  # unix seconds


class TokenVerifier:
    def __init__(self, rpc, redis_client, keys: CacheKeys, *, refresh_interval: float = 3.0):
        self.rpc = rpc
        self.redis = redis_client
        self.keys = keys
        self.refresh_interval = refresh_interval
        self._public: dict[str, Ed25519PublicKey] = {}
        self._public_pems: dict[str, str] = {}  # what _public was loaded from
        self._last_refresh = 0.0
        self._refresh_lock = asyncio.Lock()
        self._background: asyncio.Task | None = None
        self._reload: asyncio.Task | None = None
        self._verified: dict[str, Principal] = {}  # token -> its claims, oldest first

    @property
    def has_keys(self) -> bool:
        return bool(self._public)

    # --- public keys ---------------------------------------------------------------
    async def refresh(self) -> bool:
        """Fetch auth's public keys now; False when auth did not answer."""
        self._last_refresh = time.monotonic()
        try:
            pems = await self.rpc.call("auth", "public_keys", timeout=3)
        except ParleyError as exc:
            log.warning("public_keys_unavailable", error=exc.code)
            return False
        loaded = {}
        for kid, pem in (pems or {}).items():
            try:
                key = serialization.load_pem_public_key(pem.encode())
            except (ValueError, TypeError, AttributeError):
                log.error("public_key_unreadable", kid=kid)
                continue
            if isinstance(key, Ed25519PublicKey):
                loaded[kid] = key
        if loaded:
            loaded_pems = {kid: pems[kid] for kid in loaded}
            if loaded_pems != self._public_pems:
                self._verified.clear()  # a token signed by a retired key must fail again
            self._public, self._public_pems = loaded, loaded_pems
            log.info("public_keys_loaded", kids=sorted(loaded))
        return bool(loaded)

    def start_background_fetch(self) -> None:
        """Fetch the keys until auth answers, with back-off; never blocks start-up."""
        async def fetch_until_loaded() -> None:
            backoff = Backoff(0.5, 10.0)
            while not await self.refresh():
                await asyncio.sleep(backoff.next())

        self._background = asyncio.create_task(fetch_until_loaded())

    async def stop(self) -> None:
        for task in (self._background, self._reload):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass

    async def _key_for(self, kid: str) -> Ed25519PublicKey:
        key = self._public.get(kid)
        if key is not None:
            return key
        async with self._refresh_lock:
            key = self._public.get(kid)
            if key is None and time.monotonic() - self._last_refresh >= self.refresh_interval:
                answered = await self.refresh()
                if not answered and not self._public:
                    raise Unavailable("Cannot verify tokens: the auth service is not answering.",
                                      retry_after=2)
                key = self._public.get(kid)
        if key is None:
            if not self._public:
                raise Unavailable("Cannot verify tokens yet: the auth service is not answering.",
                                  retry_after=2)
            raise Unauthenticated("The access token is invalid.")
        return key

    # --- verification --------------------------------------------------------------
    async def verify(self, token: str) -> Principal:
        """The principal of a valid, unexpired token of a session that is not revoked."""
        if not isinstance(token, str) or not token or len(token) > 4096:
            raise Unauthenticated()
        principal = self._verified.get(token)
        if principal is None or time.time() >= principal.expires_at + LEEWAY_SECONDS:
            principal = await self._checked_claims(token)
        if await self.is_revoked(principal.session_id):
            raise Unauthenticated("This session has ended; log in again.")
        return principal

    async def _checked_claims(self, token: str) -> Principal:
        """Signature and claims checked (jwt.decode), then remembered in ``_verified``."""
        self._verified.pop(token, None)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("The access token is invalid.") from None
        kid = header.get("kid")
        if not isinstance(kid, str) or header.get("alg") != "EdDSA":
            raise Unauthenticated("The access token is invalid.")
        key = await self._key_for(kid)
        try:
            claims = jwt.decode(token, key, algorithms=["EdDSA"], leeway=LEEWAY_SECONDS,
                                options={"require": REQUIRED_CLAIMS})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The access token has expired.") from None
        except jwt.PyJWTError:
            raise Unauthenticated("The access token is invalid.") from None
        user_id, session_id = claims.get("sub"), claims.get("sid")
        if not isinstance(user_id, str) or not isinstance(session_id, str):
            raise Unauthenticated("The access token is invalid.")
        principal = Principal(user_id, session_id, float(claims["exp"]))
        if len(self._verified) >= VERIFIED_TOKENS:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = principal
        return principal

    async def is_revoked(self, session_id: str) -> bool:
        try:
            # One plain command, one round trip (a pipeline of two EXISTS costs the gateway
            # more CPU per request for the same answer): absent keys read as None.
            revoked, loaded = await self.redis.mget(self.keys.revoked(session_id),
                                                    self.keys.revocations_loaded())
        except (redis.exceptions.RedisError, OSError):
            # The cache has no answer: ask auth, the source of truth (Unavailable if it can't).
            log.warning("revocation_cache_unavailable")
            return not await self.rpc.call("auth", "session_active", session_id, timeout=3)
        if revoked is not None:
            return True
        if loaded is None:
            # The cache lost its revocations (restarted empty): auth answers until they are
            # loaded back, so a revoked session never comes back to life.
            self.reload_revocations_soon()
            return not await self.rpc.call("auth", "session_active", session_id, timeout=3)
        return False

    def reload_revocations_soon(self) -> None:
        if self._reload is None or self._reload.done():
            self._reload = asyncio.create_task(self.reload_revocations())

    async def reload_revocations(self) -> bool:
        """Write auth's still-valid revoked sessions back into the cache, then mark it loaded.
        False when auth or the cache did not answer (the next verify tries again)."""
        try:
            revoked = await self.rpc.call("auth", "revoked_sessions", timeout=10)
            now = time.time()
            async with self.redis.pipeline(transaction=False) as pipe:
                for entry in revoked or ():
                    expires_at = unix_seconds(entry.get("expires_at")) or now + DEFAULT_REVOKED_TTL
                    if expires_at > now - LEEWAY_SECONDS:
                        pipe.set(self.keys.revoked(entry["session_id"]), "1",
                                 ex=_revoked_ttl(expires_at))
                pipe.set(self.keys.revocations_loaded(), str(int(now)))
                await pipe.execute()
        except (ParleyError, redis.exceptions.RedisError, OSError) as exc:
            log.warning("revocations_reload_failed", error=repr(exc))
            return False
        log.info("revocations_reloaded", count=len(revoked or ()))
        return True

    async def revoke_local(self, session_id: str, expires_at: float) -> None:
        """Mark a session revoked in the shared cache for the rest of its tokens' life."""
        await self.redis.set(self.keys.revoked(session_id), "1", ex=_revoked_ttl(expires_at))


def _revoked_ttl(expires_at: float) -> int:
    return max(1, int(expires_at - time.time()) + LEEWAY_SECONDS + 1)
