"""The cleaner against real Redis and RabbitMQ, as a real process."""
from __future__ import annotations

import signal
import time
import uuid

from parley_common.testing import Proc, wait_until


def cleaner(isolation, amqp_uri: str, prefix: str, *args: str, **env) -> Proc:
    name = f"cleaner-{uuid.uuid4().hex[:6]}"
    environment = isolation.env(AMQP_URI=amqp_uri, REDIS_PREFIX=prefix, INSTANCE_ID=name,
                                **env)
    return Proc(name, "parley_cleaner", environment, isolation.workdir, args).start()


def sweep_once(isolation, amqp_uri: str, prefix: str) -> Proc:
    proc = cleaner(isolation, amqp_uri, prefix, "--once")
    assert proc.popen.wait(30) == 0, proc.output()
    return proc


def connect(redis, prefix: str, instance: str, conn_id: str, user_id: str) -> None:
    """What a gateway writes for one open WebSocket (docs/internals.md, Redis keys)."""
    redis.hset(f"{prefix}gw:{instance}:conns", conn_id, user_id)
    redis.hset(f"{prefix}user:{user_id}:conns", conn_id, instance)


def heartbeat(redis, prefix: str, instance: str) -> None:
    redis.set(f"{prefix}gw:{instance}", "1", ex=15)


def rooms(redis, prefix: str, user_id: str, *room_ids: str) -> None:
    redis.sadd(f"{prefix}user:{user_id}:rooms", *room_ids)
    redis.expire(f"{prefix}user:{user_id}:rooms", 86400)


def test_once_cleans_a_dead_gateway_and_announces_who_went_offline(
        isolation, cleaner_amqp_uri, prefix, redis, presence):
    heartbeat(redis, prefix, "gw-live")
    # alice: both connections on the dead instance -> offline
    connect(redis, prefix, "gw-dead", "a1", "alice")
    connect(redis, prefix, "gw-dead", "a2", "alice")
    rooms(redis, prefix, "alice", "r1", "r2")
    # bob: one dead, one live connection -> still online, no event
    connect(redis, prefix, "gw-dead", "b1", "bob")
    connect(redis, prefix, "gw-live", "b2", "bob")
    rooms(redis, prefix, "bob", "r1")
    # carol: live only -> untouched
    connect(redis, prefix, "gw-live", "c1", "carol")
    rooms(redis, prefix, "carol", "r3")
    # dave: dead, and no room set -> offline with no rooms
    connect(redis, prefix, "gw-dead", "d1", "dave")
    # erin: a stale room set, no connection at all
    rooms(redis, prefix, "erin", "r9")
    now = time.time()
    redis.zadd(f"{prefix}typing:r1", {"alice": now - 10, "bob": now + 30})
    redis.zadd(f"{prefix}typing:r2", {"dave": now - 1, "erin": now - 20})

    proc = sweep_once(isolation, cleaner_amqp_uri, prefix)

    assert not redis.exists(f"{prefix}gw:gw-dead:conns")
    assert redis.hgetall(f"{prefix}gw:gw-live:conns") == {"b2": "bob", "c1": "carol"}
    assert not redis.exists(f"{prefix}user:alice:conns")
    assert redis.hgetall(f"{prefix}user:bob:conns") == {"b2": "gw-live"}
    assert redis.hgetall(f"{prefix}user:carol:conns") == {"c1": "gw-live"}
    assert not redis.exists(f"{prefix}user:dave:conns")
    # room sets: kept while connected, dropped once offline (after the event used them)
    assert redis.smembers(f"{prefix}user:bob:rooms") == {"r1"}
    assert redis.smembers(f"{prefix}user:carol:rooms") == {"r3"}
    assert not redis.exists(f"{prefix}user:alice:rooms")
    assert not redis.exists(f"{prefix}user:erin:rooms")
    # typing: lapsed gone, fresh kept, emptied set gone
    assert redis.zrange(f"{prefix}typing:r1", 0, -1) == ["bob"]
    assert not redis.exists(f"{prefix}typing:r2")
    assert redis.exists(f"{prefix}gw:gw-live")

    events = wait_until(lambda: presence.drain() or None, 10, what="offline events")
    time.sleep(0.3)
    events += presence.drain()
    assert sorted((key, payload["user_id"], payload["room_ids"]) for key, payload, _ in events) == [
        ("offline", "alice", ["r1", "r2"]), ("offline", "dave", [])]
    assert all(props.delivery_mode == 2 and props.content_type == "application/json"
               for _, _, props in events)

    (summary,) = [r for r in proc.log_records() if r.get("event") == "sweep_done"]
    assert summary["level"] == "info"
    assert (summary["dead_instances"], summary["connections_removed"],
            summary["offline_events"]) == (1, 4, 2)
    assert (summary["typing_entries_removed"], summary["typing_sets_emptied"],
            summary["room_sets_deleted"]) == (3, 1, 2)

    # A second sweep finds nothing: no event, and no info line (debug only).
    again = sweep_once(isolation, cleaner_amqp_uri, prefix)
    time.sleep(0.3)
    assert presence.drain() == []
    assert [r for r in again.log_records() if r.get("event") == "sweep_done"] == []


def test_racing_cleaners_publish_each_offline_event_once(
        isolation, cleaner_amqp_uri, prefix, redis, presence):
    expected = []
    for round_ in range(3):
        users = [f"u{round_}-{n}" for n in range(40)]
        for n, user in enumerate(users):
            connect(redis, prefix, f"gw-dead-{round_}-{n % 3}", f"c{round_}-{n}", user)
            rooms(redis, prefix, user, f"room-{n % 5}")
        expected += users
        racers = [cleaner(isolation, cleaner_amqp_uri, prefix, "--once") for _ in range(2)]
        assert [racer.popen.wait(30) for racer in racers] == [0, 0]
        assert not list(redis.scan_iter(match=f"{prefix}gw:*"))

    time.sleep(0.5)
    events = presence.drain()
    announced = [payload["user_id"] for key, payload, _ in events if key == "offline"]
    assert sorted(announced) == sorted(expected)  # each exactly once


def test_a_held_lock_is_respected_and_left_alone(isolation, cleaner_amqp_uri, prefix, redis,
                                                  presence):
    connect(redis, prefix, "gw-gone", "x1", "xavier")
    redis.set(f"{prefix}cleaner:lock", "someone-else", px=30_000)

    sweep_once(isolation, cleaner_amqp_uri, prefix)
    assert redis.hgetall(f"{prefix}user:xavier:conns") == {"x1": "gw-gone"}
    assert redis.get(f"{prefix}cleaner:lock") == "someone-else"  # not ours to release
    assert presence.drain() == []

    redis.delete(f"{prefix}cleaner:lock")
    sweep_once(isolation, cleaner_amqp_uri, prefix)
    assert not redis.exists(f"{prefix}user:xavier:conns")
    assert not redis.exists(f"{prefix}cleaner:lock")  # released after the sweep
    wait_until(lambda: presence.drain(), 10, what="xavier offline")


def test_run_sweeps_periodically_and_stops_promptly_on_sigterm(
        isolation, cleaner_amqp_uri, prefix, redis, presence):
    proc = cleaner(isolation, cleaner_amqp_uri, prefix, SWEEP_INTERVAL_SECONDS="1")
    wait_until(lambda: any(r.get("event") == "cleaner_started" for r in proc.log_records()), 30,
               what="cleaner started", proc=proc)
    connect(redis, prefix, "gw-late", "l1", "lena")  # dies after the cleaner started
    wait_until(lambda: not redis.exists(f"{prefix}gw:gw-late:conns"), 15,
               what="the periodic sweep", proc=proc)
    wait_until(lambda: presence.drain(), 10, what="lena offline")

    started = time.monotonic()
    assert proc.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 3
    assert any(r.get("event") == "cleaner_stopped" for r in proc.log_records())
