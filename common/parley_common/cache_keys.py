"""Every Redis key of the `cache` (docs/internals.md "Redis keys"), in one place: the gateway
writes them and the cleaner sweeps them, so the layout is a contract like the bus topology."""
from __future__ import annotations

import re

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


class CacheKeys:
    # Templates; "{}" is the id. The cleaner scans them with glob() and reads ids with part().
    HEARTBEAT = "gw:{}"
    INSTANCE_CONNS = "gw:{}:conns"
    USER_CONNS = "user:{}:conns"
    USER_ROOMS = "user:{}:rooms"
    TYPING = "typing:{}"
    REVOKED = "revoked:{}"
    GATEWAY_STATS = "gwstats:{}"  # the admin console's live samples of one gateway (TTL)

    def __init__(self, prefix: str):
        self.prefix = prefix

    def _key(self, template: str, part: str) -> str:
        return self.prefix + template.format(part)

    def heartbeat(self, instance: str) -> str:
        return self._key(self.HEARTBEAT, instance)

    def instance_conns(self, instance: str) -> str:
        return self._key(self.INSTANCE_CONNS, instance)

    def user_conns(self, user_id: str) -> str:
        return self._key(self.USER_CONNS, user_id)

    def user_rooms(self, user_id: str) -> str:
        return self._key(self.USER_ROOMS, user_id)

    def typing(self, room_id: str) -> str:
        return self._key(self.TYPING, room_id)

    def revoked(self, session_id: str) -> str:
        return self._key(self.REVOKED, session_id)

    def gateway_stats(self, instance: str) -> str:
        return self._key(self.GATEWAY_STATS, instance)

    def revocations_loaded(self) -> str:
        """Set (no TTL) once the revoked:* keys were loaded from auth: missing means the cache
        was emptied and lost them (gateway tokens.py)."""
        return f"{self.prefix}revocations:loaded"

    def ratelimit(self, bucket: str, key: str) -> str:
        return f"{self.prefix}rl:{bucket}:{key}"

    def cleaner_lock(self) -> str:
        return f"{self.prefix}cleaner:lock"

    def glob(self, template: str) -> str:
        """A SCAN pattern matching every key of ``template`` (the prefix taken literally)."""
        return _GLOB_SPECIAL.sub(r"\\\1", self.prefix) + template.format("*")

    def part(self, template: str, key: str) -> str | None:
        """The id inside ``key`` of ``template``, or None when it is not such a key."""
        head, tail = (self.prefix + template).split("{}")
        if len(key) <= len(head) + len(tail) or not key.startswith(head) or not key.endswith(tail):
            return None
        return key[len(head):len(key) - len(tail)]
