"""Realtime fan-out at a fixed open-loop rate, the server side pinned to one core.

The scenario of issue #17: 20 public rooms x 50 connected members; members send at a fixed
aggregate rate (round robin over all members, so every room gets rate/20 msgs/s); every message
goes to the 50 sockets of its room. The rate is swept upward; each step is a warm-up and a
measured window:

    latency  send -> each receiver (the sender's own delivery is its `ack` or its `message`,
             whichever comes first), p50/p99/max over the measured window's messages
    lost     deliveries of the window's messages not received 5 s after the window
    cpu      CPU microseconds per delivery, summed over EVERY server process (gateway, rooms,
             auth, logger, cleaner, RabbitMQ's beam, redis-server, the postmaster and its
             backends: /proc/<pid>/stat utime+stime(+children) before/after)

Headline: the highest rate with p99 <= 100 ms and nothing lost. Also the gateway's memory per
connection (RSS growth / sockets).

The server side runs on PRIVATE RabbitMQ, Redis and PostgreSQL instances started for the run
(parley_common.private_servers: own ports 15500+, own data dirs; PostgreSQL with one database per
service, as deployed) and every process of it is pinned with taskset to --server-cores; this
load generator pins itself to --load-cores. Other modes:

    --mode idle        N authenticated idle sockets on one gateway: memory per connection
    --mode roundtrip   sequential REST calls that make one RPC (GET /api/v1/rooms/{id},
                       GET /api/v1/users/me; /healthz for reference): p50/p99
    --mode all         roundtrip, fanout, idle (the default, what `make bench` runs)
    --profile-rate R   py-spy samples the gateway and rooms during step R (--profile-dir)
    --pg-statements    pg_stat_statements in the private PostgreSQL: each fan-out step's top
                       statements (calls, execution and planning ms, rows)
    --profile-roundtrip  py-spy samples the gateway, rooms and auth during each round-trip
                       endpoint (summaries in the report, stacks in --profile-dir)
    --unpinned         nothing pinned: every process may run on every core
    --sqlite           the services on SQLite files (as `make run`) instead of PostgreSQL;
                       with --unpinned, the round trips as issue #17 measured them

    python bench/fanout.py                   # all three modes, the full sweep (~6 min)
    python bench/fanout.py --mode fanout
    python bench/fanout.py --rates 100,400 --warmup 1 --duration 3
    python bench/fanout.py --mode idle --idle-connections 19000
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _wsclient import connect  # noqa: E402

from parley_common.private_servers import (PrivateServers, cpu_ticks_of,  # noqa: E402
                                            pids_of_tree)
from parley_common.testing import Isolation, Servers, start_suite  # noqa: E402

PASSWORD = "bench-password-1"
DEFAULT_RATES = "50,100,200,400,800,1200,1600,2400,3200"
P99_LIMIT_MS = 100.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the server side -----------------------------------------------------------------------

class PrivateBrokerServers(Servers):
    """The test isolation's Servers, with vhosts made on the private RabbitMQ node."""

    def __init__(self, private: PrivateServers):
        super().__init__(private.rabbit.url, private.postgres.admin_url, private.redis.url)
        self.private = private

    def _rabbitmqctl(self, *args: str) -> None:
        self.private.rabbit.rabbitmqctl(*args)


def cpu_ticks(side: "ServerSide") -> dict[str, int]:
    """CPU ticks per server process (named), summed over its process tree's live members."""
    return {name: cpu_ticks_of(pids) for name, pids in side.trees().items()}


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def pin(pids: list[int], cores: str) -> None:
    for pid in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", cores, str(pid)], capture_output=True)


def renice(pids: list[int], niceness: int) -> None:
    """Every thread of these processes (Linux keeps a nice value per thread)."""
    for pid in pids:
        try:
            threads = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in threads:
            try:
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
            except OSError:
                pass


class ServerSide:
    def __init__(self, private, suite):
        self.private = private
        self.suite = suite

    def trees(self) -> dict[str, list[int]]:
        trees = self.private.pids()
        trees.update({name: pids_of_tree([proc.popen.pid])
                      for name, proc in self.suite.procs.items() if proc.alive()})
        return trees

    def pids(self) -> list[int]:
        return [pid for pids in self.trees().values() for pid in pids]

    @property
    def gateway_pid(self) -> int:
        return self.suite.procs["gateway-1"].popen.pid

    @property
    def url(self) -> str:
        return self.suite.url

    @property
    def port(self) -> int:
        return int(self.suite.url.rsplit(":", 1)[1])


# --- users and rooms -----------------------------------------------------------------------

async def make_users(http: aiohttp.ClientSession, base: str, count: int) -> list[dict]:
    gate = asyncio.Semaphore(16)
    tag = uuid.uuid4().hex[:6]

    async def call(path: str, body: dict, ok: int, retried_ok: int | None = None):
        """POST, retried while the server is too busy (429/503, on a loaded machine); after a
        retry ``retried_ok`` also counts (the first attempt did it after all)."""
        for attempt in range(10):
            async with http.post(f"{base}{path}", json=body) as r:
                if r.status == ok or (attempt and r.status == retried_ok):
                    return await r.json()
                if r.status not in (429, 503):
                    raise AssertionError(await r.text())
            await asyncio.sleep(1 + attempt)
        raise AssertionError(f"{path}: the server stayed busy")

    async def one(n: int) -> dict:
        name = f"f{tag}{n}"
        async with gate:
            await call("/api/v1/auth/register", {"username": name, "email": f"{name}@example.com",
                                                 "password": PASSWORD}, 201, retried_ok=409)
            body = await call("/api/v1/auth/login", {"username": name, "password": PASSWORD}, 200)
        return {"token": body["access_token"], "id": body["user"]["id"]}

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def make_rooms(http, base: str, users: list[dict], rooms: int, members: int) -> list[dict]:
    """Room r: users[r*members:(r+1)*members], the first is its owner."""
    made = []
    gate = asyncio.Semaphore(16)

    async def join(user, room_id):
        async with gate:
            async with http.post(f"{base}/api/v1/rooms/{room_id}/join",
                                 headers={"Authorization": f"Bearer {user['token']}"}) as r:
                assert r.status == 200, await r.text()

    for index in range(rooms):
        group = users[index * members:(index + 1) * members]
        async with http.post(f"{base}/api/v1/rooms",
                             headers={"Authorization": f"Bearer {group[0]['token']}"},
                             json={"name": f"fanout {index} {uuid.uuid4().hex[:6]}",
                                   "kind": "public"}) as r:
            assert r.status == 201, await r.text()
            room_id = (await r.json())["room"]["id"]
        await asyncio.gather(*(join(user, room_id) for user in group[1:]))
        made.append({"id": room_id, "members": group})
    return made


# --- the fan-out sweep ---------------------------------------------------------------------

def _int_after(payload: bytes, marker: bytes) -> int | None:
    at = payload.find(marker)
    if at < 0:
        return None
    at += len(marker)
    end = at
    while 48 <= payload[end] <= 57:
        end += 1
    return int(payload[at:end]) if end > at else None


class Sweep:
    """Shared state of the sockets' receive callback (kept flat: it runs ~10^5 times/s)."""

    def __init__(self):
        self.sent_at: list[float] = []      # message number -> perf_counter at send
        self.step_of: list[int] = []        # message number -> step index (-1: warm-up)
        self.latencies: dict[int, list[float]] = {}
        self.received: dict[int, int] = {}
        self.errors: dict[str, int] = {}
        self.subscribed = 0
        self.ready = 0
        self.closed_codes: dict[int, int] = {}

    def on_text(self, client, payload: bytes) -> None:
        now = time.perf_counter()
        kind = payload[9:13]
        if kind == b"mess" or kind == b"ack\"":
            n = _int_after(payload, b'"text":"B')
            if n is None:
                return
            own = client.tag
            if n in own:  # the sender's own delivery: its ack or its message, the first one
                if own[n]:
                    return
                own[n] = True
            step = self.step_of[n]
            if step >= 0:
                self.latencies[step].append(now - self.sent_at[n])
                self.received[step] += 1
        elif kind == b"subs":
            self.subscribed += 1
        elif kind == b"read":
            client.ready = True
            self.ready += 1
        elif kind == b"erro":
            at = payload.find(b'"code":"')
            code = payload[at + 8:payload.find(b'"', at + 8)].decode() if at >= 0 else "?"
            self.errors[code] = self.errors.get(code, 0) + 1


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def run_fanout(args, side: ServerSide, http: aiohttp.ClientSession) -> dict:
    loop = asyncio.get_running_loop()
    users = await make_users(http, side.url, args.rooms * args.members)
    rooms = await make_rooms(http, side.url, users, args.rooms, args.members)
    sweep = Sweep()
    await asyncio.sleep(1.0)
    rss_before = rss_bytes(side.gateway_pid)
    # Socket i belongs to room i % rooms: a round robin over sockets visits every room in turn.
    order = [(room, room["members"][m]) for m in range(args.members) for room in rooms]
    clients = []
    for start in range(0, len(order), 100):
        batch = order[start:start + 100]
        clients += await asyncio.gather(*(
            connect_ready(loop, side.port, user["token"], sweep.on_text, start + i)
            for i, (_, user) in enumerate(batch)))
    for client, (room, _) in zip(clients, order):
        client.tag = {}
        client.room_id = room["id"]
    # Subscribed in waves of --subscribe-wave (100; as they connect): 1,000 subscribes at once
    # are 2,000 list_messages calls queued on one rooms replica, which on a busy core time out
    # (5 s); on a shared machine smaller waves get through.
    for start in range(0, len(clients), args.subscribe_wave):
        wave = clients[start:start + args.subscribe_wave]
        for client in wave:
            client.send_text(json.dumps({"type": "subscribe", "room_id": client.room_id}).encode())
        try:
            await _until(lambda: sweep.subscribed >= start + len(wave), 120,
                         "every socket subscribed")
        except SystemExit as exc:  # say why: error replies by code, or replies that never came
            raise SystemExit(f"{exc} ({sweep.subscribed}/{len(clients)} subscribed; "
                             f"errors by code: {sweep.errors})") from None
    await asyncio.sleep(1.0)
    rss_after = rss_bytes(side.gateway_pid)
    memory_per_connection = (rss_after - rss_before) / len(clients)

    steps, failures_in_a_row = [], 0
    next_client = 0
    for index, rate in enumerate(args.rates):
        sweep.latencies[index], sweep.received[index] = [], 0
        errors_before = sum(sweep.errors.values())
        first_measured = None
        sent_measured = 0
        started = time.perf_counter()
        measure_from = started + args.warmup
        cpu_before, cpu_t0 = None, None
        batches_before = (0.0, 0.0)
        writes_before = frames_before = 0.0
        gateway_before = (0, 0)
        profilers = start_profilers(args, side, index) if rate == args.profile_rate else []
        due_total = 0
        end = measure_from + args.duration
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            if cpu_before is None and now >= measure_from:
                if args.pg_statements:
                    side.private.postgres.reset_statement_stats()
                cpu_before, cpu_t0 = cpu_ticks(side), now
                batches_before = await rpc_totals(http, side, "rooms.post_messages")
                writes_before = await counter_total(http, side, "parley_gateway_ws_writes_total")
                frames_before = await counter_total(http, side,
                                                    "parley_gateway_ws_frames_out_total")
                gateway_before = gateway_user_system(side)
                load_before = os.times()
            target = int((now - started) * rate)
            while due_total < target:
                n = len(sweep.sent_at)
                measured = started + due_total / rate >= measure_from
                client = clients[next_client]
                next_client = (next_client + 1) % len(clients)
                sweep.sent_at.append(time.perf_counter())
                sweep.step_of.append(index if measured else -1)
                client.tag[n] = False
                client.send_text(b'{"type":"send","room_id":"%s","text":"B%d","client_id":"c%d","ref":%d}'
                                 % (client.room_id.encode(), n, n, n))
                if measured:
                    sent_measured += 1
                    if first_measured is None:
                        first_measured = n
                due_total += 1
            await asyncio.sleep(0.001)
        send_end = time.perf_counter()
        expected = sent_measured * args.members
        deadline = send_end + args.loss_wait
        while sweep.received[index] < expected and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        settled = time.perf_counter()
        cpu_after = cpu_ticks(side)
        load_after = os.times()
        batches_after = await rpc_totals(http, side, "rooms.post_messages")
        writes = await counter_total(http, side, "parley_gateway_ws_writes_total") - writes_before
        frames = await counter_total(http, side,
                                     "parley_gateway_ws_frames_out_total") - frames_before
        gateway_after = gateway_user_system(side)
        profiles = finish_profilers(profilers)
        statements = side.private.postgres.top_statements() if args.pg_statements else None
        received = sweep.received[index]
        ordered = sorted(sweep.latencies[index])
        cpu_before = cpu_before or cpu_after
        cpu_by_process = {name: (ticks - cpu_before.get(name, 0)) / CLK_TCK
                          for name, ticks in cpu_after.items()}
        cpu_seconds = sum(cpu_by_process.values())
        window = max(settled - (cpu_t0 or settled), 1e-9)
        step = {
            "rate": rate, "sent": sent_measured, "achieved_rate": round(sent_measured / args.duration, 1),
            "expected_deliveries": expected, "delivered": received, "lost": expected - received,
            "errors": sum(sweep.errors.values()) - errors_before,
            "deliveries_per_second": round(received / args.duration),
            "p50_ms": round(percentile(ordered, 0.50) * 1000, 1),
            "p99_ms": round(percentile(ordered, 0.99) * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1) if ordered else None,
            "server_cpu_us_per_delivery": round(cpu_seconds * 1e6 / received, 2) if received else None,
            "server_core_busy": round(cpu_seconds / window, 2),
            "core_busy_by_process": {name: round(seconds / window, 3)
                                     for name, seconds in sorted(cpu_by_process.items())},
        }
        # The gateway's CPU split (user: Python; system: mostly the socket writes) and how
        # many frames one socket write carried (its per-turn coalescing).
        gateway_user = (gateway_after[0] - gateway_before[0]) / CLK_TCK
        gateway_system = (gateway_after[1] - gateway_before[1]) / CLK_TCK
        if received:
            step["gateway_cpu_us_per_delivery"] = {
                "user": round(gateway_user * 1e6 / received, 2),
                "system": round(gateway_system * 1e6 / received, 2)}
        # The load generator's own share of its core: near 1.0 it would be measuring itself.
        if cpu_t0 is not None:
            step["load_core_busy"] = round(
                (load_after.user + load_after.system - load_before.user - load_before.system)
                / window, 2)
        if writes:
            step["gateway_frames_per_write"] = round(frames / writes, 2)
        # The gateway's PostBatcher during the window: rooms.post_messages calls, mean posts
        # per call and mean call time (posts sent in the window / calls answered in it).
        batch_calls = batches_after[0] - batches_before[0]
        if batch_calls:
            step["post_batches"] = {
                "calls": int(batch_calls), "mean_posts": round(sent_measured / batch_calls, 1),
                "mean_ms": round((batches_after[1] - batches_before[1]) / batch_calls * 1000, 2)}
        if profiles:
            step["profiles"] = profiles
        if statements is not None:
            step["pg_statements"] = statements
        step["ok"] = step["lost"] == 0 and step["errors"] == 0 and step["p99_ms"] <= P99_LIMIT_MS
        steps.append(step)
        print(json.dumps(step), flush=True)
        for client in clients:  # forget the step's own-message bookkeeping
            client.tag.clear()
        failures_in_a_row = 0 if step["ok"] else failures_in_a_row + 1
        if failures_in_a_row >= args.stop_after_failures:
            break
        await asyncio.sleep(args.pause)
    closed = sum(1 for client in clients if client.closed)
    for client in clients:
        client.close()
    passing = [step["rate"] for step in steps if step["ok"]]
    return {
        "rooms": args.rooms, "members": args.members, "sockets": len(clients),
        "headline_msgs_per_second": max(passing) if passing else 0,
        "headline_deliveries_per_second": (max(passing) if passing else 0) * args.members,
        "gateway_bytes_per_connection": round(memory_per_connection),
        "sockets_closed_by_server": closed, "errors_by_code": sweep.errors, "steps": steps,
    }


def py_spy_path() -> str | None:
    """py-spy on PATH or beside this interpreter (it is not among the test requirements)."""
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


def start_profilers(args, side: ServerSide, index: int) -> list:
    """py-spy record (collapsed stacks) of the gateway and rooms for the step's window."""
    py_spy = py_spy_path()
    out = Path(args.profile_dir)
    out.mkdir(parents=True, exist_ok=True)
    found = []
    for name in ("gateway-1", "rooms"):
        target = out / f"{name}-{args.profile_rate}.txt"
        proc = subprocess.Popen([py_spy, "record", "--pid", str(side.suite.procs[name].popen.pid),
                                 "--duration", str(int(args.warmup + args.duration)),
                                 "--rate", "200", "--format", "raw", "--nonblocking",
                                 "--output", str(target)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        found.append((name, proc, target))
    return found


def start_roundtrip_profilers(args, side: ServerSide, endpoint: str) -> list:
    """py-spy record (collapsed stacks) of the gateway, rooms and auth while one round-trip
    endpoint is called; stopped with SIGINT by finish_profilers."""
    py_spy = py_spy_path()
    out = Path(args.profile_dir)
    out.mkdir(parents=True, exist_ok=True)
    found = []
    for name in ("gateway-1", "rooms", "auth"):
        target = out / f"roundtrip-{endpoint}-{name}.txt"
        proc = subprocess.Popen([py_spy, "record", "--pid", str(side.suite.procs[name].popen.pid),
                                 "--rate", "500", "--format", "raw", "--nonblocking",
                                 "--output", str(target)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        found.append((name, proc, target))
    return found


def finish_profilers(profilers: list, interrupt: bool = False) -> dict:
    summaries = {}
    for name, proc, target in profilers:
        if interrupt:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if target.exists():
            summaries[name] = summarize_collapsed(target)
    return summaries


def _frame_name(frame: str) -> str:
    """'send_str (/x/aiohttp/web_ws.py:412)' -> 'send_str web_ws.py'"""
    match = re.match(r"(.+?) \(([^()]*)\)$", frame)
    if match is None:
        return frame
    return f"{match.group(1)} {match.group(2).rsplit('/', 1)[-1].split(':')[0]}"


def summarize_collapsed(path: Path, top: int = 15) -> dict:
    """Share of samples per function: self (the innermost frame) and inclusive."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame_name(frame) for frame in stack.split(";")
                  if not frame.startswith(("process ", "thread "))]
        if not frames:
            continue
        n = int(count)
        total += n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n

    def share(table):
        return [f"{100 * n / total:5.1f}% {frame}" for frame, n in
                sorted(table.items(), key=lambda item: -item[1])[:top]]

    return {"samples": total, "self": share(own), "inclusive": share(inclusive), "file": str(path)}


async def connect_ready(loop, port: int, token: str, on_text, n: int, attempts: int = 5):
    """A socket that got its `ready` frame; retried when the server refused or closed it
    (a busy one-core server may time out an RPC while thousands of sockets authenticate)."""
    for attempt in range(attempts):
        try:
            # Several source addresses: thousands of sockets from one may exhaust its ports.
            client = await connect(loop, "127.0.0.1", port, token, on_text,
                                   local_host=f"127.0.0.{2 + n % 16}")
        except (OSError, asyncio.TimeoutError):
            await asyncio.sleep(1 + attempt)
            continue
        client.ready = False
        deadline = time.monotonic() + 30
        while not client.ready and not client.closed and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if client.ready:
            return client
        client.close()
        await asyncio.sleep(1 + attempt)
    raise SystemExit(f"socket {n} never became ready")


async def _until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# --- idle connections ----------------------------------------------------------------------

async def run_idle(args, side: ServerSide, http: aiohttp.ClientSession) -> dict:
    loop = asyncio.get_running_loop()
    users = await make_users(http, side.url, args.idle_users)
    sweep = Sweep()
    await asyncio.sleep(1.0)
    rss_before = rss_bytes(side.gateway_pid)
    clients, started = [], time.perf_counter()
    gate = asyncio.Semaphore(200)

    async def one(n: int):
        async with gate:
            return await connect_ready(loop, side.port, users[n % len(users)]["token"],
                                       sweep.on_text, n)

    for start in range(0, args.idle_connections, 1000):
        clients += await asyncio.gather(*(one(n) for n in range(
            start, min(start + 1000, args.idle_connections))))
    connect_seconds = time.perf_counter() - started
    await asyncio.sleep(3.0)
    rss_after = rss_bytes(side.gateway_pid)
    alive = sum(1 for client in clients if not client.closed)
    for client in clients:
        client.close()
    return {"connections": len(clients), "still_open": alive,
            "connect_seconds": round(connect_seconds, 1),
            "gateway_rss_before_mib": round(rss_before / 2**20, 1),
            "gateway_rss_after_mib": round(rss_after / 2**20, 1),
            "gateway_bytes_per_connection": round((rss_after - rss_before) / len(clients))}


# --- round trips ---------------------------------------------------------------------------

async def run_roundtrip(args, side: ServerSide, http: aiohttp.ClientSession) -> dict:
    users = await make_users(http, side.url, 1)
    headers = {"Authorization": f"Bearer {users[0]['token']}"}
    async with http.post(f"{side.url}/api/v1/rooms", headers=headers,
                         json={"name": f"rt {uuid.uuid4().hex[:6]}", "kind": "public"}) as r:
        room_id = (await r.json())["room"]["id"]
    result = {}
    for name, path in (("healthz", "/healthz"), ("get_room", f"/api/v1/rooms/{room_id}"),
                       ("users_me", "/api/v1/users/me")):
        times = []
        profilers = []
        for n in range(args.round_trips + 50):
            if n == 50:  # the first 50 warm up connections and caches
                cpu_before = cpu_ticks(side)
                if args.profile_roundtrip:
                    profilers = start_roundtrip_profilers(args, side, name)
            started = time.perf_counter()
            async with http.get(side.url + path, headers=headers) as r:
                await r.read()
                assert r.status == 200, r.status
            if n >= 50:
                times.append(time.perf_counter() - started)
        cpu_after = cpu_ticks(side)
        if profilers:
            result.setdefault("profiles", {})[name] = finish_profilers(profilers, interrupt=True)
        times.sort()
        result[name] = {"calls": len(times), "p50_ms": round(percentile(times, 0.5) * 1000, 2),
                        "p99_ms": round(percentile(times, 0.99) * 1000, 2),
                        # CPU per call of each server process that spent at least 10 us on it
                        "cpu_us_per_call": {
                            process: round((ticks - cpu_before.get(process, 0)) / CLK_TCK
                                           * 1e6 / len(times))
                            for process, ticks in sorted(cpu_after.items())
                            if (ticks - cpu_before.get(process, 0)) / CLK_TCK * 1e6
                            / len(times) >= 10}}
    # The gateway's own view of the RPC inside those calls (its rpc_latency histogram).
    for method, name in (("rooms.get_room", "get_room"), ("auth.get_me", "users_me")):
        count, seconds = await rpc_totals(http, side, method)
        if count:
            result[name]["rpc_mean_ms"] = round(seconds / count * 1000, 2)
    return result


async def counter_total(http: aiohttp.ClientSession, side: ServerSide, name: str) -> float:
    """A counter of the gateway's /metrics, summed over its labels."""
    async with http.get(side.url + "/metrics") as r:
        metrics = await r.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " "))


def gateway_user_system(side: "ServerSide") -> tuple[int, int]:
    """(utime, stime) ticks of the gateway process."""
    with open(f"/proc/{side.suite.procs['gateway-1'].popen.pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


async def rpc_totals(http: aiohttp.ClientSession, side: ServerSide, method: str
                     ) -> tuple[float, float]:
    """(calls, seconds) of the gateway's successful ``method`` RPCs so far (its rpc_latency
    histogram on /metrics)."""
    async with http.get(side.url + "/metrics") as r:
        metrics = await r.text()
    sums = {}
    for line in metrics.splitlines():
        if line.startswith("parley_gateway_rpc_latency_seconds_") and f'method="{method}"' in line \
                and 'outcome="ok"' in line:
            kind = line.split("{", 1)[0].rsplit("_", 1)[-1]
            sums[kind] = float(line.rsplit(" ", 1)[1])
    return sums.get("count", 0.0), sums.get("sum", 0.0)


# --- main ----------------------------------------------------------------------------------

def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        return "?"


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), max(hard, wanted)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def run(args) -> dict:
    raise_fd_limit(65536)  # inherited by the server processes started below
    server_cores = {int(c) for c in args.server_cores.split(",")}
    load_cores = {int(c) for c in args.load_cores.split(",")}
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit(),
              "nice": args.nice, "database": "sqlite" if args.sqlite else "postgresql",
              "server_cores": args.server_cores, "load_cores": args.load_cores,
              "machine_cores": os.cpu_count(), "loadavg_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="parley-fanout-") as tmp, \
            PrivateServers(Path(tmp) / "servers", args.base_port, args.server_cores,
                           node=f"parleybench{args.base_port}") as private:
        servers = PrivateBrokerServers(private)
        vhost = "parley-fanout"
        iso = Isolation(servers, servers.create_vhost(vhost), vhost, private.redis.url,
                        "parley-fanout:", Path(tmp))
        if args.sqlite:  # as `make run`: one SQLite file per service
            iso.database_url = lambda label: f"sqlite:///{Path(tmp) / label}.db"
        os.sched_setaffinity(0, server_cores)  # the Parley processes are born on the server core
        suite = start_suite(iso, gateways=1, extra_env={
            "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "8192", "ARGON2_PARALLELISM": "1",
            "WS_RATE_PER_10S": "100000000", "WRITE_RATE_PER_MINUTE": "100000000",
            "WS_FRAMES_PER_SECOND": "0",  # the per-socket frame budget: load is not abuse
            "WS_MAX_SOCKETS_PER_USER": "0",  # --mode idle: 19,000 sockets of 100 users
            "LOGIN_FAILURES_PER_ADDRESS": "100000", "LOG_LEVEL": "warning",
            "SWEEP_INTERVAL_SECONDS": "10",  # the cleaner's default (the tests' suite uses 2)
            "WS_SEND_QUEUE": str(args.send_queue), **dict(kv.split("=", 1) for kv in args.env)})
        os.sched_setaffinity(0, load_cores)
        side = ServerSide(private, suite)
        pin(side.pids(), args.server_cores)
        if args.nice:  # on a shared machine: first claim on the cores we measure
            renice(side.pids() + [os.getpid()], args.nice)
        try:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as http:
                if "roundtrip" in args.modes:
                    report["roundtrip"] = await run_roundtrip(args, side, http)
                    print(json.dumps({"roundtrip": report["roundtrip"]}), flush=True)
                if "fanout" in args.modes:
                    report["fanout"] = await run_fanout(args, side, http)
                if "idle" in args.modes:
                    report["idle"] = await run_idle(args, side, http)
        finally:
            for proc in reversed(list(suite.procs.values())):
                proc.stop()
            servers.delete_vhost(vhost)
            if args.logs_dir:
                Path(args.logs_dir).mkdir(parents=True, exist_ok=True)
                for log in Path(tmp).glob("*.log"):
                    shutil.copy(log, args.logs_dir)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", default="all",
                        help="fanout, idle, roundtrip, a comma-separated list of them, or all")
    parser.add_argument("--rates", default=DEFAULT_RATES, help=f"msgs/s steps ({DEFAULT_RATES})")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per step not measured")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per step")
    parser.add_argument("--loss-wait", type=float, default=5.0,
                        help="seconds after a step before a missing delivery counts as lost")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between steps")
    parser.add_argument("--stop-after-failures", type=int, default=2,
                        help="stop the sweep after this many failing steps in a row")
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--subscribe-wave", type=int, default=100,
                        help="sockets subscribing at once during set-up (smaller on a busy machine)")
    parser.add_argument("--send-queue", type=int, default=256, help="WS_SEND_QUEUE of the gateway")
    parser.add_argument("--idle-connections", type=int, default=19000)
    parser.add_argument("--idle-users", type=int, default=100)
    parser.add_argument("--round-trips", type=int, default=500)
    parser.add_argument("--unpinned", action="store_true",
                        help="pin nothing: server side and load generator share every core")
    parser.add_argument("--sqlite", action="store_true",
                        help="the services on SQLite files, as `make run` (PostgreSQL still runs)")
    parser.add_argument("--server-cores", default="0")
    parser.add_argument("--load-cores", default="1")
    parser.add_argument("--base-port", type=int, default=15500,
                        help="private Redis, PostgreSQL, RabbitMQ (+dist) on this and the next 3")
    parser.add_argument("--env", action="append", default=[],
                        help="NAME=VALUE for the Parley processes (repeatable)")
    parser.add_argument("--profile-rate", type=int, default=None,
                        help="py-spy record the gateway and rooms during this step")
    parser.add_argument("--profile-roundtrip", action="store_true",
                        help="py-spy record the gateway, rooms and auth during --mode roundtrip "
                             "(summaries in the report, stacks in --profile-dir)")
    parser.add_argument("--profile-dir", default="bench/profiles",
                        help="where the collapsed stacks go (default bench/profiles)")
    parser.add_argument("--nice", type=int, default=0,
                        help="niceness of the server processes and this generator (root: e.g. "
                             "-10 when other work shares the machine; default 0)")
    parser.add_argument("--pg-statements", action="store_true",
                        help="load pg_stat_statements (track=all, track_planning) in the private "
                             "PostgreSQL and report each fan-out step's top statements (it costs "
                             "the database some CPU per statement: not for CPU comparisons)")
    parser.add_argument("--logs-dir", help="keep the Parley processes' logs here")
    parser.add_argument("--json-out", help="also write the report to this file")
    args = parser.parse_args()
    if (args.profile_rate or args.profile_roundtrip) and py_spy_path() is None:
        parser.error("profiling needs py-spy: pip install py-spy (into this virtualenv)")
    args.rates = [int(rate) for rate in args.rates.split(",")]
    args.modes = ({"roundtrip", "fanout", "idle"} if args.mode == "all"
                  else set(args.mode.split(",")))
    if not args.modes <= {"roundtrip", "fanout", "idle"}:
        parser.error(f"unknown --mode {args.mode!r}")
    if args.pg_statements:  # read by PrivatePostgres when it starts the server
        os.environ["PARLEY_PG_STATEMENT_STATS"] = "1"
    if args.unpinned:
        args.server_cores = args.load_cores = ",".join(map(str, range(os.cpu_count())))
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    report = asyncio.run(run(args))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
