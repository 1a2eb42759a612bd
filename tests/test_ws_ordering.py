"""Live ``message`` frames reach every socket in seq order, with no gaps, while two rooms
replicas publish a room's events concurrently (their events race to the gateways), and the
gateway's RoomSequencer (parley_gateway/ordering.py) holds, fills and drops as it should."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from helpers import auth_headers, new_user, next_frame, unique, ws_url
from parley_common.testing import Proc, queue_consumers, wait_until
from parley_gateway.ordering import RoomSequencer

SENDERS = 8
PER_SENDER = 25  # below the per-user ws send budget (30 per 10 s)


@pytest.fixture
def second_rooms_replica(suite):
    """A second rooms process on the suite's database: both consume rpc-rooms."""
    first = suite.procs["rooms"]
    proc = Proc("rooms-2", "parley_rooms", {**first.env, "INSTANCE_ID": "rooms-2"},
                suite.isolation.workdir).start()
    try:
        wait_until(lambda: queue_consumers(suite.isolation.amqp_uri, "rpc-rooms") >= 2, 60,
                   what="rooms-2 consuming rpc-rooms", proc=proc)
        yield proc
    finally:
        proc.stop()


async def _collect(ws, stop: asyncio.Event, seen: list, acked: set):
    while not stop.is_set():
        try:
            msg = await asyncio.wait_for(ws.receive(), 0.5)
        except asyncio.TimeoutError:
            continue
        if msg.type != aiohttp.WSMsgType.TEXT:
            return
        frame = json.loads(msg.data)
        if frame["type"] == "message":
            seen.append(frame["message"]["seq"])
        elif frame["type"] == "ack":
            acked.add(frame["message"]["seq"])


async def test_two_rooms_replicas_deliver_in_seq_order(suite, http, second_rooms_replica):
    owner = await new_user(http, suite.url)
    reply = await owner.post("/api/v1/rooms", {"name": unique("order"), "kind": "public"})
    assert reply.status == 201, reply
    room_id = reply.body["room"]["id"]
    users = [await new_user(http, suite.gateway_urls[i % 2]) for i in range(SENDERS)]
    for user in users:
        assert (await user.post(f"/api/v1/rooms/{room_id}/join")).status == 200
    sockets = []
    for index, user in enumerate(users):
        ws = await http.ws_connect(ws_url(suite.gateway_urls[index % 2]),
                                   headers=auth_headers(user.token))
        await next_frame(ws, "ready")
        await ws.send_json({"type": "subscribe", "room_id": room_id, "ref": "s"})
        await next_frame(ws, "subscribed", ref="s")
        sockets.append(ws)
    stop = asyncio.Event()
    seen = [[] for _ in sockets]
    acked = [set() for _ in sockets]
    readers = [asyncio.create_task(_collect(ws, stop, seen[i], acked[i]))
               for i, ws in enumerate(sockets)]

    async def send_all(index: int, ws) -> None:
        for n in range(PER_SENDER):
            await ws.send_json({"type": "send", "room_id": room_id, "text": f"m{n}",
                                "client_id": f"c{index}-{n}"})
            await asyncio.sleep(0.01)

    await asyncio.gather(*(send_all(i, ws) for i, ws in enumerate(sockets)))
    total = SENDERS * PER_SENDER
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            if all(len(set(s) | a) >= total for s, a in zip(seen, acked)):
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.gather(*readers)
        for ws in sockets:
            await ws.close()
    for index, (frames, own) in enumerate(zip(seen, acked)):
        # In order, no duplicates: a strictly increasing sequence of seqs.
        assert all(a < b for a, b in zip(frames, frames[1:])), \
            f"socket {index} saw out of order: {frames}"
        # No gaps: what came as message frames plus this socket's own acks is every seq.
        assert set(frames) | own == set(range(1, total + 1)), \
            f"socket {index} missed {sorted(set(range(1, total + 1)) - set(frames) - own)}"


# --- the sequencer's rules, in-process ---------------------------------------------------

class Recorder:
    """RoomSequencer's callbacks: what it emitted, what history it was asked for."""

    def __init__(self, history: dict[int, dict] | None = None, fail: int = 0):
        self.emitted: list[int] = []
        self.history = history or {}
        self.fetches: list[tuple[int, int]] = []
        self.fail = fail
        self.gave_up: list[str] = []

    def emit(self, room_id, seq, message):
        assert message["seq"] == seq
        self.emitted.append(seq)

    async def fetch(self, room_id, after_seq, limit):
        self.fetches.append((after_seq, limit))
        if self.fail:
            self.fail -= 1
            raise ConnectionError("rooms away")
        return [self.history[s] for s in sorted(self.history) if s > after_seq][:limit]

    def sequencer(self, **kw) -> RoomSequencer:
        return RoomSequencer(self.emit, self.fetch, self.gave_up.append, **kw)


def msg(seq: int) -> dict:
    return {"id": f"m{seq}", "seq": seq, "room_id": "r"}


async def test_sequencer_reorders_a_race_within_the_hold_time():
    rec = Recorder()
    seq = rec.sequencer(hold_seconds=5)
    seq.baseline("r", 3)
    for n in (4, 6, 5, 7, 5, 2):  # 6 before 5, and two duplicates
        seq.offer("r", n, msg(n))
    assert rec.emitted == [4, 5, 6, 7]
    assert rec.fetches == [] and seq.rooms["r"].timer is None


async def test_sequencer_fills_a_lasting_gap_from_history():
    rec = Recorder(history={n: msg(n) for n in range(1, 20)}, fail=1)
    seq = rec.sequencer(hold_seconds=0.05)
    seq.baseline("r", 10)
    seq.offer("r", 11, msg(11))
    seq.offer("r", 15, msg(15))
    seq.offer("r", 14, msg(14))
    assert rec.emitted == [11]
    for _ in range(100):  # first fetch fails, the retry succeeds
        if rec.emitted[-1] == 15:
            break
        await asyncio.sleep(0.02)
    assert rec.emitted == [11, 12, 13, 14, 15]
    assert rec.fetches[-1] == (11, 2) and seq.filled == 2
    seq.offer("r", 16, msg(16))
    assert rec.emitted[-1] == 16


async def test_sequencer_without_baseline_starts_at_the_oldest_frame_held():
    rec = Recorder()
    seq = rec.sequencer(hold_seconds=0.05)
    seq.offer("r", 8, msg(8))
    seq.offer("r", 7, msg(7))
    await asyncio.sleep(0.15)
    assert rec.emitted == [7, 8] and rec.fetches == []


async def test_sequencer_gives_up_when_history_does_not_answer():
    rec = Recorder(fail=1000)
    seq = rec.sequencer(hold_seconds=0.02, give_up_seconds=0.2)
    seq.baseline("r", 1)
    seq.offer("r", 5, msg(5))
    for _ in range(100):
        if rec.gave_up:
            break
        await asyncio.sleep(0.05)
    assert rec.gave_up == ["r"] and "r" not in seq.rooms and rec.emitted == []


async def test_sequencer_resync_delivers_what_history_holds_past_the_last_seq():
    # After a broker outage: 3..5 were posted while this gateway's queue was gone.
    rec = Recorder(history={n: msg(n) for n in range(1, 6)})
    seq = rec.sequencer(hold_seconds=5)
    seq.baseline("r", 2)
    seq.resync("r")
    seq.offer("r", 6, msg(6))  # arrives while the resync reads history: held behind it
    for _ in range(50):
        if len(rec.emitted) == 4:
            break
        await asyncio.sleep(0.02)
    assert rec.emitted == [3, 4, 5, 6] and rec.fetches == [(2, 100)]
