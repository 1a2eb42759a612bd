"""Soak: a steady WebSocket stream for many minutes; the memory (RSS) of every process at
the start and the end, so growth per message shows.

    python bench/soak.py                        # 10 minutes, 50 clients x 1.6 msg/s, 10 rooms
    python bench/soak.py --minutes 1 --clients 20

The stream is the chaos suite's (tests/chaos/stream.py): clients send with client ids at a
fixed rate, resume and retry; at the end the usual checks run (every ack stored once,
gap-free, every client saw every message in order). The default rate (80 msg/s, 400
deliveries/s) is about half of what this 2-core machine sustains through the whole path
(gateway send, rooms on PostgreSQL, fan-out) while everything shares it. Starts the suite
as real processes in the tests' isolation (own vhost, databases, Redis prefix).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "chaos"))

from parley_common.testing import isolated, start_suite  # noqa: E402
from stream import Api, Stream  # noqa: E402

WARMUP_SECONDS = 20


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def memory(procs: dict) -> dict:
    return {name: rss_kib(proc.popen.pid) for name, proc in procs.items() if proc.alive()}


async def soak(args) -> int:
    with tempfile.TemporaryDirectory() as tmp, isolated(Path(tmp)) as iso:
        suite = start_suite(iso, gateways=2, extra_env={
            "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "8192", "ARGON2_PARALLELISM": "1",
            "LOGIN_FAILURES_PER_ADDRESS": "100000", "WRITE_RATE_PER_MINUTE": "100000"})
        try:
            async with aiohttp.ClientSession() as http:
                api = Api(http, suite.gateway_urls)
                accounts = []
                for _ in range(args.clients):
                    name = f"soak{uuid.uuid4().hex[:10]}"
                    token, user = await api.account(name)
                    accounts.append((name, token, user))
                stream = Stream(api, accounts, suite.gateway_urls, rooms=args.rooms,
                                rate=args.rate)
                await stream.start(http)
                await asyncio.sleep(WARMUP_SECONDS)
                sent_at_start = sum(len(c.sent) for c in stream.clients)
                start, started = memory(suite.procs), time.monotonic()
                print(f"soak: {args.clients} clients x {args.rate} msg/s over {args.rooms} rooms "
                      f"for {args.minutes} min", flush=True)
                while time.monotonic() - started < args.minutes * 60:
                    await asyncio.sleep(min(30, args.minutes * 60))
                    done = sum(len(c.sent) for c in stream.clients) - sent_at_start
                    print(f"  {time.monotonic() - started:6.0f}s  {done} messages", flush=True)
                end = memory(suite.procs)
                elapsed = time.monotonic() - started
                messages = sum(len(c.sent) for c in stream.clients) - sent_at_start
                report = await stream.finish("soak", 0.0)
        finally:
            for proc in reversed(list(suite.procs.values())):
                proc.stop()
    print(report.line())
    print(f"{messages} messages in {elapsed:.0f} s = {messages / elapsed:.1f} msg/s, "
          f"{report.delivered} deliveries")
    print(f"{'process':12} {'RSS start':>10} {'RSS end':>10} {'growth':>9} {'B/msg':>7}")
    for name in start:
        grown = end.get(name, 0) - start[name]
        print(f"{name:12} {start[name]:>8}Ki {end.get(name, 0):>8}Ki {grown:>7}Ki "
              f"{grown * 1024 / max(messages, 1):>7.1f}")
    report.assert_nothing_lost()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--rate", type=float, default=1.6,
                        help="messages per second per client (the client keeps 2 per second "
                             "for its own sends and retries: below the gateway's 3)")
    return asyncio.run(soak(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
