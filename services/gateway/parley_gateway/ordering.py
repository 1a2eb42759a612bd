"""Per-room seq order of live ``message`` frames at one gateway.

Several rooms replicas publish ``message_posted`` independently, so a gateway can receive seq
8 before seq 7 of the same room, and a gateway that lost its event queue (broker outage) never
receives some seqs at all. A client that saw 8 before 7, or never saw 7, and resumes from the
highest seq it has seen skips messages for good. So every room's message frames pass through a
:class:`RoomSequencer` on their way to the sockets:

- the next expected seq (last delivered + 1) goes out at once, followed by any held frames
  that are now contiguous;
- a frame ahead of the next expected seq is held for at most ``hold_seconds`` (the events of
  two replicas race by milliseconds), one timer per room with a gap, never one per message;
- a gap that does not close by itself is filled from the room's history
  (``rooms.list_messages after_seq``), retried with back-off while rooms does not answer;
- a seq at or below the last delivered one is a duplicate (at-least-once delivery) and dropped.

Nothing is ever delivered out of order or skipped. If a gap cannot be filled for
``give_up_seconds`` (rooms is down) or too many frames pile up, the room's subscribers are told
to resume (``give_up``: the gateway closes them with 1013, they reconnect with ``after_seq``)
and the room's state is forgotten. The baseline of a room comes from the ``last_seq`` that a
``subscribe`` reply carries (:meth:`baseline`); a room nobody here subscribes to has no state.

The cost per in-order message is a dict lookup and a comparison.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

from parley_common.logs import get_logger

log = get_logger("parley_gateway.ordering")

DEFAULT_HOLD_SECONDS = 0.3
GIVE_UP_SECONDS = 30.0
MAX_HELD = 5000  # held frames per room before we give up and let clients resume
FILL_PAGE = 100
MAX_RETRY_DELAY = 3.0

# emit(room_id, seq, item): deliver one message; item is what offer() got, or a history message
Emit = Callable[[str, int, Any], None]
# fetch(room_id, after_seq, limit) -> messages with seq > after_seq, ascending (history)
Fetch = Callable[[str, int, int], Awaitable[list]]


class _Room:
    __slots__ = ("last", "held", "timer", "filling", "since", "failures")

    def __init__(self, last: int | None):
        self.last = last  # the last seq delivered (None: no baseline yet)
        self.held: dict[int, Any] = {}
        self.timer: asyncio.TimerHandle | None = None
        self.filling = False
        self.since = 0.0  # monotonic time the oldest unfilled gap opened
        self.failures = 0


class RoomSequencer:
    def __init__(self, emit: Emit, fetch: Fetch, give_up: Callable[[str], None], *,
                 hold_seconds: float = DEFAULT_HOLD_SECONDS,
                 give_up_seconds: float = GIVE_UP_SECONDS, max_held: int = MAX_HELD):
        self.emit = emit
        self.fetch = fetch
        self.give_up = give_up
        self.hold_seconds = hold_seconds
        self.give_up_seconds = give_up_seconds
        self.max_held = max_held
        self.rooms: dict[str, _Room] = {}
        self.filled = 0  # messages taken from history to close gaps (metrics, tests)

    # --- the interface ----------------------------------------------------------------
    def offer(self, room_id: str, seq: int, item: Any) -> None:
        """A live message of ``room_id``: deliver it now, hold it, or drop a duplicate."""
        room = self.rooms.get(room_id)
        if room is None:
            room = self.rooms[room_id] = _Room(None)
        last = room.last
        if last is not None:
            if seq == last + 1 and not room.held:
                room.last = seq
                self.emit(room_id, seq, item)
                return
            if seq <= last:
                return  # a duplicate delivery, or already filled from history
        room.held[seq] = item
        self._drain(room_id, room)
        if room.held:
            if len(room.held) > self.max_held:
                self._abandon(room_id, "too many held")
            elif room.timer is None and not room.filling:
                room.since = time.monotonic()
                room.timer = asyncio.get_running_loop().call_later(
                    self.hold_seconds, self._gap_timeout, room_id)

    def baseline(self, room_id: str, last_seq: int | None) -> None:
        """The room's last_seq as a subscribe reply told it: live frames start after it.
        Only sets a room that has no baseline yet (a known room keeps its own count)."""
        if last_seq is None:
            return
        room = self.rooms.get(room_id)
        if room is None:
            self.rooms[room_id] = _Room(last_seq)
        elif room.last is None:
            room.last = last_seq
            for seq in [s for s in room.held if s <= last_seq]:
                del room.held[seq]
            self._drain(room_id, room)

    def resync(self, room_id: str, attempts: int = 5) -> None:
        """Events may have been lost (this gateway's event queue went away with the broker):
        deliver whatever history holds past the last delivered seq, without waiting for the
        room's next message to reveal the gap."""
        room = self.rooms.get(room_id)
        if room is None or room.last is None or room.filling:
            return
        room.filling = True
        asyncio.get_running_loop().create_task(self._catch_up(room_id, room, attempts),
                                               name=f"order-resync-{room_id}")

    def forget(self, room_id: str) -> None:
        """Nobody here subscribes to the room any more: drop its state."""
        room = self.rooms.pop(room_id, None)
        if room is not None and room.timer is not None:
            room.timer.cancel()

    def close(self) -> None:
        for room_id in list(self.rooms):
            self.forget(room_id)

    # --- internals ----------------------------------------------------------------------
    def _drain(self, room_id: str, room: _Room) -> None:
        held = room.held
        if room.last is None:
            return
        while held:
            item = held.pop(room.last + 1, None)
            if item is None:
                break
            room.last += 1
            self.emit(room_id, room.last, item)
        if not held and room.timer is not None:
            room.timer.cancel()
            room.timer = None

    def _gap_timeout(self, room_id: str) -> None:
        room = self.rooms.get(room_id)
        if room is None:
            return
        room.timer = None
        if not room.held or room.filling:
            return
        if room.last is None:
            # No subscribe reply gave a baseline in time: start at the oldest frame we hold.
            room.last = min(room.held) - 1
            self._drain(room_id, room)
            if not room.held:
                return
        room.filling = True
        asyncio.get_running_loop().create_task(self._fill(room_id, room),
                                               name=f"order-fill-{room_id}")

    async def _fill(self, room_id: str, room: _Room) -> None:
        """Deliver the missing seqs from history, then whatever is held behind them."""
        try:
            while room.held and self.rooms.get(room_id) is room:
                want = min(room.held)
                if want <= room.last:  # delivered meanwhile (never expected; never loop on it)
                    del room.held[want]
                    continue
                if want == room.last + 1:
                    self._drain(room_id, room)
                    continue
                messages = await self.fetch(room_id, room.last,
                                            min(FILL_PAGE, want - room.last - 1))
                if self.rooms.get(room_id) is not room:
                    return
                if not self._deliver_history(room_id, room, messages):
                    raise LookupError(f"history has nothing after seq {room.last}")
            room.failures = 0
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            room.failures += 1
            if time.monotonic() - room.since > self.give_up_seconds:
                room.filling = False
                self._abandon(room_id, f"gap not filled: {exc!r}")
                return
            delay = min(self.hold_seconds * (2 ** room.failures), MAX_RETRY_DELAY)
            log.warning("order_gap_fill_failed", room_id=room_id, after_seq=room.last,
                        error=repr(exc), retry_in=delay)
            if self.rooms.get(room_id) is room:
                room.timer = asyncio.get_running_loop().call_later(
                    delay, self._gap_timeout, room_id)
        finally:
            room.filling = False

    async def _catch_up(self, room_id: str, room: _Room, attempts: int) -> None:
        try:
            while self.rooms.get(room_id) is room:
                messages = await self.fetch(room_id, room.last, FILL_PAGE)
                if self.rooms.get(room_id) is not room:
                    return
                self._deliver_history(room_id, room, messages)
                if len(messages or ()) < FILL_PAGE:
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("order_resync_failed", room_id=room_id, error=repr(exc),
                        attempts_left=attempts - 1)
            if attempts > 1:
                asyncio.get_running_loop().call_later(
                    MAX_RETRY_DELAY, lambda: self.resync(room_id, attempts - 1))
        finally:
            room.filling = False
        if room.held and room.timer is None and self.rooms.get(room_id) is room:
            room.since = time.monotonic()
            room.timer = asyncio.get_running_loop().call_later(
                self.hold_seconds, self._gap_timeout, room_id)

    def _deliver_history(self, room_id: str, room: _Room, messages) -> bool:
        """Emit the history messages that continue the room's seq, then what is held behind
        them; whether any did."""
        progressed = False
        for message in messages or ():
            seq = message.get("seq") if isinstance(message, dict) else None
            if not isinstance(seq, int) or seq != room.last + 1:
                continue
            item = room.held.pop(seq, None)
            room.last = seq
            self.filled += item is None
            self.emit(room_id, seq, item if item is not None else message)
            progressed = True
        self._drain(room_id, room)
        return progressed

    def _abandon(self, room_id: str, why: str) -> None:
        log.warning("order_gap_abandoned", room_id=room_id, why=why)
        self.forget(room_id)
        self.give_up(room_id)
