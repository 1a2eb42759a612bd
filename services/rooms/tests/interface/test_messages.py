"""Messages: gap-free seq across replicas, idempotent posts, history pages, edit/delete,
read state and unread counts."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from parley_common.errors import ValidationFailed
from parley_common.testing import queue_consumers


async def test_seq_is_gap_free_across_three_replicas(rooms):
    """600 posts from 60 concurrent callers to two rooms, served by 3 replicas on one PG:
    per room exactly 1..N, no gap, no duplicate."""
    assert len(rooms.procs) == 3 and all(proc.alive() for proc in rooms.procs)
    owner, a, b = await rooms.user(), await rooms.user(), await rooms.user()
    first = await rooms.room(owner, members=[a, b])
    second = await rooms.room(owner, kind="public", members=[a, b])
    authors = [owner, a, b]
    gate = asyncio.Semaphore(60)

    async def post(index: int):
        async with gate:
            room = first if index % 2 else second
            return await rooms.post(authors[index % 3], room, f"message {index}")

    posted = await asyncio.gather(*(post(index) for index in range(600)))
    for room in (first, second):
        seqs = sorted(message["seq"] for message in posted if message["room_id"] == room["id"])
        assert seqs == list(range(1, 301))
        stored = [seq for (seq,) in rooms.sql(
            "SELECT seq FROM messages WHERE room_id = %s ORDER BY seq", room["id"])]
        assert stored == list(range(1, 301))
        assert (await rooms.call("get_room", owner["id"], room["id"]))["last_seq"] == 300
    # Three replicas consumed rpc-rooms throughout; each holds at most MAX_WORKERS (10)
    # unacknowledged requests, so 60 concurrent callers kept every replica busy.
    assert queue_consumers(rooms.amqp_uri, "rpc-rooms") == 3
    assert all(proc.alive() for proc in rooms.procs)


async def test_same_client_id_gives_one_message_concurrently_and_later(rooms):
    author, other = await rooms.user(), await rooms.user()
    room = await rooms.room(author, members=[other])
    client_id = "retry-" + uuid.uuid4().hex
    replies = await asyncio.gather(*(
        rooms.call("post_message", author["id"], room["id"], "only once", client_id)
        for _ in range(10)))
    assert len({reply["message"]["id"] for reply in replies}) == 1
    assert sum(reply["created"] for reply in replies) == 1
    again = await rooms.call("post_message", author["id"], room["id"], "only once", client_id)
    assert again["created"] is False and again["message"]["id"] == replies[0]["message"]["id"]
    assert again["message"]["seq"] == 1
    # the same client_id from someone else is a different message
    theirs = await rooms.call("post_message", other["id"], room["id"], "mine", client_id)
    assert theirs["created"] is True and theirs["message"]["seq"] == 2
    assert rooms.sql("SELECT count(*) FROM messages WHERE room_id = %s", room["id"]) == [(2,)]
    await rooms.events.wait_for_posted(lambda p: p["message"]["room_id"] == room["id"], count=2)
    await asyncio.sleep(0.5)  # a late duplicate event would arrive by now
    posted = rooms.events.posted(lambda p: p["message"]["room_id"] == room["id"])
    assert len(posted) == 2
    assert sorted(posted[0]["member_ids"]) == sorted([author["id"], other["id"]])


async def test_message_shape_and_text_rules(rooms):
    author = await rooms.user("shape_author")
    room = await rooms.room(author)
    reply = await rooms.call("post_message", author["id"], room["id"], "  padded  ", "c1")
    message = reply["message"]
    assert reply["created"] is True
    assert set(message) == {"id", "room_id", "seq", "author", "text", "client_id", "created_at",
                            "edited_at", "deleted", "mentions", "reply_to", "reactions"}
    assert message["text"] == "padded"
    assert message["author"] == {"id": author["id"], "username": "shape_author",
                                 "display_name": "Shape_Author"}
    assert message["created_at"].endswith("Z") and message["edited_at"] is None
    assert message["deleted"] is False
    assert (await rooms.post(author, room, "x" * 4000))["seq"] == 2
    for text, client_id, fields in (("   ", "c2", {"text"}), ("x" * 4001, "c3", {"text"}),
                                    (7, "c4", {"text"}), ("ok", "", {"client_id"}),
                                    ("ok", "c" * 65, {"client_id"}), ("", None, {"text", "client_id"})):
        error = await rooms.error("post_message", author["id"], room["id"], text, client_id)
        assert error.code == "validation_failed" and set(error.details) == fields
    error = await rooms.error("post_message", 5, room["id"], "ok", "c5")
    assert error.code == "validation_failed" and "user_id" in error.details


async def test_history_pages(rooms):
    author = await rooms.user()
    room = await rooms.room(author)
    empty = await rooms.call("list_messages", author["id"], room["id"])
    assert empty == {"messages": [], "has_more": False, "last_seq": 0}
    for index in range(7):
        await rooms.post(author, room, f"m{index + 1}")

    def seqs(page):
        return [message["seq"] for message in page["messages"]]

    newest = await rooms.call("list_messages", author["id"], room["id"], limit=3)
    assert seqs(newest) == [5, 6, 7] and newest["has_more"] is True
    older = await rooms.call("list_messages", author["id"], room["id"], before_seq=5, limit=3)
    assert seqs(older) == [2, 3, 4] and older["has_more"] is True
    assert older["last_seq"] == newest["last_seq"] == 7  # the room's newest, whatever the page
    oldest = await rooms.call("list_messages", author["id"], room["id"], before_seq=2, limit=3)
    assert seqs(oldest) == [1] and oldest["has_more"] is False
    nothing = await rooms.call("list_messages", author["id"], room["id"], before_seq=1)
    assert nothing == {"messages": [], "has_more": False, "last_seq": 7}
    exactly = await rooms.call("list_messages", author["id"], room["id"], limit=7)
    assert seqs(exactly) == [1, 2, 3, 4, 5, 6, 7] and exactly["has_more"] is False
    newer = await rooms.call("list_messages", author["id"], room["id"], after_seq=2, limit=3)
    assert seqs(newer) == [3, 4, 5] and newer["has_more"] is True
    tail = await rooms.call("list_messages", author["id"], room["id"], after_seq=4, limit=3)
    assert seqs(tail) == [5, 6, 7] and tail["has_more"] is False
    past_end = await rooms.call("list_messages", author["id"], room["id"], after_seq=7)
    assert past_end == {"messages": [], "has_more": False, "last_seq": 7}
    for kwargs, field in (({"limit": 0}, "limit"), ({"limit": 101}, "limit"),
                          ({"limit": "5"}, "limit"), ({"before_seq": 0}, "before_seq"),
                          ({"after_seq": -1}, "after_seq"),
                          ({"before_seq": 3, "after_seq": 1}, "before_seq")):
        error = await rooms.error("list_messages", author["id"], room["id"], **kwargs)
        assert error.code == "validation_failed" and field in error.details


async def test_edit_and_delete(rooms):
    owner, author, other = await rooms.user(), await rooms.user(), await rooms.user()
    room = await rooms.room(owner, members=[author, other])
    message = await rooms.post(author, room, "first draft")
    edited = await rooms.call("edit_message", author["id"], room["id"], message["id"], "second draft")
    assert edited["text"] == "second draft" and edited["edited_at"] is not None
    assert edited["seq"] == message["seq"]
    await rooms.events.wait_for("message_edited", lambda p: p["message"]["id"] == message["id"])
    assert (await rooms.error("edit_message", other["id"], room["id"], message["id"], "hijack")).code == "forbidden"
    assert (await rooms.error("edit_message", owner["id"], room["id"], message["id"], "owner")).code == "forbidden"
    assert (await rooms.error("delete_message", other["id"], room["id"], message["id"])).code == "forbidden"
    assert (await rooms.error("edit_message", author["id"], room["id"], "nope", "x")).code == "not_found"
    # the author deletes; a second delete is a no-op with no second event
    assert await rooms.call("delete_message", author["id"], room["id"], message["id"]) is None
    assert await rooms.call("delete_message", author["id"], room["id"], message["id"]) is None
    tombstone = (await rooms.call("list_messages", owner["id"], room["id"]))["messages"][0]
    assert tombstone["id"] == message["id"] and tombstone["seq"] == message["seq"]
    assert tombstone["deleted"] is True and tombstone["text"] == ""
    assert (await rooms.error("edit_message", author["id"], room["id"], message["id"], "revive")).code == "conflict"
    deleted = await rooms.events.wait_for("message_deleted", lambda p: p["message_id"] == message["id"])
    assert deleted[0]["seq"] == message["seq"] and set(deleted[0]["member_ids"]) == {
        owner["id"], author["id"], other["id"]}
    await asyncio.sleep(0.3)
    assert len(rooms.events.of("message_deleted", lambda p: p["message_id"] == message["id"])) == 1
    # the room's owner may delete anyone's message
    another = await rooms.post(other, room, "rude")
    assert await rooms.call("delete_message", owner["id"], room["id"], another["id"]) is None


async def test_unread_and_read_arithmetic(rooms):
    alice, bob = await rooms.user(), await rooms.user()
    room = await rooms.room(alice, members=[bob])
    await rooms.post(alice, room, "a1")                       # seq 1
    bob_messages = [await rooms.post(bob, room, f"b{n}") for n in (2, 3, 4)]  # seq 2..4

    async def conversation(user):
        page = await rooms.call("list_conversations", user["id"])
        return next(c for c in page["conversations"] if c["room"]["id"] == room["id"])

    assert (await conversation(alice))["unread_count"] == 3   # her own message is not unread
    assert (await conversation(bob))["unread_count"] == 0     # posting reads up to your own
    await rooms.call("delete_message", bob["id"], room["id"], bob_messages[1]["id"])  # seq 3
    assert (await conversation(alice))["unread_count"] == 2   # deleted ones do not count

    read = await rooms.call("mark_read", alice["id"], room["id"], 2)
    assert read == {"room_id": room["id"], "last_read_seq": 2, "unread_count": 1,
                    "mention_count": 0}
    await rooms.events.wait_for("messages_read", lambda p: p["room_id"] == room["id"] and p["seq"] == 2)
    backwards = await rooms.call("mark_read", alice["id"], room["id"], 1)
    assert backwards == {"room_id": room["id"], "last_read_seq": 2, "unread_count": 1,
                         "mention_count": 0}
    clamped = await rooms.call("mark_read", alice["id"], room["id"], 999)
    assert clamped == {"room_id": room["id"], "last_read_seq": 4, "unread_count": 0,
                       "mention_count": 0}
    again = await rooms.call("mark_read", alice["id"], room["id"], 4)
    assert again["last_read_seq"] == 4
    await asyncio.sleep(0.3)
    reads = rooms.events.of("messages_read", lambda p: p["room_id"] == room["id"])
    assert [p["seq"] for p in reads] == [2, 4]  # only when it moved
    assert set(reads[0]["member_ids"]) == {alice["id"], bob["id"]} and reads[0]["user_id"] == alice["id"]

    await rooms.post(alice, room, "a5")
    assert (await conversation(bob))["unread_count"] == 1
    members = {m["user"]["id"]: m for m in await rooms.call("list_members", bob["id"], room["id"])}
    assert members[alice["id"]]["last_read_seq"] == 5 and members[bob["id"]]["last_read_seq"] == 4
    error = await rooms.error("mark_read", alice["id"], room["id"], -1)
    assert error.code == "validation_failed" and "seq" in error.details


@pytest.mark.parametrize("method,args", [
    ("list_messages", ()), ("post_message", ("hi", "cid")), ("list_members", ()),
    ("mark_read", (1,)), ("set_muted", (True,)),
])
async def test_non_members_of_public_rooms_are_forbidden(rooms, method, args):
    owner, outsider = await rooms.user(), await rooms.user()
    room = await rooms.room(owner, kind="public")
    assert (await rooms.error(method, outsider["id"], room["id"], *args)).code == "forbidden"


async def test_nul_and_lone_surrogates_are_validation_errors_not_database_errors(rooms):
    # The gateway refuses these too; the service must hold on its own (RPC callers, WS path).
    author = await rooms.user()
    room = await rooms.room(author)
    posted = await rooms.call("post_message", author["id"], room["id"], "fine", "ok-1")
    for text in ("nul \x00 inside", "half a pair \ud83d"):
        with pytest.raises(ValidationFailed) as post_error:
            await rooms.call("post_message", author["id"], room["id"], text, uuid.uuid4().hex)
        assert set(post_error.value.details) == {"text"}
        with pytest.raises(ValidationFailed) as edit_error:
            await rooms.call("edit_message", author["id"], room["id"], posted["message"]["id"], text)
        assert set(edit_error.value.details) == {"text"}
    with pytest.raises(ValidationFailed) as id_error:
        await rooms.call("get_room", author["id"], "room\x00id")
    assert set(id_error.value.details) == {"room_id"}
    with pytest.raises(ValidationFailed):
        await rooms.call("post_message", author["id"], room["id"], "hi", "client\x00id")
