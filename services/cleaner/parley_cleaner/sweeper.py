"""One sweep of the Redis cache (keys as in docs/internals.md, "Redis keys").

Order matters for crash safety: an ``offline`` event is published (with a publisher
confirm) *before* the state it was derived from is deleted, so a cleaner dying mid-sweep
makes the next sweep repeat the work (at worst a duplicate ``offline``) instead of losing
the event. Everything here is idempotent.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import redis

from parley_common import bus
from parley_common.cache_keys import CacheKeys
from parley_common.worker import Publisher

# Delete the lock only if we still own it (it may have expired and been taken by another).
_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# Remove a connection from a user's hash and tell how many remain, in one step.
_DROP_CONNECTION = """
redis.call('HDEL', KEYS[1], ARGV[1])
return redis.call('HLEN', KEYS[1])
"""

# Drop a user's room set only while the user has no connection (checked atomically).
_DROP_ROOMS_IF_OFFLINE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return redis.call('DEL', KEYS[2])
end
return 0
"""


@dataclass
class SweepResult:
    dead_instances: int = 0
    connections_removed: int = 0
    offline_events: int = 0
    typing_entries_removed: int = 0
    typing_sets_emptied: int = 0
    room_sets_deleted: int = 0

    def did_something(self) -> bool:
        return any(asdict(self).values())

    def as_dict(self) -> dict:
        return asdict(self)


class Sweeper:
    def __init__(self, redis_client: redis.Redis, publisher: Publisher, *, prefix: str,
                 instance_id: str, lock_ttl_ms: int = 60_000, scan_count: int = 500) -> None:
        self.redis = redis_client
        self.publisher = publisher
        self.keys = CacheKeys(prefix)
        self.instance_id = instance_id
        self.lock_ttl_ms = lock_ttl_ms
        self.scan_count = scan_count
        self._release_lock = redis_client.register_script(_RELEASE_LOCK)
        self._drop_connection = redis_client.register_script(_DROP_CONNECTION)
        self._drop_rooms_if_offline = redis_client.register_script(_DROP_ROOMS_IF_OFFLINE)

    def _scan(self, template: str, type_: str):
        """Every key of ``template`` (a CacheKeys template) of that Redis type."""
        return self.redis.scan_iter(match=self.keys.glob(template), count=self.scan_count,
                                    _type=type_)

    # --- the sweep ----------------------------------------------------------------------
    def sweep(self) -> SweepResult | None:
        """One sweep under ``cleaner:lock``; None if another cleaner holds the lock."""
        lock = self.keys.cleaner_lock()
        if not self.redis.set(lock, self.instance_id, nx=True, px=self.lock_ttl_ms):
            return None
        try:
            result = SweepResult()
            self._sweep_dead_instances(result)
            self._sweep_typing(result)
            self._sweep_room_sets(result)
            return result
        finally:
            self._release_lock(keys=[lock], args=[self.instance_id])

    def _sweep_dead_instances(self, result: SweepResult) -> None:
        """(a) connections held by gateway instances whose heartbeat has lapsed."""
        for conns_key in list(self._scan(CacheKeys.INSTANCE_CONNS, "hash")):
            instance = self.keys.part(CacheKeys.INSTANCE_CONNS, conns_key)
            if not instance or self.redis.exists(self.keys.heartbeat(instance)):
                continue  # a live instance: its heartbeat is there
            result.dead_instances += 1
            by_user: dict[str, list[str]] = {}
            for conn_id, user_id in self.redis.hgetall(conns_key).items():
                by_user.setdefault(user_id, []).append(conn_id)
            for user_id, conn_ids in by_user.items():
                user_conns = self.keys.user_conns(user_id)
                remaining = None
                for conn_id in conn_ids:
                    remaining = self._drop_connection(keys=[user_conns], args=[conn_id])
                result.connections_removed += len(conn_ids)
                if remaining == 0:
                    room_ids = sorted(self.redis.smembers(self.keys.user_rooms(user_id)))
                    self.publisher.publish(bus.PRESENCE_EVENTS, bus.PRESENCE_OFFLINE,
                                           {"user_id": user_id, "room_ids": room_ids,
                                            "ts": time.time()})
                    result.offline_events += 1
            # Only now that every event is confirmed by the broker.
            self.redis.delete(conns_key)

    def _sweep_typing(self, result: SweepResult) -> None:
        """(b) typing markers whose expiry has passed (Redis drops a zset once it is empty)."""
        now = time.time()
        for typing_key in list(self._scan(CacheKeys.TYPING, "zset")):
            pipe = self.redis.pipeline(transaction=True)
            pipe.zremrangebyscore(typing_key, "-inf", now)
            pipe.exists(typing_key)
            removed, still_there = pipe.execute()
            result.typing_entries_removed += removed
            if removed and not still_there:
                result.typing_sets_emptied += 1

    def _sweep_room_sets(self, result: SweepResult) -> None:
        """(c) ``user:<id>:rooms`` of users with no connection at all."""
        for rooms_key in list(self._scan(CacheKeys.USER_ROOMS, "set")):
            user_id = self.keys.part(CacheKeys.USER_ROOMS, rooms_key)
            if not user_id:
                continue
            result.room_sets_deleted += self._drop_rooms_if_offline(
                keys=[self.keys.user_conns(user_id), rooms_key])
