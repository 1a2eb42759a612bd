"""The gateway's verified-token cache (tokens.TokenVerifier): a token checked once skips the
signature check on later requests, but never the revocation lookup; it is checked again once
expired, forgotten when auth's key set changes, and the cache stays within its bound."""
from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from parley_common.cache_keys import CacheKeys
from parley_common.errors import Unauthenticated
from parley_gateway import tokens


class Keys:
    """auth's keyring as the gateway sees it: ``auth.public_keys`` answers its PEMs."""

    def __init__(self):
        self.private = {}

    def add(self, kid: str) -> None:
        self.private[kid] = Ed25519PrivateKey.generate()

    def token(self, kid: str, session_id: str, lifetime: float = 900) -> str:
        now = time.time()
        return jwt.encode({"sub": "user1", "sid": session_id, "iat": int(now),
                           "exp": int(now + lifetime)},
                          self.private[kid], algorithm="EdDSA", headers={"kid": kid})

    async def call(self, service: str, method: str, *args, timeout=None):
        assert (service, method) == ("auth", "public_keys")
        return {kid: key.public_key().public_bytes(
                    serialization.Encoding.PEM,
                    serialization.PublicFormat.SubjectPublicKeyInfo).decode()
                for kid, key in self.private.items()}


class Revocations:
    """The shared Redis cache: revoked:<sid> keys, the loaded mark set."""

    def __init__(self, keys: CacheKeys):
        self.present = {keys.revocations_loaded()}

    def pipeline(self, transaction=False):
        return self

    async def __aenter__(self):
        self.asked = []
        return self

    async def __aexit__(self, *exc):
        return False

    def exists(self, key: str) -> None:
        self.asked.append(key)

    async def execute(self):
        return [int(key in self.present) for key in self.asked]

    async def mget(self, *keys: str):
        return ["1" if key in self.present else None for key in keys]


@pytest.fixture
async def verifier(monkeypatch):
    keys = Keys()
    keys.add("k1")
    cache_keys = CacheKeys("t:")
    revocations = Revocations(cache_keys)
    verifier = tokens.TokenVerifier(keys, revocations, cache_keys, refresh_interval=0)
    assert await verifier.refresh()
    decoded = []
    real_decode = jwt.decode

    def counting_decode(*args, **kwargs):
        decoded.append(args[0])
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(tokens.jwt, "decode", counting_decode)
    return keys, cache_keys, revocations, verifier, decoded


async def test_a_verified_token_skips_the_signature_check_but_not_revocation(verifier):
    keys, cache_keys, revocations, verifier, decoded = verifier
    token = keys.token("k1", "s1")
    first = await verifier.verify(token)
    assert await verifier.verify(token) == first
    assert decoded == [token]  # checked once
    revocations.present.add(cache_keys.revoked("s1"))
    with pytest.raises(Unauthenticated, match="session has ended"):
        await verifier.verify(token)  # revocation takes effect at once


async def test_a_cached_token_is_checked_again_once_expired(verifier):
    keys, _, _, verifier, decoded = verifier
    # Expired 4 s ago: within the leeway (5 s) for at most one more second.
    token = keys.token("k1", "s1", lifetime=-4)
    await verifier.verify(token)
    time.sleep(1.1)
    with pytest.raises(Unauthenticated, match="expired"):
        await verifier.verify(token)
    assert decoded == [token, token]


async def test_a_new_key_set_forgets_tokens_of_the_retired_key(verifier):
    keys, _, _, verifier, decoded = verifier
    token = keys.token("k1", "s1")
    await verifier.verify(token)
    del keys.private["k1"]
    keys.add("k2")
    assert await verifier.refresh()
    with pytest.raises(Unauthenticated, match="invalid"):
        await verifier.verify(token)
    assert (await verifier.verify(keys.token("k2", "s2"))).session_id == "s2"


async def test_the_cache_keeps_at_most_its_bound_dropping_the_oldest(verifier, monkeypatch):
    keys, _, _, verifier, decoded = verifier
    monkeypatch.setattr(tokens, "VERIFIED_TOKENS", 2)
    first, second, third = (keys.token("k1", f"s{n}") for n in range(3))
    for token in (first, second, third):
        await verifier.verify(token)
    assert len(verifier._verified) == 2
    await verifier.verify(third)
    await verifier.verify(first)  # the oldest was dropped: checked again
    assert decoded == [first, second, third, first]


async def test_a_replaced_key_under_the_same_kid_forgets_its_tokens(verifier):
    keys, _, _, verifier, decoded = verifier
    token = keys.token("k1", "s1")
    await verifier.verify(token)
    keys.add("k1")  # a new key, same kid
    assert await verifier.refresh()
    with pytest.raises(Unauthenticated, match="invalid"):
        await verifier.verify(token)
