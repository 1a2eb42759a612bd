"""@mentions on the SQLite path (make run), in this process: resolution against the room's
members, case, code spans, edits, mention counts and their reset, the Mentions listing.
The PostgreSQL post statement has the same rules: tests/interface/test_mentions.py."""
from __future__ import annotations

import pytest

from parley_rooms.store import NewPost
from parley_rooms.store.mentions import mentioned_names
from parley_rooms.validation import Checker, decode_cursor


@pytest.fixture
def store(sqlite_store):
    return sqlite_store({"ada": "Ada", "bob": "bob.smith", "cyd": "cyd", "dan": "dan"})


def post(store, author, room_id, text, client_id):
    (answer,), events = store.post_messages([NewPost(author, room_id, text, client_id)])
    return answer["message"], events


def test_names_skip_code_emails_and_take_sentence_ends():
    assert mentioned_names("hi @Ada and @bob.smith.") == ["ada", "bob.smith.", "bob.smith"]
    assert mentioned_names("mail ada@example.com, `@cyd` and ```\n@dan\n```") == []
    assert mentioned_names("@ab @" + "x" * 33) == []  # shorter / longer than a username
    assert mentioned_names("@cyd @CYD @cyd") == ["cyd"]
    assert mentioned_names("no at sign here") == []


def test_post_resolves_members_only_case_insensitively_not_self(store):
    room, _, _ = store.create_room("ada", "Lab", "private", "", ["bob", "cyd"])
    message, events = post(store, "ada", room["id"],
                           "@ADA @Bob.Smith. @cyd @dan `@cyd` @nobody", "c1")
    # dan is no member, ada is the author, the code span is literal
    assert message["mentions"] == ["bob", "cyd"]
    assert events[0][0] == "messages_posted"
    assert events[0][1]["messages"][0]["mentions"] == ["bob", "cyd"]
    page = store.list_messages("bob", room["id"], None, None, 50)
    assert page["messages"][0]["mentions"] == ["bob", "cyd"]
    # a repeated client_id answers the same message, its mentions included, and adds none
    again, events = post(store, "ada", room["id"], "@ADA @Bob.Smith. @cyd", "c1")
    assert again == message and events == []


def test_mention_count_until_read_and_the_mentions_listing(store):
    room, _, _ = store.create_room("ada", "Lab", "private", "", ["bob", "cyd"])
    other, _, _ = store.create_room("cyd", "Other", "public", "", ["bob"])
    first, _ = post(store, "ada", room["id"], "@bob.smith look", "c1")
    post(store, "cyd", room["id"], "no mention", "c2")
    second, _ = post(store, "cyd", other["id"], "hey @bob.smith", "c3")
    listed = {c["room"]["id"]: c for c in store.list_conversations("bob", 50, None)["conversations"]}
    assert listed[room["id"]]["mention_count"] == 1 and listed[room["id"]]["unread_count"] == 2
    assert listed[other["id"]]["mention_count"] == 1
    assert listed[room["id"]]["last_message"]["mentions"] == []

    page = store.list_mentions("bob", 1, None)
    assert [item["message"]["id"] for item in page["mentions"]] == [second["id"]]
    assert page["mentions"][0]["room"] == {"id": other["id"], "name": "Other", "kind": "public"}
    assert page["mentions"][0]["unread"] is True
    rest = store.list_mentions("bob", 1, decode_cursor(Checker(), page["next_cursor"], (str, str)))
    assert [item["message"]["id"] for item in rest["mentions"]] == [first["id"]]
    assert rest["next_cursor"] is None

    answer, _ = store.mark_read("bob", room["id"], first["seq"])
    assert answer["mention_count"] == 0 and answer["unread_count"] == 1
    assert store.list_mentions("bob", 5, None)["mentions"][1]["unread"] is False
    # leaving a room takes its mentions out of the listing
    store.leave_room("bob", other["id"])
    assert [item["message"]["id"] for item in store.list_mentions("bob", 5, None)["mentions"]] \
        == [first["id"]]
    # a deleted message mentions nobody any more
    store.delete_message("ada", room["id"], first["id"])
    assert store.list_mentions("bob", 5, None)["mentions"] == []


def test_edit_re_resolves_and_names_only_the_newly_mentioned(store):
    room, _, _ = store.create_room("ada", "Lab", "private", "", ["bob", "cyd"])
    message, _ = post(store, "ada", room["id"], "@cyd hi", "c1")
    edited, events = store.edit_message("ada", room["id"], message["id"], "@cyd and @bob.smith")
    assert edited["mentions"] == ["bob", "cyd"]
    assert events[0][1]["new_mentions"] == ["bob"]
    edited, events = store.edit_message("ada", room["id"], message["id"], "just @bob.smith")
    assert edited["mentions"] == ["bob"] and events[0][1]["new_mentions"] == []
    counts = {c["room"]["id"]: c["mention_count"]
              for c in store.list_conversations("cyd", 50, None)["conversations"]}
    assert counts[room["id"]] == 0
