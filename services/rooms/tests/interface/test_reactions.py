"""Reactions and replies in the rooms service (PostgreSQL replicas): one reaction per user per
emoji, counts with "me", idempotent adds and removes (no second event), members only,
archived rooms and deleted messages refuse them; replies quote their original, only within a
room, in single posts and in post_messages batches."""
from __future__ import annotations

import asyncio
import uuid

from parley_common.limits import MAX_REACTIONS_PER_MESSAGE


def for_message(message_id):
    return lambda payload: payload["message_id"] == message_id


async def test_reactions_count_per_user_and_are_idempotent(rooms):
    alice, bob, carol = await rooms.user(), await rooms.user(), await rooms.user()
    room = await rooms.room(alice, members=[bob, carol])
    message = await rooms.post(alice, room, "ship it")
    ids = (room["id"], message["id"])

    first = await rooms.call("add_reaction", alice["id"], *ids, "👍")
    assert first == {"room_id": room["id"], "message_id": message["id"],
                     "reactions": [{"emoji": "👍", "count": 1, "me": True}]}
    again = await rooms.call("add_reaction", alice["id"], *ids, "👍")
    assert again == first  # one per user per emoji
    await rooms.call("add_reaction", bob["id"], *ids, "👍")
    both = await rooms.call("add_reaction", bob["id"], *ids, "🎉")
    assert both["reactions"] == [{"emoji": "👍", "count": 2, "me": True},
                                 {"emoji": "🎉", "count": 1, "me": True}]
    # Concurrent repeats of one reaction: still one row, one event.
    await asyncio.gather(*(rooms.call("add_reaction", carol["id"], *ids, "👨‍👩‍👧")
                           for _ in range(5)))
    assert rooms.sql("SELECT count(*) FROM message_reactions WHERE message_id = %s",
                     message["id"]) == [(4,)]

    events = await rooms.events.wait_for("reaction_added", for_message(message["id"]), count=4)
    await asyncio.sleep(0.5)  # a duplicate event would be here by now
    events = rooms.events.of("reaction_added", for_message(message["id"]))
    assert [(e["user_id"], e["emoji"]) for e in events] == [
        (alice["id"], "👍"), (bob["id"], "👍"), (bob["id"], "🎉"), (carol["id"], "👨‍👩‍👧")]
    assert events[1]["reactions"] == [{"emoji": "👍", "count": 2}]  # no "me" in broadcasts
    assert sorted(events[0]["member_ids"]) == sorted([alice["id"], bob["id"], carol["id"]])
    assert events[0]["room_id"] == room["id"] and events[0]["seq"] == message["seq"]

    page = await rooms.call("list_messages", carol["id"], room["id"])
    assert page["messages"][0]["reactions"] == [
        {"emoji": "👍", "count": 2, "me": False}, {"emoji": "🎉", "count": 1, "me": False},
        {"emoji": "👨‍👩‍👧", "count": 1, "me": True}]

    removed = await rooms.call("remove_reaction", alice["id"], *ids, "👍")
    assert removed["reactions"][0] == {"emoji": "👍", "count": 1, "me": False}
    absent = await rooms.call("remove_reaction", alice["id"], *ids, "👍")  # nothing to remove
    assert absent == removed
    await rooms.call("remove_reaction", bob["id"], *ids, "🎉")
    page = await rooms.call("list_messages", bob["id"], room["id"])
    assert [r["emoji"] for r in page["messages"][0]["reactions"]] == ["👍", "👨‍👩‍👧"]
    await rooms.events.wait_for("reaction_removed", for_message(message["id"]), count=2)
    await asyncio.sleep(0.5)
    gone = rooms.events.of("reaction_removed", for_message(message["id"]))
    assert [(e["user_id"], e["emoji"]) for e in gone] == [(alice["id"], "👍"), (bob["id"], "🎉")]
    assert gone[1]["reactions"] == [{"emoji": "👍", "count": 1}, {"emoji": "👨‍👩‍👧", "count": 1}]


async def test_reactions_are_checked_and_refused_where_nothing_may_change(rooms):
    alice, bob, stranger = await rooms.user(), await rooms.user(), await rooms.user()
    room = await rooms.room(alice, members=[bob])
    public = await rooms.room(alice, kind="public")
    message = await rooms.post(alice, room, "hello")
    ids = (room["id"], message["id"])

    for not_one_emoji in ("abc", "1", "👍👍", "👍 ", "", "x" * 40, None, 5):
        error = await rooms.error("add_reaction", alice["id"], *ids, not_one_emoji)
        assert error.code == "validation_failed" and "emoji" in error.details, not_one_emoji
    hidden = await rooms.error("add_reaction", stranger["id"], *ids, "👍")
    assert hidden.code == "not_found"  # a private room the caller is not in
    public_message = await rooms.post(alice, public, "open")
    outsider = await rooms.error("add_reaction", stranger["id"], public["id"],
                                 public_message["id"], "👍")
    assert outsider.code == "forbidden"  # join first
    elsewhere = await rooms.error("add_reaction", alice["id"], room["id"], public_message["id"],
                                  "👍")
    assert elsewhere.code == "not_found"  # a message of another room

    for n in range(MAX_REACTIONS_PER_MESSAGE):
        await rooms.call("add_reaction", bob["id"], *ids, chr(0x1F600 + n))
    too_many = await rooms.error("add_reaction", alice["id"], *ids, "🚀")
    assert too_many.code == "too_many_reactions" and too_many.status == 409
    again = await rooms.call("add_reaction", alice["id"], *ids, chr(0x1F600))  # one already there
    assert again["reactions"][0]["count"] == 2

    await rooms.call("delete_message", alice["id"], *ids)
    deleted = await rooms.error("add_reaction", bob["id"], *ids, "👍")
    assert deleted.code == "conflict"
    page = await rooms.call("list_messages", bob["id"], room["id"])
    assert page["messages"][0]["reactions"] == []  # a tombstone shows none

    other = await rooms.post(alice, room, "kept")
    await rooms.call("add_reaction", bob["id"], room["id"], other["id"], "👍")
    rooms.sql("UPDATE rooms SET archived_at = now() WHERE id = %s RETURNING id", room["id"])
    for method in ("add_reaction", "remove_reaction"):
        archived = await rooms.error(method, bob["id"], room["id"], other["id"], "👍")
        assert archived.code == "forbidden" and archived.details == {"room_id": "archived"}


async def test_replies_quote_their_original_within_the_room(rooms):
    alice, bob = await rooms.user(), await rooms.user()
    room = await rooms.room(alice, members=[bob])
    elsewhere = await rooms.room(alice, members=[bob])
    original = await rooms.post(alice, room, "the original " + "x" * 300)
    foreign = await rooms.post(alice, elsewhere, "not here")

    reply = await rooms.call("post_message", bob["id"], room["id"], "agreed", "r1",
                             reply_to=original["id"])
    quoted = reply["message"]["reply_to"]
    assert quoted["id"] == original["id"] and quoted["seq"] == original["seq"]
    assert quoted["author"]["id"] == alice["id"] and quoted["deleted"] is False
    assert quoted["excerpt"] == original["text"][:140]
    repeat = await rooms.call("post_message", bob["id"], room["id"], "agreed", "r1",
                              reply_to=original["id"])
    assert repeat["created"] is False and repeat["message"]["reply_to"] == quoted
    posted = await rooms.events.wait_for_posted(
        lambda item: item["message"]["id"] == reply["message"]["id"])
    assert posted[0]["message"]["reply_to"] == quoted

    for bad in (foreign["id"], "no-such-message"):
        error = await rooms.error("post_message", bob["id"], room["id"], "no", uuid.uuid4().hex,
                                  reply_to=bad)
        assert error.code == "validation_failed" and "reply_to" in error.details
    # A batch: good and bad replies side by side, each answered on its own.
    answers = await rooms.call("post_messages", [
        {"user_id": bob["id"], "room_id": room["id"], "text": "b1", "client_id": "b1",
         "reply_to": original["id"]},
        {"user_id": bob["id"], "room_id": room["id"], "text": "b2", "client_id": "b2",
         "reply_to": foreign["id"]},
        {"user_id": alice["id"], "room_id": room["id"], "text": "b3", "client_id": "b3"},
    ])
    assert answers[0]["message"]["reply_to"] == quoted and answers[0]["message"]["seq"] == 3
    assert answers[1]["error"]["code"] == "validation_failed"
    assert answers[2]["message"]["reply_to"] is None and answers[2]["message"]["seq"] == 4

    await rooms.call("delete_message", alice["id"], room["id"], original["id"])
    page = await rooms.call("list_messages", alice["id"], room["id"])
    replies = [m for m in page["messages"] if m["reply_to"]]
    assert [m["seq"] for m in replies] == [2, 3]
    assert all(m["reply_to"]["deleted"] and m["reply_to"]["excerpt"] == "" for m in replies)


async def test_conversations_show_the_last_message_with_its_reactions(rooms):
    alice, bob = await rooms.user(), await rooms.user()
    room = await rooms.room(alice, members=[bob])
    message = await rooms.post(alice, room, "newest")
    await rooms.call("add_reaction", bob["id"], room["id"], message["id"], "🎉")
    listed = await rooms.call("list_conversations", bob["id"])
    last = next(c["last_message"] for c in listed["conversations"] if c["room"]["id"] == room["id"])
    assert last["reactions"] == [{"emoji": "🎉", "count": 1, "me": True}]
