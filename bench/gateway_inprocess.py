"""The gateway's own costs, in-process: CPU per delivery of the event -> fan-out path and RSS
per idle authenticated socket. No broker, no Redis, no other service: figures a shared machine
disturbs far less than fanout.py's end-to-end run (which needs a quiet core).

    fanout  the real EventConsumer._on_delivery, fed `message_posted` events (as aiormq
            delivers them: one task each) at --rate messages/s for --seconds, --rooms x
            --members sockets subscribed through the real Hub; the gateway process's own CPU
            (getrusage: user and system) per delivery, --repeat times. --burst N: the
            messages arrive N at a time (a post batch); with --batched as ONE
            `messages_posted` event of N messages, as rooms publishes a batch
    idle    --sockets authenticated idle sockets (--users users) through the real
            ws.websocket_handler and WsSession, with stub token check, auth RPC and
            presence; gateway RSS growth per socket

The sockets are held by a child process (raw asyncio streams: reads and discards, answers
pings). Ports: --port (default 16150).

    python bench/gateway_inprocess.py --mode fanout --rate 400 --seconds 10
    python bench/gateway_inprocess.py --mode idle --sockets 19000
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import gc
import json
import os
import resource
import sys
import time
import uuid
from types import SimpleNamespace


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def raise_fd_limit() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- the child: sockets ------------------------------------------------------------------------

async def hold_sockets(args) -> None:
    """Open the sockets (the upgrade request by hand), then read and discard, answer pings."""
    gate = asyncio.Semaphore(200)

    async def one(i: int) -> None:
        for attempt in range(5):  # a busy machine resets a connect now and then: again
            try:
                return await upgrade(i)
            except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
                await asyncio.sleep(0.5 * (attempt + 1))
        raise ConnectionError(f"socket {i} could not connect")

    async def upgrade(i: int) -> None:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
            key = base64.b64encode(os.urandom(16)).decode()
            if args.mode == "idle":
                target, auth = "/api/v1/ws", f"Authorization: Bearer u{i % args.users}\r\n"
            else:
                target, auth = f"/ws?room=r{i % args.rooms}", ""
            writer.write((f"GET {target} HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                          f"Sec-WebSocket-Version: 13\r\n{auth}\r\n").encode())
            await reader.readuntil(b"\r\n\r\n")
            if args.mode == "idle":
                await reader.readuntil(b'"ready"')
            # read from now on: connecting them all takes longer than a heartbeat interval
            readers.append(asyncio.ensure_future(drain(reader, writer)))

    async def drain(reader, writer) -> None:
        while data := await reader.read(65536):
            if data[:1] == b"\x89":  # a ping: a masked, empty pong
                writer.write(b"\x8a\x80\x00\x00\x00\x00")

    readers = []
    count = args.sockets if args.mode == "idle" else args.rooms * args.members
    await asyncio.gather(*(one(i) for i in range(count)))
    await asyncio.gather(*readers)


# --- the gateway side --------------------------------------------------------------------------

class _Tokens:
    async def verify(self, token):
        return SimpleNamespace(user_id=token, session_id=token + "-s",
                               expires_at=time.time() + 3600)

    async def is_revoked(self, session_id):
        return False


class _Rpc:
    async def call(self, service, method, *args, **kwargs):  # auth.get_me
        user_id = args[0]
        return {"id": user_id, "username": "user" + user_id, "display_name": "User " + user_id}


class _Presence:
    def __init__(self):
        self.local = {}  # what the real one keeps per socket

    async def connected(self, conn_id, user_id):
        self.local[conn_id] = user_id

    async def disconnected(self, conn_id, user_id):
        self.local.pop(conn_id, None)


async def start_child(args):
    argv = [sys.executable, __file__, "--child", "--mode", args.mode, "--port", str(args.port),
            "--sockets", str(args.sockets), "--users", str(args.users),
            "--rooms", str(args.rooms), "--members", str(args.members)]
    return await asyncio.create_subprocess_exec(*argv)


async def run_idle(args) -> dict:
    from aiohttp import web

    from parley_gateway import ws
    from parley_gateway.budget import Budgets
    from parley_gateway.events import EventConsumer
    from parley_gateway.hub import Hub
    from parley_gateway.metrics import Metrics
    from parley_gateway.realtime import Realtime
    from parley_gateway.settings import Settings

    settings = Settings.from_env()
    metrics = Metrics()
    hub = Hub(settings, metrics)
    events = EventConsumer(hub, rpc=_Rpc(), tokens=_Tokens(), amqp_uri="", instance="bench")
    realtime = Realtime(settings=settings, metrics=metrics, rpc=_Rpc(), tokens=_Tokens(),
                        posts=None, hub=hub, budgets=Budgets(settings), events=events,
                        presence=_Presence())
    app = web.Application()
    app.router.add_get(ws.WS_PATH, functools.partial(ws.websocket_handler, realtime))
    sweep = asyncio.ensure_future(hub.run_heartbeat(20.0))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    gc.collect()
    gc.freeze()
    before = rss_bytes()
    child = await start_child(args)
    started = time.perf_counter()
    while len(hub.connections) < args.sockets:
        await asyncio.sleep(0.2)
        if child.returncode is not None:
            raise RuntimeError("the socket holder died (see its error above)")
    connect_seconds = time.perf_counter() - started
    await asyncio.sleep(2)
    gc.collect()
    after = rss_bytes()
    result = {"mode": "idle", "sockets": args.sockets, "users": args.users,
              "still_open": len(hub.connections), "connect_seconds": round(connect_seconds, 1),
              "rss_before_mib": round(before / 2**20, 1),
              "rss_after_mib": round(after / 2**20, 1),
              "bytes_per_socket": round((after - before) / args.sockets)}
    print(json.dumps(result), flush=True)
    child.kill()
    sweep.cancel()
    await runner.cleanup()
    return result


async def run_fanout(args) -> list[dict]:
    from aiohttp import web

    from parley_gateway import upgrade
    from parley_gateway.events import EventConsumer
    from parley_gateway.hub import Hub
    from parley_gateway.metrics import Metrics

    metrics = Metrics()
    hub = Hub(SimpleNamespace(ws_send_queue=256, drain_seconds=2), metrics)
    events = EventConsumer(hub, rpc=None, tokens=None, amqp_uri="", instance="bench",
                           metrics=metrics)
    sockets = args.rooms * args.members

    async def handler(request):
        conn = hub.new_connection()
        response = await upgrade.accept(request, conn)  # conn owns the socket from now on
        conn.user_id = conn.session_id = conn.conn_id
        hub.register(conn)
        hub.subscribe(conn, request.query["room"])
        return response

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    child = await start_child(args)
    while len(hub.connections) < sockets:
        await asyncio.sleep(0.1)
        if child.returncode is not None:
            raise RuntimeError("the socket holder died (see its error above)")
    seqs = {}
    for room in range(args.rooms):
        events.ordering.baseline(f"r{room}", 0)
        seqs[room] = 0

    def message(i: int) -> dict:
        room = i % args.rooms
        seqs[room] += 1
        return {"id": uuid.uuid4().hex, "room_id": f"r{room}", "seq": seqs[room],
                "author": {"id": "u1", "username": "user1", "display_name": "User One"},
                "text": f"B{i} hello there", "created_at": "2026-12-01T19:00:00.000000Z",
                "edited_at": None, "client_id": f"c{i}"}

    def delivery(event_type: str, payload: dict):  # what aiormq hands the consumer
        return SimpleNamespace(
            routing_key=event_type, exchange="rooms.events", delivery_tag=None, channel=None,
            header=SimpleNamespace(properties=SimpleNamespace(timestamp=None)),
            body=json.dumps(payload).encode())

    def events_of(count: int) -> list:
        messages = [message(i) for i in range(count)]
        if not args.batched:
            return [delivery("message_posted", {"message": m, "member_ids": []})
                    for m in messages]
        return [delivery("messages_posted", {
            "messages": messages[i:i + args.burst],
            "member_ids": {m["room_id"]: [] for m in messages[i:i + args.burst]}})
            for i in range(0, count, args.burst)]

    results = []
    per_event = args.burst if args.batched else 1
    for _ in range(args.repeat):
        batch = events_of(int(args.rate * args.seconds))
        await asyncio.sleep(0.5)
        writes0 = metrics.ws_writes._value.get()
        usage0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for i, event in enumerate(batch):
            if (i * per_event) % args.burst == 0:  # a post batch's messages arrive together
                delay = t0 + i * per_event / args.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            asyncio.ensure_future(events._on_delivery(event))  # aiormq: a task per delivery
        await asyncio.sleep(0.3)
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
        deliveries = len(batch) * per_event * args.members
        user = usage1.ru_utime - usage0.ru_utime
        system = usage1.ru_stime - usage0.ru_stime
        results.append({"mode": "fanout", "rate": args.rate, "burst": args.burst,
                        "batched": args.batched, "deliveries": deliveries,
                        "cpu_us_per_delivery": round((user + system) * 1e6 / deliveries, 2),
                        "user_us": round(user * 1e6 / deliveries, 2),
                        "system_us": round(system * 1e6 / deliveries, 2),
                        "frames_per_write": round(
                            deliveries / max(metrics.ws_writes._value.get() - writes0, 1), 2),
                        "loadavg": round(os.getloadavg()[0], 1)})
        print(json.dumps(results[-1]), flush=True)
    child.kill()
    await runner.cleanup()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("fanout", "idle", "all"), default="all")
    parser.add_argument("--rate", type=float, default=400.0, help="messages per second (fanout)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=1,
                        help="events arriving together (fanout; 40 ~ rooms' post batches at 800/s)")
    parser.add_argument("--batched", action="store_true",
                        help="each burst as one messages_posted event (fanout)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--sockets", type=int, default=19000, help="idle sockets")
    parser.add_argument("--users", type=int, default=100, help="users of the idle sockets")
    parser.add_argument("--port", type=int, default=16150)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_fd_limit()
    os.environ.setdefault("WS_MAX_SOCKETS_PER_USER", "0")  # many sockets per bench user
    os.environ.setdefault("LOG_LEVEL", "warning")
    try:
        import uvloop  # what the gateway runs on (python -m parley_gateway)
        uvloop.install()
    except ImportError:
        pass
    if args.child:
        asyncio.run(hold_sockets(args))
        return 0
    modes = ("fanout", "idle") if args.mode == "all" else (args.mode,)
    for mode in modes:
        args.mode = mode
        if mode == "fanout":
            asyncio.run(run_fanout(args))
        else:
            asyncio.run(run_idle(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
