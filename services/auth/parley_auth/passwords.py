"""argon2id password hashing. The parameters travel inside each encoded hash, so raising
them (env) only needs logins to happen: a stale hash is re-hashed on the next good login."""
from __future__ import annotations

import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

from parley_common import config

try:  # argon2 releases the GIL: run it in an OS thread so the eventlet hub keeps serving
    from eventlet import tpool as _tpool
except ImportError:  # pragma: no cover
    _tpool = None


def _offload(fn, *args):
    return _tpool.execute(fn, *args) if _tpool is not None else fn(*args)


class Passwords:
    def __init__(self) -> None:
        self.hasher = PasswordHasher(
            time_cost=config.env_int("ARGON2_TIME_COST", RFC_9106_LOW_MEMORY.time_cost),
            memory_cost=config.env_int("ARGON2_MEMORY_COST", RFC_9106_LOW_MEMORY.memory_cost),
            parallelism=config.env_int("ARGON2_PARALLELISM", RFC_9106_LOW_MEMORY.parallelism),
            hash_len=RFC_9106_LOW_MEMORY.hash_len,
            salt_len=RFC_9106_LOW_MEMORY.salt_len,
            type=Type.ID,
        )
        # Verified against when the login names nobody, so both failures cost the same time.
        self.dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return _offload(self.hasher.hash, password)

    def verify(self, encoded: str | None, password: str) -> bool:
        try:
            return _offload(self.hasher.verify, encoded or self.dummy_hash, password) \
                and encoded is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, encoded: str) -> bool:
        return self.hasher.check_needs_rehash(encoded)
