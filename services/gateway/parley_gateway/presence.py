"""Presence, typing markers and the instance heartbeat in Redis (keys: docs/internals.md).

A user is online iff ``user:<uid>:conns`` is non-empty. Registering and removing a
connection is one Lua script each, so of two instances racing exactly one sees the count
become 1 (publishes ``online``) or 0 (publishes ``offline``).
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

from parley_common import bus
from parley_common.logs import get_logger

log = get_logger("parley_gateway.presence")

HEARTBEAT_TTL = 15
USER_ROOMS_TTL = 86400
TYPING_TTL = 5
TYPING_THROTTLE_MS = 2000

# KEYS: user conns, instance conns; ARGV: conn_id, instance, user_id -> HLEN of user conns
_ADD = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return redis.call('HLEN', KEYS[1])
"""
# KEYS: user conns, instance conns; ARGV: conn_id -> {removed, HLEN of user conns}
_REMOVE = """
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return {removed, redis.call('HLEN', KEYS[1])}
"""

Publish = Callable[[str, dict, bool], Awaitable[None]]


async def online(redis, keys, user_ids: list[str]) -> list[bool]:
    """For each user: connected to any gateway instance (``user:<uid>:conns`` non-empty)?"""
    if not user_ids:
        return []
    pipe = redis.pipeline(transaction=False)
    for user_id in user_ids:
        pipe.exists(keys.user_conns(user_id))
    return [bool(flag) for flag in await pipe.execute()]


class Presence:
    def __init__(self, redis, keys, instance: str, publish: Publish, rpc,
                 heartbeat_seconds: float = 5.0):
        self.redis = redis
        self.keys = keys
        self.instance = instance
        self.publish = publish  # (event type, payload, persistent) -> presence.events
        self.rpc = rpc
        self.heartbeat_seconds = heartbeat_seconds
        self._add = redis.register_script(_ADD)
        self._remove = redis.register_script(_REMOVE)
        self._beat_task: asyncio.Task | None = None
        self.local: dict[str, str] = {}  # conn_id -> user_id, for re-registration

    async def is_online(self, user_id: str) -> bool:
        return (await online(self.redis, self.keys, [user_id]))[0]

    # --- connections -------------------------------------------------------------------
    async def connected(self, conn_id: str, user_id: str) -> None:
        self.local[conn_id] = user_id
        count = await self._add(keys=[self.keys.user_conns(user_id),
                                      self.keys.instance_conns(self.instance)],
                                args=[conn_id, self.instance, user_id])
        if int(count) == 1:
            room_ids = await self.refresh_rooms(user_id)
            await self.publish(bus.PRESENCE_ONLINE, {"user_id": user_id, "room_ids": room_ids,
                                                     "ts": time.time()}, True)

    async def disconnected(self, conn_id: str, user_id: str) -> None:
        self.local.pop(conn_id, None)
        removed, count = await self._remove(keys=[self.keys.user_conns(user_id),
                                                  self.keys.instance_conns(self.instance)],
                                            args=[conn_id])
        if int(removed) == 1 and int(count) == 0:
            room_ids = sorted(await self.redis.smembers(self.keys.user_rooms(user_id)))
            await self.publish(bus.PRESENCE_OFFLINE, {"user_id": user_id, "room_ids": room_ids,
                                                      "ts": time.time()}, True)

    async def refresh_rooms(self, user_id: str) -> list[str]:
        room_ids = list(await self.rpc.call("rooms", "room_ids_for_user", user_id) or [])
        key = self.keys.user_rooms(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if room_ids:
                pipe.sadd(key, *room_ids)
                pipe.expire(key, USER_ROOMS_TTL)
            await pipe.execute()
        return room_ids

    async def room_joined(self, user_id: str, room_id: str) -> None:
        key = self.keys.user_rooms(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, room_id)
            pipe.expire(key, USER_ROOMS_TTL)
            await pipe.execute()

    async def room_left(self, user_id: str, room_id: str) -> None:
        await self.redis.srem(self.keys.user_rooms(user_id), room_id)

    # --- typing ------------------------------------------------------------------------
    async def typing(self, room_id: str, user: dict[str, Any]) -> bool:
        """Record and announce that ``user`` types in ``room_id``; False when throttled."""
        throttle = self.keys.ratelimit("typing", f"{user['id']}:{room_id}")
        if not await self.redis.set(throttle, "1", px=TYPING_THROTTLE_MS, nx=True):
            return False
        now = time.time()
        key = self.keys.typing(room_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zadd(key, {user["id"]: now + TYPING_TTL})
            pipe.expire(key, TYPING_TTL * 2)
            await pipe.execute()
        await self.publish(bus.PRESENCE_TYPING, {"room_id": room_id, "user": user, "ts": now}, False)
        return True

    # --- instance heartbeat ------------------------------------------------------------
    def start(self) -> None:
        self._beat_task = asyncio.create_task(self._beat_loop(), name="gateway-heartbeat")

    async def _beat_loop(self) -> None:
        first, lost = True, False
        while True:
            try:
                previous = await self.redis.set(self.keys.heartbeat(self.instance),
                                                str(time.time()), ex=HEARTBEAT_TTL, get=True)
                if previous is None and not first and self.local:
                    # Our heartbeat lapsed (a long stall, or the cache restarted empty) and
                    # our connections may be gone: put them back so presence stays true.
                    lost = True
                first = False
                if lost:
                    await self._reregister()
                    lost = False  # (failed: tried again at the next beat)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("heartbeat_failed", error=str(exc))
            await asyncio.sleep(self.heartbeat_seconds)

    async def _reregister(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for conn_id, user_id in self.local.items():
                pipe.hset(self.keys.user_conns(user_id), conn_id, self.instance)
                pipe.hset(self.keys.instance_conns(self.instance), conn_id, user_id)
            await pipe.execute()
        # A cache that restarted empty lost user:<uid>:rooms too, which a later offline needs.
        for user_id in set(self.local.values()):
            for attempt in (1, 2):  # a pooled connection the restart cut fails once
                try:
                    if not await self.redis.exists(self.keys.user_rooms(user_id)):
                        await self.refresh_rooms(user_id)
                    break
                except Exception as exc:  # rooms away: the next connect refreshes it
                    if attempt == 2:
                        log.warning("presence_rooms_refresh_failed", user_id=user_id,
                                    error=str(exc))
        log.warning("presence_reregistered", connections=len(self.local))

    async def stop(self) -> None:
        """Stop the heartbeat and remove what this instance registered (draining)."""
        if self._beat_task is not None:
            self._beat_task.cancel()
            try:
                await self._beat_task
            except (asyncio.CancelledError, Exception):
                pass
        for conn_id, user_id in list(self.local.items()):
            try:
                await self.disconnected(conn_id, user_id)
            except Exception as exc:
                log.warning("presence_remove_failed", conn_id=conn_id, error=str(exc))
        try:
            await self.redis.delete(self.keys.heartbeat(self.instance),
                                    self.keys.instance_conns(self.instance))
        except Exception as exc:
            log.warning("presence_cleanup_failed", error=str(exc))
