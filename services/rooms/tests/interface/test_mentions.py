"""@mentions on PostgreSQL, where a whole post batch is one statement (postgres_posting.py):
the same rules as the SQLite path (tests/unit/test_mentions_store.py) - members only,
case-insensitive, not the author, not in code - stored with the message, idempotent by
client_id, counted after the read marker, listed by list_mentions."""
from __future__ import annotations

import uuid

from parley_common.errors import from_body


def post(author: dict, room: dict, text: str, client_id: str | None = None) -> dict:
    return {"user_id": author["id"], "room_id": room["id"], "text": text,
            "client_id": client_id or uuid.uuid4().hex}


async def test_a_batch_resolves_mentions_per_post_and_stores_them(rooms):
    tag = uuid.uuid4().hex[:6]
    ada, bob, cyd, outsider = (await rooms.user(f"Ada{tag}"), await rooms.user(f"bob.{tag}"),
                               await rooms.user(f"cyd{tag}"), await rooms.user(f"out{tag}"))
    room = await rooms.room(ada, members=[bob, cyd])
    other = await rooms.room(cyd, kind="public", members=[bob])
    answers = await rooms.call("post_messages", [
        post(ada, room, f"@ADA{tag} @BOB.{tag}. and @cyd{tag}, not @out{tag}"),  # 0
        post(bob, room, f"plain text, `@cyd{tag}` in code, mail x@cyd{tag}"),     # 1
        post(cyd, other, f"@bob.{tag} here too", "same"),                        # 2
        post(cyd, other, f"@bob.{tag} here too", "same"),                        # 3: repeat
        post(outsider, room, f"@bob.{tag} let me in"),                           # 4: refused
    ])
    assert sorted(answers[0]["message"]["mentions"]) == sorted([bob["id"], cyd["id"]])
    assert answers[1]["message"]["mentions"] == []
    assert answers[2]["message"]["mentions"] == [bob["id"]]
    assert answers[3] == {"message": answers[2]["message"], "created": False}
    assert from_body(answers[4]).code == "not_found"
    stored = rooms.sql("SELECT message_id, user_id, seq FROM mentions WHERE room_id IN (%s, %s)"
                       " ORDER BY seq, user_id", room["id"], other["id"])
    first, third = answers[0]["message"], answers[2]["message"]
    assert sorted(stored) == sorted([(first["id"], bob["id"], first["seq"]),
                                     (first["id"], cyd["id"], first["seq"]),
                                     (third["id"], bob["id"], third["seq"])])
    # a later retry of the same client_id adds nothing
    again = await rooms.call("post_messages", [post(cyd, other, f"@bob.{tag} here too", "same")])
    assert again[0]["created"] is False and again[0]["message"]["mentions"] == [bob["id"]]
    assert len(rooms.sql("SELECT 1 FROM mentions WHERE message_id = %s", third["id"])) == 1
    # the event carries them (the gateway sends the mention frames from it)
    event = (await rooms.events.wait_for_posted(
        lambda item: item["message"]["id"] == first["id"]))[0]
    assert sorted(event["message"]["mentions"]) == sorted([bob["id"], cyd["id"]])
    # history shows them
    page = await rooms.call("list_messages", bob["id"], room["id"])
    assert [sorted(m["mentions"]) for m in page["messages"]] == \
        [sorted([bob["id"], cyd["id"]]), []]


async def test_mention_counts_reset_by_reading_and_the_listing(rooms):
    tag = uuid.uuid4().hex[:6]
    ada, bob = await rooms.user(f"ada{tag}"), await rooms.user(f"bob{tag}")
    room = await rooms.room(ada, members=[bob])
    first = await rooms.post(ada, room, f"hi @bob{tag}")
    await rooms.post(ada, room, "no mention")
    second = await rooms.post(ada, room, f"again @Bob{tag}")
    await rooms.call("set_muted", bob["id"], room["id"], True)  # muted rooms count them too
    listed = await rooms.call("list_conversations", bob["id"])
    conversation = next(c for c in listed["conversations"] if c["room"]["id"] == room["id"])
    assert (conversation["unread_count"], conversation["mention_count"]) == (3, 2)
    assert conversation["muted"] is True
    assert conversation["last_message"]["mentions"] == [bob["id"]]

    page = await rooms.call("list_mentions", bob["id"], limit=1)
    assert [item["message"]["id"] for item in page["mentions"]] == [second["id"]]
    assert page["mentions"][0]["unread"] is True and page["next_cursor"]
    rest = await rooms.call("list_mentions", bob["id"], limit=1, cursor=page["next_cursor"])
    assert [item["message"]["id"] for item in rest["mentions"]] == [first["id"]]

    read = await rooms.call("mark_read", bob["id"], room["id"], first["seq"])
    assert (read["unread_count"], read["mention_count"]) == (2, 1)
    read = await rooms.call("mark_read", bob["id"], room["id"], second["seq"])
    assert (read["unread_count"], read["mention_count"]) == (0, 0)
    assert (await rooms.call("list_mentions", ada["id"]))["mentions"] == []  # never yourself


async def test_edits_re_resolve_and_name_the_newly_mentioned(rooms):
    tag = uuid.uuid4().hex[:6]
    ada, bob, cyd = (await rooms.user(f"ada{tag}"), await rooms.user(f"bob{tag}"),
                     await rooms.user(f"cyd{tag}"))
    room = await rooms.room(ada, members=[bob, cyd])
    message = await rooms.post(ada, room, f"@bob{tag}")
    edited = await rooms.call("edit_message", ada["id"], room["id"], message["id"],
                              f"@bob{tag} and @cyd{tag}")
    assert sorted(edited["mentions"]) == sorted([bob["id"], cyd["id"]])
    event = (await rooms.events.wait_for("message_edited",
                                         lambda p: p["message"]["id"] == message["id"]))[0]
    assert event["new_mentions"] == [cyd["id"]]


async def test_list_mentions_checks_its_arguments(rooms):
    user = await rooms.user()
    for kwargs, field in (({"limit": 0}, "limit"), ({"limit": "x"}, "limit"),
                          ({"cursor": "not-a-cursor"}, "cursor"), ({"cursor": 5}, "cursor")):
        error = await rooms.error("list_mentions", user["id"], **kwargs)
        assert error.code == "validation_failed" and field in error.details, (kwargs, error)
