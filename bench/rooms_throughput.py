"""How many messages per second one rooms replica persists on PostgreSQL.

Starts N real `python -m parley_rooms` replicas against a fresh RabbitMQ vhost and a fresh
PostgreSQL database (the same servers and helpers the tests use), creates users (through
user_registered events, as auth would) and rooms, then posts M messages with high
concurrency the way the gateway posts them (its PostBatcher: concurrent posts share
`rooms.post_messages` calls; `--unbatched`: one `rooms.post_message` call per post), and prints:

    messages persisted per second per replica  (rows in the database / elapsed / replicas)
    p50 / p95 / p99 latency of post_message as the caller sees it
    CPU per message of the replicas and of this client, and how busy the whole machine was
    (on a small shared machine the broker, the database and this client compete with the
    replicas for the same cores)

Everything it created (processes, vhost, database) is removed at the end.

    python bench/rooms_throughput.py --replicas 1 --messages 5000
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import psycopg2

from parley_common import bus
from parley_common.errors import ParleyError
from parley_common.rpc import AsyncRpcClient
from parley_common.testing import Isolation, Proc, isolated, queue_consumers, wait_until
from parley_gateway.posting import PostBatcher


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=1, help="rooms processes (default 1)")
    parser.add_argument("--messages", type=int, default=5000, help="messages to post (default 5000)")
    parser.add_argument("--rooms", type=int, default=8, help="rooms to spread them over (default 8)")
    parser.add_argument("--users", type=int, default=4, help="authors, members of every room (default 4)")
    parser.add_argument("--concurrency", type=int, default=200, help="posts in flight (default 200)")
    parser.add_argument("--max-workers", type=int, default=None,
                        help="MAX_WORKERS of each replica (default: the service's own default)")
    parser.add_argument("--unbatched", action="store_true",
                        help="one post_message call per post instead of the gateway's batching")
    parser.add_argument("--batches-in-flight", type=int, default=4,
                        help="batched mode: calls awaiting an answer at once (gateway default 4)")
    parser.add_argument("--partial-in-flight", type=int, default=1,
                        help="batched mode: calls of less than a full batch out at once "
                             "(gateway default 1)")
    parser.add_argument("--rate", type=float, default=None,
                        help="open loop: post at this many msgs/s (default: as fast as "
                             "--concurrency allows)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the replicas' log files")
    return parser.parse_args()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def setup_users_and_rooms(client: AsyncRpcClient, amqp_uri: str, users: int, rooms: int):
    connection = await aio_pika.connect_robust(amqp_uri)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(bus.AUTH_EVENTS, aio_pika.ExchangeType.TOPIC, durable=True)
    people = [{"id": uuid.uuid4().hex, "username": f"bench{n}", "display_name": f"Bench {n}",
               "avatar_url": None, "created_at": "2026-11-22T10:00:00.000Z"} for n in range(users)]
    for person in people:
        await exchange.publish(aio_pika.Message(json.dumps({"user": person}).encode(),
                                                content_type="application/json",
                                                delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                               routing_key="user_registered")
    await connection.close()
    member_ids = [person["id"] for person in people[1:]]
    created = []
    for index in range(rooms):
        for _ in range(100):  # until the replica has taken in the user_registered events
            try:
                created.append(await client.call("rooms", "create_room", people[0]["id"],
                                                 f"bench room {index}", "private",
                                                 member_ids=member_ids))
                break
            except ParleyError as exc:
                if exc.code not in {"not_found", "unavailable"}:
                    raise
                await asyncio.sleep(0.1)
        else:
            raise SystemExit("the rooms replicas never learnt the bench users")
    return people, created


async def post_all(client: AsyncRpcClient, people, rooms, messages: int, concurrency: int,
                   args: argparse.Namespace):
    if args.unbatched:
        async def send(author_id: str, room_id: str, text: str, client_id: str) -> None:
            await client.call("rooms", "post_message", author_id, room_id, text, client_id,
                              timeout=60)
    else:
        send = PostBatcher(client, max_in_flight=args.batches_in_flight,
                           partial_in_flight=args.partial_in_flight).post
    latencies: list[float] = []
    failures: dict[str, int] = {}
    gate = asyncio.Semaphore(concurrency if not args.rate else messages)
    run_tag = uuid.uuid4().hex[:8]  # fresh client_ids: a repeated one would not be a new message
    begin = time.perf_counter()

    async def post(index: int) -> None:
        author = people[index % len(people)]
        room = rooms[index % len(rooms)]
        if args.rate:  # open loop: each post at its own time, whatever the earlier ones do
            await asyncio.sleep(max(0.0, begin + index / args.rate - time.perf_counter()))
        async with gate:
            started = time.perf_counter()
            try:
                await send(author["id"], room["id"], f"benchmark message {index}",
                           f"{run_tag}-{index}")
            except ParleyError as exc:
                failures[exc.code] = failures.get(exc.code, 0) + 1
                return
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(post(index) for index in range(messages)))
    return time.perf_counter() - started, latencies, failures


class CountingClient(AsyncRpcClient):
    """The RPC client, counting its calls (the PostBatcher's batches)."""
    calls = 0

    async def call(self, *args, **kwargs):
        self.calls += 1
        return await super().call(*args, **kwargs)


class EventCounter:
    """A queue bound to rooms.events like a gateway's, read at the end: how many
    messages_posted events came and how many messages they announced, how many of them
    distinct."""

    def __init__(self, connection, queue):
        self.connection, self.queue = connection, queue

    @classmethod
    async def bound(cls, amqp_uri: str) -> "EventCounter":
        connection = await aio_pika.connect_robust(amqp_uri)
        channel = await connection.channel()
        exchange = await channel.declare_exchange(bus.ROOMS_EVENTS, aio_pika.ExchangeType.TOPIC,
                                                  durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="messages_posted")
        return cls(connection, queue)

    async def count_and_close(self) -> tuple[int, int, int]:
        """(events, messages announced, distinct message ids)."""
        events = announced = 0
        ids: set[str] = set()
        while (message := await self.queue.get(no_ack=True, fail=False)) is not None:
            posted = json.loads(message.body).get("messages") or []
            events += 1
            announced += len(posted)
            ids.update(item["id"] for item in posted)
        await self.connection.close()
        return events, announced, len(ids)


async def bench(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    try:
        with isolated(workdir) as iso:  # own vhost, database, Redis prefix; removed afterwards
            return await _bench(args, iso, workdir)
    finally:
        if args.keep_logs:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


async def _bench(args: argparse.Namespace, iso: Isolation, workdir: Path) -> int:
    database_url = iso.database_url("rooms_bench")
    extra = {"DATABASE_URL": database_url, "LOG_SHIP": "0", "LOG_LEVEL": "warning"}
    if args.max_workers:
        extra["MAX_WORKERS"] = str(args.max_workers)
    env = iso.env(**extra)
    procs: list[Proc] = []
    client = CountingClient(iso.amqp_uri, caller="bench", timeout=30)
    try:
        procs.append(Proc("rooms-1", "parley_rooms", {**env, "INSTANCE_ID": "rooms-1"}, workdir).start())
        wait_until(lambda: queue_consumers(iso.amqp_uri, "rpc-rooms") >= 1, 60,
                   what="rooms-1 serving", proc=procs[0])
        for index in range(2, args.replicas + 1):
            procs.append(Proc(f"rooms-{index}", "parley_rooms",
                              {**env, "INSTANCE_ID": f"rooms-{index}"}, workdir).start())
        wait_until(lambda: queue_consumers(iso.amqp_uri, "rpc-rooms") >= args.replicas, 60,
                   what="every replica serving", proc=procs[-1])
        await client.start()
        people, rooms = await setup_users_and_rooms(client, iso.amqp_uri, args.users, args.rooms)
        # a short warm-up so connection pools and statement caches are filled
        await post_all(client, people, rooms, min(200, args.messages), args.concurrency, args)
        # Where a gateway's queue would be: every messages_posted event of the run lands here
        # (the broker routes and stores them as it would for a gateway), and is counted.
        events = await EventCounter.bound(iso.amqp_uri)
        with psycopg2.connect(_dsn(database_url)) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM messages")
            before = cursor.fetchone()[0]
        cpu_before = [_process_cpu_seconds(proc) for proc in procs]
        client_cpu_before, machine_before = time.process_time(), _machine_cpu()
        calls_before = client.calls
        elapsed, latencies, failures = await post_all(client, people, rooms, args.messages,
                                                      args.concurrency, args)
        calls = client.calls - calls_before
        client_cpu = time.process_time() - client_cpu_before
        machine_busy, machine_total = (after - before for after, before
                                       in zip(_machine_cpu(), machine_before))
        replica_cpu = sum(_process_cpu_seconds(proc) for proc in procs) - sum(cpu_before)
        with psycopg2.connect(_dsn(database_url)) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM messages")
            persisted = cursor.fetchone()[0] - before
            cursor.execute("SELECT room_id, count(*), max(seq), count(DISTINCT seq) FROM messages "
                           "GROUP BY room_id")
            gap_free = all(count == top == distinct for _, count, top, distinct in cursor.fetchall())
        events_seen, announced, distinct = await events.count_and_close()
        rate = persisted / elapsed
        print(f"replicas               {args.replicas}")
        print(f"messages posted        {args.messages} over {args.rooms} rooms, "
              + (f"open loop at {args.rate:g}/s, " if args.rate else f"{args.concurrency} in flight, ")
              + ("one post_message call each" if args.unbatched else
                 f"batched as the gateway does ({args.batches_in_flight} calls in flight, "
                 f"{args.partial_in_flight} of them partial)"))
        print(f"messages persisted     {persisted} in {elapsed:.2f} s"
              + (f"  (failures: {failures})" if failures else ""))
        print(f"throughput             {rate:.0f} msg/s total, {rate / args.replicas:.0f} msg/s per replica")
        if latencies:
            print(f"latency p50/p95/p99    {percentile(latencies, .5) * 1000:.1f} / "
                  f"{percentile(latencies, .95) * 1000:.1f} / {percentile(latencies, .99) * 1000:.1f} ms"
                  f"  (mean {statistics.fmean(latencies) * 1000:.1f} ms)")
        if calls:
            print(f"calls to rooms         {calls} ({args.messages / calls:.1f} posts per call)")
        print(f"seq gap-free per room  {'yes' if gap_free else 'NO'}")
        print(f"messages_posted events {events_seen}, announcing {announced} messages (each "
              f"persisted message once: {'yes' if announced == distinct == persisted else 'NO'})")
        # Where the machine's CPU went: the replicas, this client, and everything together
        # (RabbitMQ, PostgreSQL, anything else running). A replica can serve at most about
        # 1 / (its CPU per message) messages per second on a core of its own.
        if persisted:
            per_message = replica_cpu / persisted
            print(f"replica CPU            {per_message * 1000:.2f} ms per message "
                  f"(~{1 / per_message:.0f} msg/s on a whole core of its own)")
            print(f"bench client CPU       {client_cpu / persisted * 1000:.2f} ms per message")
        if machine_total:
            print(f"machine CPU busy       {100 * machine_busy / machine_total:.0f}% of "
                  f"{_cores()} cores during the run")
        return 0 if persisted == args.messages == events_seen and gap_free else 1
    finally:
        await client.close()
        for proc in procs:
            proc.stop()


def _process_cpu_seconds(proc: Proc) -> float:
    """user + system CPU time of a replica (Linux /proc)."""
    try:
        fields = Path(f"/proc/{proc.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, AttributeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot (Linux /proc/stat)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0, 0
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def _cores() -> int:
    return os.cpu_count() or 1


def _dsn(database_url: str) -> str:
    parts = urlsplit(database_url)
    return f"postgresql://{parts.netloc}{parts.path}"


if __name__ == "__main__":
    sys.exit(asyncio.run(bench(parse_args())))
