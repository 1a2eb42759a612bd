"""CPU of ONE post batch in the rooms process's Python, without the rest of the system.

bench/fanout.py measures a post batch inside the whole server (its py-spy samples are wall
time: on the one busy core a process preempted in a send or a query counts there). This runs
the rooms side of `post_messages` in one process, eventlet-patched as the service is, and
counts its own CPU (time.process_time) per batch:

    decode      the request body as kombu hands it to nameko (json.loads)
    service     RoomsService.post_messages with its decorators: validation, the store's
                statement (PostgreSQL's CPU is another process: not counted), the answers,
                the messages_posted event, published and confirmed (amqp.py's Dispatch.many)
                on the default exchange of a scratch vhost (so dropped)
    reply       the reply's JSON (lean_rpc.fast_json), as LeanRpcConsumer.answer encodes it

on a scratch database of the shared PostgreSQL (migrated, dropped afterwards) and a scratch
RabbitMQ vhost: ROOMS public rooms of MEMBERS members, batches of POSTS posts spread over the
rooms round robin, as the fan-out benchmark's load. ``--profile FILE`` writes cProfile stats
(CPU clock) of the measured batches.

Not counted: nameko's and kombu's own work per call (consuming the request, the worker and
its dependencies, publishing the reply, the ack) and what a busy shared core adds; the
rooms process in bench/fanout.py spends about twice this per batch. Two trees compare back
to back with PYTHONPATH pointing at the other one's services/rooms and common:

    .venv/bin/python bench/post_batch_cpu.py --batches 300 --posts 45
    PYTHONPATH=/tmp/base/services/rooms:/tmp/base/common .venv/bin/python bench/post_batch_cpu.py
"""
import parley_common.green  # noqa: F401,I001  (eventlet patching first, as in the service)

import argparse
import cProfile
import json
import statistics
import time
import uuid

from parley_common import db
from parley_common.lean_rpc import fast_json
from parley_common.testing import LOCAL_AMQP, LOCAL_POSTGRES, LOCAL_REDIS, Servers
from parley_rooms.amqp import ConfirmingChannels, Dispatch
from parley_rooms.service import RoomsService
from parley_rooms.store import Store


class QuietLog:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--posts", type=int, default=45)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--profile", help="write cProfile stats (CPU clock) here")
    args = parser.parse_args()

    servers = Servers(LOCAL_AMQP, LOCAL_POSTGRES, LOCAL_REDIS)
    scratch = f"parley_postcpu_{uuid.uuid4().hex[:8]}"
    url = servers.create_database(scratch)
    amqp_uri = servers.create_vhost(scratch)
    try:
        run(args, url, amqp_uri)
    finally:
        servers.drop_database(scratch)
        servers.delete_vhost(scratch)


def run(args, url: str, amqp_uri: str) -> None:
    db.migrate(url, "parley_rooms:migrations")
    engine = db.make_engine(url)
    autocommit = db.make_engine(url, pre_ping=False, isolation_level="AUTOCOMMIT")
    store = Store(db.make_sessionmaker(engine)(), lambda ids: {}, autocommit=autocommit)

    rooms = []
    for r in range(args.rooms):
        members = [{"id": uuid.uuid4().hex, "username": f"u{r}x{m}", "display_name": f"U {r} {m}"}
                   for m in range(args.members)]
        for user in members:
            store.replicate_user(user)
        room, _, _ = store.create_room(members[0]["id"], f"room-{r}", "public", "",
                                       [user["id"] for user in members[1:]])
        rooms.append((room["id"], [user["id"] for user in members]))

    service = RoomsService()
    service.store, service.log = store, QuietLog()
    channels = ConfirmingChannels(amqp_uri)
    service.dispatch = Dispatch(channels, "", {"nameko.call_id_stack": ["gateway.post.1"]})
    post_messages = RoomsService.post_messages  # the service's method with its decorators

    counter = iter(range(10**9))

    def request_body() -> bytes:
        posts = []
        for _ in range(args.posts):
            n = next(counter)
            room_id, member_ids = rooms[n % len(rooms)]
            posts.append({"user_id": member_ids[(n // len(rooms)) % len(member_ids)],
                          "room_id": room_id, "text": f"B{n}", "client_id": f"c{n}"})
        return json.dumps({"args": [posts], "kwargs": {}}).encode()

    parts = {"decode": [], "service": [], "reply": [], "total": []}
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    for index in range(args.warmup + args.batches):
        body = request_body()
        measured = index >= args.warmup
        if measured and profiler:
            profiler.enable()
        t0 = time.process_time()
        request = json.loads(body)
        t1 = time.process_time()
        answers = post_messages(service, *request["args"], **request["kwargs"])
        t2 = time.process_time()
        fast_json({"result": answers, "error": None})
        t3 = time.process_time()
        if measured and profiler:
            profiler.disable()
        if measured:
            for name, spent in (("decode", t1 - t0), ("service", t2 - t1), ("reply", t3 - t2),
                                ("total", t3 - t0)):
                parts[name].append(spent * 1e6)
        assert all("message" in answer and answer["created"] for answer in answers), answers[:1]
    channels.close()
    autocommit.dispose()
    engine.dispose()

    print(json.dumps({"posts_per_batch": args.posts, "batches": args.batches,
                      "cpu_us_per_batch": {name: round(statistics.mean(values), 1)
                                           for name, values in parts.items()},
                      "cpu_us_per_batch_median": round(statistics.median(parts["total"]), 1),
                      "cpu_us_per_post": round(statistics.mean(parts["total"]) / args.posts, 1)}))
    if profiler:
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
