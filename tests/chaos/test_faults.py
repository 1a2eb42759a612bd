"""Faults under a steady stream, one per test (issue #13). Each test starts a fresh stream
(CHAOS_CLIENTS WebSocket clients over CHAOS_ROOMS rooms, half on each gateway), lets it flow,
injects its fault, waits until every process is healthy and traffic flows again, then
checks that nothing acknowledged was lost or doubled:

- every acked message is in its room's history exactly once, history seqs are gap-free, a
  client_id retried across the fault made one message;
- every client saw every message of its room (message frames, incl. the replay of a resume,
  plus its own acks), no message frame twice, never out of order;
- every process is healthy again within 30 s of the fault's end.

Each test prints one ``[chaos]`` line: sent / acked / stored / delivered, duplicates, gaps,
recovery time (run with ``-s`` to see them; ``make test-chaos`` does).
"""
from __future__ import annotations

import asyncio
import json
import os
import time
import uuid

import aiohttp
import pika
import psycopg2

from stream import Stream, ws_url

ROOMS = int(os.environ.get("CHAOS_ROOMS", "4"))
RATE = float(os.environ.get("CHAOS_RATE", "1.0"))
WARMUP_SECONDS = 4
AFTER_SECONDS = 4
HEALTHY_WITHIN = 30


async def run_fault(name, stack, api, accounts, http, fault, recovered=None):
    """Stream, fault, recovery (then ``recovered(stream)``, if given), checks; the Report."""
    stream = Stream(api, accounts, stack.gateway_urls, rooms=ROOMS, rate=RATE)
    await stream.start(http)
    await asyncio.sleep(WARMUP_SECONDS)
    await fault()
    fault_end = time.monotonic()
    healthy = await asyncio.to_thread(stack.wait_healthy, HEALTHY_WITHIN)
    flowing = await stream.wait_flowing(fault_end, 60)
    if recovered is not None:
        await recovered(stream)
    await asyncio.sleep(AFTER_SECONDS)
    report = await stream.finish(name, max(healthy, flowing))
    print("\n" + report.line(), flush=True)
    report.assert_nothing_lost()
    assert healthy <= HEALTHY_WITHIN
    return report


async def test_kill9_rooms_replica(stack, api, accounts, http):
    async def fault():
        stack.kill9("rooms-1")
        await asyncio.sleep(3)  # the stream runs on the other replica meanwhile
        stack.restart("rooms-1")

    await run_fault("kill -9 rooms replica", stack, api, accounts, http, fault)


async def test_kill9_auth_replica_during_logins(stack, api, accounts, http):
    logins = {"ok": 0}
    stop = asyncio.Event()

    async def log_in_repeatedly(name):
        while not stop.is_set():
            await api.login(name)  # retries 503s; any other error fails the test
            logins["ok"] += 1

    async def fault():
        loops = [asyncio.create_task(log_in_repeatedly(name)) for name, _, _ in accounts[:4]]
        await asyncio.sleep(2)
        before = logins["ok"]
        stack.kill9("auth-1")
        await asyncio.sleep(3)
        stack.restart("auth-1")
        await asyncio.sleep(3)
        stop.set()
        await asyncio.gather(*loops)
        assert before > 0 and logins["ok"] > before, logins

    await run_fault("kill -9 auth replica during logins", stack, api, accounts, http, fault)
    print(f"[chaos] logins during the auth fault: {logins['ok']}")


async def test_kill9_gateway_clients_resume_on_the_other(stack, api, accounts, http):
    async def fault():
        stack.kill9("gateway-1")
        await asyncio.sleep(3)  # its clients move to gateway-2 and resume there
        stack.restart("gateway-1")

    report = await run_fault("kill -9 gateway", stack, api, accounts, http, fault)
    assert report.reconnects >= len(accounts) // 2


async def test_rabbitmq_down_10s(stack, api, accounts, http):
    seen = {}

    async def fault():
        await asyncio.to_thread(stack.rabbit.stop)
        down = time.monotonic()
        await asyncio.sleep(2)
        # Meanwhile: not ready, and calls answer 503 with Retry-After, never hang.
        status, body, took = await asyncio.to_thread(stack.readyz, stack.gateway_urls[0])
        seen["readyz"] = (status, took)
        started = time.monotonic()
        async with http.get(stack.gateway_urls[1] + "/api/v1/rooms?scope=joined",
                            headers={"Authorization": f"Bearer {accounts[0][1]}"},
                            timeout=aiohttp.ClientTimeout(total=20)) as resp:
            seen["call"] = (resp.status, resp.headers.get("Retry-After"),
                            time.monotonic() - started, await resp.json())
        await asyncio.sleep(max(0.0, 10 - (time.monotonic() - down)))
        await asyncio.to_thread(stack.rabbit.start)

    report = await run_fault("RabbitMQ stopped 10 s", stack, api, accounts, http, fault)
    assert report.retried > 0  # sends refused during the outage were retried: one message each
    assert seen["readyz"][0] == 503, seen
    status, retry_after, took, body = seen["call"]
    assert status == 503 and retry_after and body["error"]["code"] == "unavailable", seen
    assert took < 10, seen


async def test_redis_restart_revoked_session_stays_revoked(stack, api, accounts, http):
    name = accounts[-1][0]
    revoked_token, _ = await api.login(name)
    await api.call("POST", "/api/v1/auth/logout", token=revoked_token)

    async def fault():
        await asyncio.to_thread(stack.redis.restart)

    async def presence_is_back(stream):
        # The stream's sockets stayed open across the restart: their users show online
        # again (each gateway re-registers its connections when its heartbeat key is gone).
        client = stream.clients[0]
        deadline = time.monotonic() + 15
        while True:
            members = await api.call("GET", f"/api/v1/rooms/{client.room_id}/members",
                                     token=client.token)
            streaming = {c.user["id"] for c in stream.clients if c.room_id == client.room_id}
            offline = [m["user"]["id"] for m in members["members"]
                       if m["user"]["id"] in streaming and not m["online"]]
            # ... and each gateway wrote back the rooms a later `offline` is announced to.
            missing = await asyncio.to_thread(_without_rooms_key, stack.redis.url,
                                              [c.user["id"] for c in stream.clients])
            if not offline and not missing:
                return
            assert time.monotonic() < deadline, \
                f"after the restart: offline {offline}, no user rooms key {missing}"
            await asyncio.sleep(0.5)

    await run_fault("Redis restarted", stack, api, accounts, http, fault, presence_is_back)
    for url in stack.gateway_urls:
        async with http.get(url + "/api/v1/users/me",
                            headers={"Authorization": f"Bearer {revoked_token}"}) as resp:
            assert resp.status == 401, (url, resp.status, await resp.text())
        async with http.ws_connect(ws_url(url),
                                   headers={"Authorization": f"Bearer {revoked_token}"}) as ws:
            msg = await ws.receive(timeout=10)
            assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4401, msg


def _without_rooms_key(redis_url: str, user_ids: list[str]) -> list[str]:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return [uid for uid in user_ids if not client.exists(f"chaos:user:{uid}:rooms")]
    finally:
        client.close()


async def test_postgres_restart(stack, api, accounts, http):
    async def fault():
        await asyncio.to_thread(stack.postgres.restart)

    await run_fault("PostgreSQL restarted", stack, api, accounts, http, fault)


MARKERS = 400


def _publish_markers(amqp_uri: str, run: str, numbers: range) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for n in numbers:
            body = json.dumps({"ts": "2026-12-01T00:00:00.000000+00:00", "service": "chaos",
                               "instance": run, "level": "info", "event": f"chaos_marker_{n}"})
            channel.basic_publish("parley.logs", "chaos.info", body.encode(),
                                  pika.BasicProperties(delivery_mode=2,
                                                       content_type="application/json"))
    finally:
        connection.close()


def _stored_markers(database_url: str, run: str) -> dict:
    url = database_url.replace("postgresql+psycopg2://", "postgresql://")
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT event, count(*) FROM log_records WHERE instance = %s "
                           "GROUP BY event", (run,))
            return dict(cursor.fetchall())
    finally:
        connection.close()


async def test_logger_killed_mid_batch(stack, api, accounts, http):
    run = f"chaos-{uuid.uuid4().hex[:8]}"

    async def fault():
        # Records published before, during and after the kill; the logger dies with a batch
        # in hand (unacked: redelivered to its successor) and maybe one committed but unacked.
        await asyncio.to_thread(_publish_markers, stack.amqp_uri, run, range(0, MARKERS // 2))
        stack.kill9("logger")
        await asyncio.to_thread(_publish_markers, stack.amqp_uri, run,
                                range(MARKERS // 2, MARKERS))
        stack.restart("logger")

    await run_fault("logger killed mid-batch", stack, api, accounts, http, fault)
    deadline = time.monotonic() + 30
    while True:
        stored = await asyncio.to_thread(_stored_markers, stack.databases["logs"], run)
        if len(stored) >= MARKERS or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    lost = [n for n in range(MARKERS) if f"chaos_marker_{n}" not in stored]
    twice = {event: count for event, count in stored.items() if count > 1}
    print(f"[chaos] logger: markers={MARKERS} stored={len(stored)} lost={len(lost)} "
          f"twice={len(twice)}")
    assert not lost and not twice, (lost[:10], twice)
