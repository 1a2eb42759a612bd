"""The gateway's RoomSequencer (parley_gateway/ordering.py) in-process: it holds, fills and
drops as it should (ordering end to end, with two rooms replicas: tests/test_ws_ordering.py)."""
from __future__ import annotations

import asyncio

from parley_gateway.ordering import RoomSequencer


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
