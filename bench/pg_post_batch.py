"""PostgreSQL's CPU per message of the rooms post batch alone (no broker, no services).

Starts a PRIVATE PostgreSQL (parley_common.private_servers, port --port, pinned to --cores),
migrates a rooms database, fills it as fanout.py's scenario does (--rooms public rooms x
--members members, users replicated) and posts --batches batches of --batch-size posts through
the real store (Store.post_messages on the autocommit pool, as the rooms service does), the
posts round robin over the (room, member) pairs as fanout.py sends them. After each batch the
outbox rows are released as the service releases them once the event is confirmed (the next
batch deletes them). The first --warmup batches are not measured. Prints, per message:

    pg_us        CPU of every PostgreSQL process (postmaster, backends, autovacuum, WAL
                 writer, checkpointer: /proc/<pid>/stat utime+stime+cutime+cstime)
    backend_us   CPU of the one backend that ran the batches
    client_us    wall time of the calls as this client saw them

--statements adds pg_stat_statements' top statements of the measured window (with planning
time), --explain one EXPLAIN (ANALYZE, BUFFERS) of the batch statement (rolled back).

    python bench/pg_post_batch.py --batches 400 --batch-size 40
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import closing

import psycopg2

from parley_common import db
from parley_common.ids import new_id
from parley_common.private_servers import PrivatePostgres, cpu_ticks_of
from parley_common.timeutil import utcnow
from parley_rooms.store import NewPost, Store

CLK_TCK = os.sysconf("SC_CLK_TCK")


def fill(url: str, rooms: int, members: int) -> list[tuple[str, str]]:
    """Users, public rooms and memberships; the (room, member) pairs in fanout.py's order."""
    connection = psycopg2.connect(url.replace("postgresql+psycopg2", "postgresql"))
    now = utcnow()
    made = []
    with closing(connection), connection, connection.cursor() as cursor:
        for r in range(rooms):
            room_id = new_id()
            cursor.execute("INSERT INTO rooms (id, kind, name, name_key, owner_id, created_at, "
                           "last_activity_at, last_seq) VALUES (%s, 'public', %s, %s, NULL, %s, %s, 0)",
                           (room_id, f"room {r}", f"room {r}", now, now))
            group = []
            for m in range(members):
                user_id = new_id()
                cursor.execute("INSERT INTO users (id, username, display_name, created_at, deleted) "
                               "VALUES (%s, %s, NULL, %s, false)", (user_id, f"u{r}x{m}", now))
                cursor.execute("INSERT INTO memberships (room_id, user_id, role, joined_at, "
                               "last_read_seq, muted) VALUES (%s, %s, %s, %s, 0, false)",
                               (room_id, user_id, "owner" if m == 0 else "member", now))
                group.append(user_id)
            made.append((room_id, group))
    return [(room_id, group[m]) for m in range(members) for room_id, group in made]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=15601)
    parser.add_argument("--cores", default="0", help="taskset cores of PostgreSQL (default 0)")
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=40)
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=100, help="batches not measured")
    for flag, meaning in (
            ("--statements", "pg_stat_statements' top statements of the measured window"),
            ("--explain", "EXPLAIN (ANALYZE, BUFFERS) of one batch statement, rolled back")):
        parser.add_argument(flag, action="store_true", help=meaning)
    parser.add_argument("--perf", metavar="FILE",
                        help="perf record (with call graphs) the backend during the measured "
                             "window into FILE (then: perf report -i FILE --children)")
    args = parser.parse_args()
    if args.statements:
        os.environ["PARLEY_PG_STATEMENT_STATS"] = "1"

    server = PrivatePostgres(args.port, args.cores)
    try:
        server.start()
        url = server.database("rooms_bench")
        db.migrate(url, "parley_rooms:migrations")
        pairs = fill(url, args.rooms, args.members)
        engine = db.make_engine(url, pool_size=1)
        autocommit = db.make_engine(url, pool_size=1, pre_ping=False, isolation_level="AUTOCOMMIT")
        session = db.make_sessionmaker(engine)()
        store = Store(session, lambda ids: {}, autocommit=autocommit)
        with autocommit.connect() as probe:
            backend = probe.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        tag, sent = uuid.uuid4().hex[:6], 0

        def batch() -> list[NewPost]:
            nonlocal sent
            posts = []
            for _ in range(args.batch_size):
                room_id, user_id = pairs[sent % len(pairs)]
                posts.append(NewPost(user_id=user_id, room_id=room_id, text=f"B{sent}",
                                     client_id=f"{tag}c{sent}"))
                sent += 1
            return posts

        def post(posts) -> None:
            answers, _events = store.post_messages(posts)
            assert all(isinstance(a, dict) and a["created"] for a in answers), answers[:3]
            store.outbox.release()  # the event was confirmed: the next batch deletes its rows

        for _ in range(args.warmup):
            post(batch())
        if args.statements:
            server.reset_statement_stats()
        pg_pids = server.pids()
        pg_before, backend_before = cpu_ticks_of(pg_pids), cpu_ticks_of([backend], False)
        recorder = None
        if args.perf:
            recorder = subprocess.Popen(["perf", "record", "-q", "-F", "1000", "--call-graph",
                                         "dwarf,16384", "-p", str(backend), "-o", args.perf],
                                        stdout=subprocess.DEVNULL)
            time.sleep(0.5)
        wall = 0.0
        for _ in range(args.batches):
            posts = batch()
            started = time.perf_counter()
            post(posts)
            wall += time.perf_counter() - started
        pg_after = cpu_ticks_of(server.pids())
        if recorder is not None:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(30)
        backend_after = cpu_ticks_of([backend], False)
        messages = args.batches * args.batch_size
        report = {
            "batches": args.batches, "batch_size": args.batch_size, "messages": messages,
            "pg_us_per_message": round((pg_after - pg_before) / CLK_TCK * 1e6 / messages, 1),
            "backend_us_per_message": round((backend_after - backend_before) / CLK_TCK * 1e6
                                            / messages, 1),
            "client_us_per_message": round(wall * 1e6 / messages, 1),
            "client_ms_per_batch": round(wall * 1e3 / args.batches, 2)}
        if args.statements:
            report["statements"] = server.top_statements()
        print(json.dumps(report, indent=2))
        if args.explain:
            print(explain(autocommit, store, batch()))
        session.close()
        engine.dispose()
        autocommit.dispose()
    finally:
        server.remove()
    return 0


def explain(autocommit, store: Store, posts: list[NewPost]) -> str:
    """The batch statement's (generic) plan run with a real batch's parameters, in a
    transaction rolled back."""
    from parley_rooms.store import postgres_posting

    captured = {}

    class Capture(Exception):
        pass

    def run_post_batch(_autocommit, _posts, _ids, params, _now):
        captured.update(params)
        raise Capture

    store._run_post_batch = run_post_batch
    try:
        store.post_messages(posts)
    except Capture:
        pass
    connection = autocommit.raw_connection()
    try:
        connection.autocommit = False
        with connection.cursor() as cursor:
            if not connection.info.get(postgres_posting._PREPARED):
                cursor.execute(postgres_posting._PG_PREPARE_POST_BATCH)
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) "
                           + postgres_posting._PG_EXECUTE_POST_BATCH, captured)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        connection.rollback()
    finally:
        connection.invalidate()
    return plan


if __name__ == "__main__":
    sys.exit(main())
