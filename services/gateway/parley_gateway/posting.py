"""Message posts go to rooms in batches: `rooms.post_messages`.

Every send (WebSocket `send`, REST `POST .../messages`) waits here for its answer. A post that
finds no batch on its way to rooms leaves at once (with whatever arrived in the same turn of
the loop): at low traffic every post is a call of its own, no timer, no added latency. Posts
that arrive while a batch is out wait for it to come back and leave together in the next
batch, so under load batches grow by themselves: one RPC, one rooms worker, one database
statement and one broker confirm round are shared by many messages instead of paid by each
(the fixed cost of a batch is most of its cost: bench/RESULTS.md, "Backend levers"). Only full batches (`max_batch` posts) go out while others are still out, up to
`max_in_flight` at once: the rate at which one batch at a time would fall behind, where
parallel rooms workers and replicas help. A batch out longer than `stalled_after` (a replica
hanging on its database, say) no longer holds the others back: the next partial batch goes
anyway. Each post still gets its own answer (its message, or the error that refused it), and
every post keeps its client_id, so a retried send is as idempotent as before.
"""
from __future__ import annotations

import asyncio

from parley_common.errors import InternalError, ParleyError, Unavailable, from_body
from parley_common.limits import MAX_POSTS_PER_CALL
from parley_common.logs import get_logger
from parley_common.rpc import AsyncRpcClient

log = get_logger("parley_gateway.posting")

Waiting = tuple[dict, asyncio.Future]


class PostBatcher:
    def __init__(self, rpc: AsyncRpcClient, *, max_batch: int = MAX_POSTS_PER_CALL,
                 max_in_flight: int = 4, partial_in_flight: int = 1, stalled_after: float = 0.25,
                 max_waiting: int = 0):
        self.rpc = rpc
        # Posts allowed to wait for a batch (0 = unbounded): past it a post is refused at once
        # with 503, instead of memory and latency growing while rooms is slow or away.
        self.max_waiting = max_waiting
        self.max_batch = max_batch          # rooms takes at most MAX_POSTS_PER_CALL per call
        self.max_in_flight = max_in_flight  # full batches awaiting rooms' answer at once
        # A batch of fewer than max_batch posts leaves only while fewer than this many are out.
        self.partial_in_flight = min(partial_in_flight, max_in_flight)
        # ... unless the newest batch out has been out this long (seconds).
        self.stalled_after = stalled_after
        self._waiting: list[Waiting] = []
        self._in_flight = 0
        self._last_sent = 0.0  # loop time the newest batch left
        self._scheduled = False
        self._recheck: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()

    async def post(self, user_id: str, room_id: str, text: str, client_id: str,
                   reply_to: str | None = None) -> dict:
        """Post one message; answers rooms' `{message, created}` or raises its ParleyError."""
        if self.max_waiting and len(self._waiting) >= self.max_waiting:
            raise Unavailable("Too many messages are waiting to be stored; try again shortly.",
                              retry_after=1)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        post = {"user_id": user_id, "room_id": room_id, "text": text, "client_id": client_id}
        if reply_to is not None:
            post["reply_to"] = reply_to
        self._waiting.append((post, future))
        if not self._scheduled:
            # Not right away: the posts that arrive in this same turn of the loop join in.
            self._scheduled = True
            loop.call_soon(self._send_batches)
        return await future

    def _send_batches(self) -> None:
        self._scheduled = False
        loop = asyncio.get_running_loop()
        while self._waiting and self._in_flight < self.max_in_flight:
            if self._in_flight >= self.partial_in_flight and len(self._waiting) < self.max_batch:
                # A partial batch waits for the one out (it grows meanwhile), unless that one
                # seems stuck.
                stalled_in = self._last_sent + self.stalled_after - loop.time()
                if stalled_in > 0:
                    if self._recheck is None:
                        self._recheck = loop.call_later(stalled_in, self._recheck_stalled)
                    break
            batch = self._waiting[:self.max_batch]
            del self._waiting[:self.max_batch]
            self._in_flight += 1
            self._last_sent = loop.time()
            task = asyncio.create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _recheck_stalled(self) -> None:
        self._recheck = None
        self._send_batches()

    async def _send(self, batch: list[Waiting]) -> None:
        try:
            answers = await self.rpc.call("rooms", "post_messages", [post for post, _ in batch])
            if not isinstance(answers, list) or len(answers) != len(batch):
                log.error("post_batch_bad_answer", posts=len(batch))
                raise InternalError()
        except Exception as exc:  # the whole call failed (timeout, rooms unavailable, ...)
            if not isinstance(exc, ParleyError):  # never leave a sender waiting forever
                log.exception("post_batch_failed", posts=len(batch))
                exc = InternalError()
            for _, future in batch:
                if not future.done():
                    future.set_exception(from_body(exc.to_body()))  # one instance per waiter
        else:
            for (_, future), answer in zip(batch, answers):
                if future.done():  # the sender went away (socket closed); the post stands
                    continue
                if isinstance(answer, dict) and "message" in answer:
                    future.set_result(answer)
                else:
                    future.set_exception(from_body(answer))
        finally:
            self._in_flight -= 1
            self._send_batches()
