"""WebSocket fan-out: one room, many subscribers spread over the gateway instances, one
sender; reports deliveries per second and send-to-receive latency.

    python bench/ws_fanout.py --listeners 200 --messages 200 --gateways 2

Starts the whole suite as real processes in an isolated vhost / databases / Redis prefix
(the same isolation the tests use) and removes it afterwards.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from parley_common.testing import isolated, start_suite  # noqa: E402

PASSWORD = "bench-password-1"


async def make_user(http: aiohttp.ClientSession, base: str) -> str:
    name = f"b{uuid.uuid4().hex[:12]}"
    async with http.post(f"{base}/api/v1/auth/register",
                         json={"username": name, "email": f"{name}@example.com", "password": PASSWORD}) as r:
        assert r.status == 201, await r.text()
    async with http.post(f"{base}/api/v1/auth/login", json={"username": name, "password": PASSWORD}) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["access_token"]


async def listen(http, base, token, room_id, expected, latencies, ready: asyncio.Event, counter):
    async with http.ws_connect(f"{base}/api/v1/ws", headers={"Authorization": f"Bearer {token}"},
                               max_msg_size=0) as ws:
        await ws.send_json({"type": "subscribe", "room_id": room_id})
        async for frame in ws:
            data = json.loads(frame.data)
            if data["type"] == "subscribed":
                counter["subscribed"] += 1
                if counter["subscribed"] == counter["listeners"]:
                    ready.set()
            elif data["type"] == "message":
                sent_at = float(data["message"]["text"].split(" ", 1)[0])
                latencies.append(time.perf_counter() - sent_at)
                expected -= 1
                if expected == 0:
                    return


async def run(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp, isolated(Path(tmp)) as iso:
        suite = start_suite(iso, gateways=args.gateways, extra_env={
            "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "8192", "ARGON2_PARALLELISM": "1",
            "WS_RATE_PER_10S": "1000000", "WS_FRAMES_PER_SECOND": "0",
            "WRITE_RATE_PER_MINUTE": "1000000", "LOG_LEVEL": "warning"})
        try:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as http:
                base = suite.gateway_urls[0]
                owner = await make_user(http, base)
                headers = {"Authorization": f"Bearer {owner}"}
                async with http.post(f"{base}/api/v1/rooms", headers=headers,
                                     json={"name": "bench", "kind": "public"}) as r:
                    room_id = (await r.json())["room"]["id"]
                tokens = []
                for batch in range(0, args.listeners, 20):
                    tokens += await asyncio.gather(*(make_user(http, base) for _ in
                                                     range(min(20, args.listeners - batch))))
                for token in tokens:
                    async with http.post(f"{base}/api/v1/rooms/{room_id}/join",
                                         headers={"Authorization": f"Bearer {token}"}) as r:
                        assert r.status == 200, await r.text()
                latencies: list[float] = []
                ready = asyncio.Event()
                counter = {"subscribed": 0, "listeners": len(tokens)}
                listeners = [asyncio.create_task(listen(
                    http, suite.gateway_urls[i % len(suite.gateway_urls)], token, room_id,
                    args.messages, latencies, ready, counter)) for i, token in enumerate(tokens)]
                await asyncio.wait_for(ready.wait(), 120)

                started = time.perf_counter()
                async with http.ws_connect(f"{base}/api/v1/ws", headers=headers) as sender:
                    in_flight = asyncio.Semaphore(args.in_flight)

                    async def acks():
                        async for frame in sender:
                            if json.loads(frame.data)["type"] == "ack":
                                in_flight.release()

                    ack_task = asyncio.create_task(acks())
                    for n in range(args.messages):
                        await in_flight.acquire()
                        await sender.send_json({"type": "send", "room_id": room_id,
                                                "text": f"{time.perf_counter()} #{n}",
                                                "client_id": f"bench-{n}"})
                    await asyncio.wait_for(asyncio.gather(*listeners), 600)
                    elapsed = time.perf_counter() - started
                    ack_task.cancel()
        finally:
            for proc in reversed(list(suite.procs.values())):
                proc.stop()
    deliveries = len(latencies)
    latencies.sort()
    return {
        "gateways": args.gateways, "listeners": len(tokens), "messages": args.messages,
        "deliveries": deliveries, "seconds": round(elapsed, 2),
        "deliveries_per_second": round(deliveries / elapsed),
        "messages_per_second": round(args.messages / elapsed, 1),
        "latency_ms_p50": round(statistics.median(latencies) * 1000, 1),
        "latency_ms_p95": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listeners", type=int, default=100)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--gateways", type=int, default=2)
    parser.add_argument("--in-flight", type=int, default=16, help="unacknowledged sends at once")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
