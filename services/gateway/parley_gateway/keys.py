"""Redis key names of the gateway (docs/internals.md "Redis keys"); the cleaner relies on them."""
from __future__ import annotations


class Keys:
    def __init__(self, prefix: str):
        self.prefix = prefix

    def heartbeat(self, instance: str) -> str:
        return f"{self.prefix}gw:{instance}"

    def instance_conns(self, instance: str) -> str:
        return f"{self.prefix}gw:{instance}:conns"

    def user_conns(self, user_id: str) -> str:
        return f"{self.prefix}user:{user_id}:conns"

    def user_rooms(self, user_id: str) -> str:
        return f"{self.prefix}user:{user_id}:rooms"

    def typing(self, room_id: str) -> str:
        return f"{self.prefix}typing:{room_id}"

    def revoked(self, session_id: str) -> str:
        return f"{self.prefix}revoked:{session_id}"

    def ratelimit(self, bucket: str, key: str) -> str:
        return f"{self.prefix}rl:{bucket}:{key}"
