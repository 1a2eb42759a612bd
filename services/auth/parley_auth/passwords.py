"""argon2id password hashing. The parameters travel inside each encoded hash, so raising
them (env) only needs logins to happen: a stale hash is re-hashed on the next good login.

Each hash costs ARGON2_MEMORY_COST KiB and a core for a while, so at most
AUTH_HASH_CONCURRENCY (default: the cores this process may use) run at once. A hash that cannot
start within AUTH_HASH_WAIT_SECONDS is refused with RateLimited (the gateway answers 429 with
Retry-After): a burst of logins is shed quickly instead of queueing every worker of this
replica behind it, so the other calls (token checks, profiles) keep being answered.
"""
from __future__ import annotations

import os
import secrets
import threading

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

from parley_common import config
from parley_common.errors import RateLimited
# argon2 releases the GIL: run it in an OS thread so the eventlet hub keeps serving.
from parley_common.nameko_support import off_the_hub as _offload


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
        self.concurrency = config.env_int("AUTH_HASH_CONCURRENCY", _cores())
        self.wait_seconds = config.env_float("AUTH_HASH_WAIT_SECONDS", 0.5)
        # threading is green under eventlet's monkey patching: a waiting worker yields.
        self._slots = threading.BoundedSemaphore(self.concurrency) if self.concurrency > 0 \
            else None

    def _bounded(self, fn, *args):
        if self._slots is None:
            return _offload(fn, *args)
        if not self._slots.acquire(timeout=self.wait_seconds):
            raise RateLimited("The server is busy checking passwords; try again in a moment.",
                              retry_after=1)
        try:
            return _offload(fn, *args)
        finally:
            self._slots.release()

    def hash(self, password: str) -> str:
        return self._bounded(self.hasher.hash, password)

    def verify(self, encoded: str | None, password: str) -> bool:
        try:
            return self._bounded(self.hasher.verify, encoded or self.dummy_hash, password) \
                and encoded is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, encoded: str) -> bool:
        return self.hasher.check_needs_rehash(encoded)


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (not Linux)
        return max(1, os.cpu_count() or 1)
