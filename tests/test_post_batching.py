"""The gateway's PostBatcher against the suite's real rooms service: concurrent posts share
rooms.post_messages calls, each post still gets its own answer or its own error, and a
failed call fails exactly the posts it carried."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from helpers import new_user, unique
from parley_common.errors import NotFound, Unavailable, ValidationFailed
from parley_common.rpc import AsyncRpcClient
from parley_gateway.posting import PostBatcher


class RecordingClient(AsyncRpcClient):
    """The real RPC client, remembering how many posts each post_messages call carried."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []

    async def call(self, service, method, *args, **kwargs):
        if method == "post_messages":
            self.batches.append(len(args[0]))
        return await super().call(service, method, *args, **kwargs)


@pytest.fixture
async def rpc(suite):
    client = RecordingClient(suite.isolation.amqp_uri, caller="batcher-test", timeout=10)
    await client.start()
    yield client
    await client.close()


async def room_with_members(http, suite, members: int = 1):
    owner = await new_user(http, suite.url)
    others = [await new_user(http, suite.url) for _ in range(members)]
    reply = await owner.post("/api/v1/rooms", {"name": unique("batch"), "kind": "private",
                                               "member_ids": [other.id for other in others]})
    assert reply.status == 201, reply
    return owner, others, reply.body["room"]


async def test_posts_of_one_moment_share_one_call_and_keep_their_order(suite, http, rpc):
    owner, (member,), room = await room_with_members(http, suite)
    batcher = PostBatcher(rpc)
    authors = [owner, member]
    answers = await asyncio.gather(*(
        batcher.post(authors[index % 2].id, room["id"], f"message {index}", f"c-{index}")
        for index in range(30)))
    assert rpc.batches == [30]
    assert [answer["message"]["seq"] for answer in answers] == list(range(1, 31))
    assert all(answer["created"] for answer in answers)
    assert [answer["message"]["text"] for answer in answers] == [f"message {i}" for i in range(30)]
    history = await owner.get(f"/api/v1/rooms/{room['id']}/messages?limit=100")
    assert [m["seq"] for m in history.body["messages"]] == list(range(1, 31))


async def test_posts_wait_while_the_calls_in_flight_are_out(suite, http, rpc):
    owner, _, room = await room_with_members(http, suite)
    batcher = PostBatcher(rpc, max_in_flight=1)
    first = [asyncio.ensure_future(batcher.post(owner.id, room["id"], f"a{i}", f"a{i}"))
             for i in range(5)]
    await asyncio.sleep(0)  # the first batch leaves on this turn of the loop
    second = [asyncio.ensure_future(batcher.post(owner.id, room["id"], f"b{i}", f"b{i}"))
              for i in range(7)]
    answers = await asyncio.gather(*first, *second)
    assert rpc.batches == [5, 7]
    assert [answer["message"]["seq"] for answer in answers] == list(range(1, 13))
    # the same with the default max_in_flight: a partial batch waits for the one out (it grows
    # meanwhile) instead of a second call carrying a few posts
    rpc.batches.clear()
    default = PostBatcher(rpc)
    first = [asyncio.ensure_future(default.post(owner.id, room["id"], f"d{i}", f"d{i}"))
             for i in range(3)]
    await asyncio.sleep(0)
    second = [asyncio.ensure_future(default.post(owner.id, room["id"], f"e{i}", f"e{i}"))
              for i in range(4)]
    await asyncio.sleep(0)
    third = [asyncio.ensure_future(default.post(owner.id, room["id"], f"f{i}", f"f{i}"))
             for i in range(2)]
    answers = await asyncio.gather(*first, *second, *third)
    assert rpc.batches == [3, 6]
    assert [answer["message"]["seq"] for answer in answers] == list(range(13, 22))
    # and a batch never exceeds max_batch; full batches go out side by side
    capped = PostBatcher(rpc, max_batch=4)
    rpc.batches.clear()
    await asyncio.gather(*(capped.post(owner.id, room["id"], f"c{i}", f"c{i}") for i in range(10)))
    assert sorted(rpc.batches) == [2, 4, 4]


async def test_a_stalled_call_does_not_hold_the_next_posts_back(suite, http, rpc):
    owner, _, room = await room_with_members(http, suite)
    stalled = asyncio.Event()

    class SlowFirstCall(RecordingClient):
        async def call(self, service, method, *args, **kwargs):
            if not stalled.is_set():  # the first call hangs (a replica stuck on its database)
                stalled.set()
                await asyncio.sleep(1.5)
            return await super().call(service, method, *args, **kwargs)

    slow = SlowFirstCall(suite.isolation.amqp_uri, caller="batcher-stall-test", timeout=10)
    await slow.start()
    try:
        batcher = PostBatcher(slow, stalled_after=0.2)
        first = asyncio.ensure_future(batcher.post(owner.id, room["id"], "stuck", "s-1"))
        await stalled.wait()
        second = await batcher.post(owner.id, room["id"], "not held back", "s-2")
        # answered while the stuck call is still out: it left after stalled_after, not after it
        assert not first.done() and second["created"]
        assert (await first)["created"]
        assert slow.batches == [1, 1]
    finally:
        await slow.close()


async def test_each_post_gets_its_own_answer_or_error(suite, http, rpc):
    owner, (member,), room = await room_with_members(http, suite)
    stranger = await new_user(http, suite.url)
    batcher = PostBatcher(rpc)
    ok, hidden, empty, repeat, again = await asyncio.gather(
        batcher.post(member.id, room["id"], "hello", "same-id"),
        batcher.post(stranger.id, room["id"], "let me in", uuid.uuid4().hex),
        batcher.post(owner.id, room["id"], "   ", uuid.uuid4().hex),
        batcher.post(member.id, room["id"], "hello", "same-id"),
        batcher.post(owner.id, room["id"], "fine", uuid.uuid4().hex),
        return_exceptions=True)
    assert rpc.batches == [5]
    assert ok["created"] is True and ok["message"]["seq"] == 1
    assert isinstance(hidden, NotFound)
    assert isinstance(empty, ValidationFailed) and set(empty.details) == {"text"}
    assert repeat == {"message": ok["message"], "created": False}
    assert again["created"] is True and again["message"]["seq"] == 2


async def test_a_call_nobody_answers_fails_its_posts_and_the_batcher_goes_on(isolation):
    # A vhost with no rooms service: every call times out.
    with isolation.child("no-rooms") as empty:
        client = RecordingClient(empty.amqp_uri, caller="batcher-test", timeout=0.5)
        await client.start()
        try:
            batcher = PostBatcher(client, max_in_flight=1)
            results = await asyncio.gather(*(batcher.post("u", "r", "hi", f"c{i}")
                                             for i in range(3)), return_exceptions=True)
            assert all(isinstance(result, Unavailable) for result in results)
            assert len({id(result) for result in results}) == 3  # one exception per waiter
            later = await asyncio.gather(batcher.post("u", "r", "hi", "c9"),
                                         return_exceptions=True)
            assert isinstance(later[0], Unavailable) and client.batches == [3, 1]
        finally:
            await client.close()


async def test_replies_in_one_batch_each_checked_and_quoted(suite, http, rpc):
    """reply_to through the batched PostgreSQL statement: replies and plain posts of one moment
    share a call; a reply to a message of another room is refused alone; a repeat answers the
    first message with its quote."""
    owner, (member,), room = await room_with_members(http, suite)
    _, _, other_room = await room_with_members(http, suite)
    batcher = PostBatcher(rpc)
    original = await batcher.post(owner.id, room["id"], "original", "o-1")
    foreign = await batcher.post(other_room["owner_id"], other_room["id"], "elsewhere", "f-1")
    rpc.batches.clear()
    results = await asyncio.gather(
        batcher.post(member.id, room["id"], "reply 1", "r-1",
                     reply_to=original["message"]["id"]),
        batcher.post(owner.id, room["id"], "plain", "p-1"),
        batcher.post(member.id, room["id"], "wrong room", "r-2",
                     reply_to=foreign["message"]["id"]),
        batcher.post(member.id, room["id"], "reply 1", "r-1",
                     reply_to=original["message"]["id"]),
        return_exceptions=True)
    assert rpc.batches == [4]
    first, plain, wrong, repeat = results
    assert first["created"] and first["message"]["seq"] == 2
    assert first["message"]["reply_to"] == {
        "id": original["message"]["id"], "seq": 1, "excerpt": "original", "deleted": False,
        "author": original["message"]["author"]}
    assert plain["message"]["reply_to"] is None and plain["message"]["seq"] == 3
    assert isinstance(wrong, ValidationFailed) and "reply_to" in wrong.details
    assert repeat == {"message": first["message"], "created": False}
    history = await owner.get(f"/api/v1/rooms/{room['id']}/messages")
    assert [m["reply_to"] and m["reply_to"]["id"] for m in history.body["messages"]] == [
        None, original["message"]["id"], None]
