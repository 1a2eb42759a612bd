"""post_messages: many posts in one call and one transaction (what the gateway sends under
load). Each post keeps its own answer, authorization, idempotency and seq guarantees."""
from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from parley_common import db
from parley_common.errors import Unavailable, from_body
from parley_rooms.store import NewPost, Store


def post(author: dict, room: dict | str, text: str = "hi", client_id: str | None = None) -> dict:
    return {"user_id": author["id"], "room_id": room if isinstance(room, str) else room["id"],
            "text": text, "client_id": client_id or uuid.uuid4().hex}


async def test_one_batch_answers_each_post_in_order(rooms):
    owner, member, outsider = await rooms.user(), await rooms.user(), await rooms.user()
    private = await rooms.room(owner, members=[member])
    public = await rooms.room(owner, kind="public", members=[member])
    earlier = await rooms.post(member, private, "before the batch", client_id="was-posted")
    answers = await rooms.call("post_messages", [
        post(owner, private, " first "),                      # 0: seq 2 (after `earlier`)
        post(member, public, "public one"),                   # 1: seq 1 of the public room
        post(outsider, private, "let me in"),                 # 2: private, not a member
        post(outsider, public, "drive-by"),                   # 3: public, not a member
        post(member, private, "same again", "was-posted"),    # 4: repeats `earlier`
        post(owner, private, "", "empty"),                    # 5: invalid text
        post(owner, "no-such-room", "lost"),                  # 6: no such room
        post(member, private, "twice", "in-batch"),           # 7: seq 3
        post(member, private, "twice", "in-batch"),           # 8: repeats 7 within the batch
        post(owner, private, "last"),                         # 9: seq 4
        post(member, public, "public two"),                   # 10: seq 2 of the public room
        "not an object",                                      # 11
    ])
    assert len(answers) == 12
    created = {index: answers[index] for index in (0, 1, 7, 9, 10)}
    assert all(answer["created"] is True for answer in created.values())
    assert [created[i]["message"]["seq"] for i in (0, 7, 9)] == [2, 3, 4]
    assert [created[i]["message"]["seq"] for i in (1, 10)] == [1, 2]
    assert created[0]["message"]["text"] == "first"  # trimmed, like post_message
    assert created[0]["message"]["author"]["id"] == owner["id"]
    assert from_body(answers[2]).code == "not_found"    # a private room stays invisible
    assert from_body(answers[3]).code == "forbidden"    # a public one says: join first
    assert answers[4] == {"message": earlier, "created": False}
    refused = from_body(answers[5])
    assert refused.code == "validation_failed" and set(refused.details) == {"text"}
    assert from_body(answers[6]).code == "not_found"
    assert answers[8] == {"message": answers[7]["message"], "created": False}
    assert from_body(answers[11]).code == "validation_failed"

    stored = rooms.sql("SELECT seq, text FROM messages WHERE room_id = %s ORDER BY seq", private["id"])
    assert stored == [(1, "before the batch"), (2, "first"), (3, "twice"), (4, "last")]
    room = await rooms.call("get_room", owner["id"], private["id"])
    assert room["last_seq"] == 4
    # the authors' read markers moved to their newest message of the batch
    members = {m["user"]["id"]: m["last_read_seq"]
               for m in await rooms.call("list_members", owner["id"], private["id"])}
    assert members == {owner["id"]: 4, member["id"]: 3}
    # ONE messages_posted for the batch: every new message once, in the batch's order, with
    # its room's members; nothing for the others
    new_ids = {created[i]["message"]["id"] for i in created}
    await rooms.events.wait_for_posted(lambda p: p["message"]["id"] in new_ids, count=5)
    await asyncio.sleep(0.3)  # a duplicate would have arrived by now
    events = rooms.events.posted(lambda p: p["message"]["room_id"] in {private["id"], public["id"]}
                             and p["message"]["id"] != earlier["id"])
    assert sorted(event["message"]["id"] for event in events) == sorted(new_ids)
    assert len({event["event"] for event in events}) == 1
    assert [event["message"]["id"] for event in events] == [
        created[i]["message"]["id"] for i in sorted(created)]
    for event in events:
        assert sorted(event["member_ids"]) == sorted([owner["id"], member["id"]])
        assert event["message"] == next(created[i]["message"] for i in created
                                        if created[i]["message"]["id"] == event["message"]["id"])


async def test_batch_shape_is_checked(rooms):
    author = await rooms.user()
    for posts in (None, [], "posts", {"user_id": author["id"]}, [post(author, "r")] * 101):
        error = await rooms.error("post_messages", posts)
        assert error.code == "validation_failed" and set(error.details) == {"posts"}


async def test_concurrent_batches_over_shared_rooms_keep_seq_gap_free(rooms):
    """40 batches of 25 posts, each spread over the same four rooms in a different order, all
    at once against three replicas: no deadlock, every post answered, per room 1..N."""
    owner, a, b = await rooms.user(), await rooms.user(), await rooms.user()
    shared = [await rooms.room(owner, members=[a, b]) for _ in range(4)]
    authors = [owner, a, b]
    rng = random.Random(7)

    def batch(number: int) -> list[dict]:
        return [post(rng.choice(authors), rng.choice(shared), f"b{number}-{index}")
                for index in range(25)]

    batches = [batch(number) for number in range(40)]
    answers = await asyncio.gather(*(rooms.call("post_messages", posts) for posts in batches))
    messages = [answer["message"] for batch_answers in answers for answer in batch_answers]
    assert len(messages) == 1000 and all(answer["created"] for batch_answers in answers
                                         for answer in batch_answers)
    for room in shared:
        seqs = sorted(message["seq"] for message in messages if message["room_id"] == room["id"])
        assert seqs == list(range(1, len(seqs) + 1))
        stored = [seq for (seq,) in rooms.sql(
            "SELECT seq FROM messages WHERE room_id = %s ORDER BY seq", room["id"])]
        assert stored == seqs
    # within a batch, a room's posts keep the batch's order
    for posts, batch_answers in zip(batches, answers):
        for room in shared:
            in_room = [answer["message"]["seq"] for sent, answer in zip(posts, batch_answers)
                       if sent["room_id"] == room["id"]]
            assert in_room == sorted(in_room)


async def test_a_retried_batch_racing_the_original_posts_once(rooms):
    """The same posts (same client_ids) in several concurrent batches, as when the gateway
    retries a call whose answer was lost: one message per client_id, one event each."""
    author, other = await rooms.user(), await rooms.user()
    first, second = await rooms.room(author, members=[other]), await rooms.room(author)
    posts = [post(author, first, "one", "r-1"), post(other, first, "two", "r-2"),
             post(author, second, "three", "r-3")]
    answers = await asyncio.gather(*(rooms.call("post_messages", posts) for _ in range(6)))
    for index in range(3):
        ids = {batch_answers[index]["message"]["id"] for batch_answers in answers}
        assert len(ids) == 1
        assert sum(batch_answers[index]["created"] for batch_answers in answers) == 1
    assert rooms.sql("SELECT count(*), max(seq) FROM messages WHERE room_id = %s",
                     first["id"]) == [(2, 2)]
    assert rooms.sql("SELECT count(*), max(seq) FROM messages WHERE room_id = %s",
                     second["id"]) == [(1, 1)]
    await rooms.events.wait_for_posted(
        lambda p: p["message"]["room_id"] in {first["id"], second["id"]}, count=3)
    await asyncio.sleep(0.5)
    assert len(rooms.events.posted(lambda p: p["message"]["room_id"]
                                   in {first["id"], second["id"]})) == 3


async def test_batches_run_one_prepared_generic_plan_per_connection(rooms, rooms_database):
    """The batch statement is PREPAREd once per connection and every batch runs its generic
    plan (nothing parsed or planned again per batch); a connection that died is replaced by
    one that prepares it again. An in-process store on the service's database, one connection."""
    owner, member = await rooms.user(), await rooms.user()
    room = await rooms.room(owner, members=[member])
    engine = db.make_engine(rooms_database, pool_size=1)
    autocommit = db.make_engine(rooms_database, pool_size=1, pre_ping=False,
                                isolation_level="AUTOCOMMIT")
    store = Store(db.make_sessionmaker(engine)(), lambda ids: {}, autocommit=autocommit)

    def batch() -> list[NewPost]:
        return [NewPost(author["id"], room["id"], f"hi @{owner['username']}", uuid.uuid4().hex)
                for author in (owner, member)]

    def plans() -> tuple[int, int]:
        """(generic, custom) plans the pooled connection's prepared statement ran."""
        connection = autocommit.raw_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                               " WHERE name = 'parley_post_batch'")
                return cursor.fetchone()
        finally:
            connection.close()

    try:
        for _ in range(3):
            answers, _events = store.post_messages(batch())
            assert [answer["created"] for answer in answers] == [True, True]
            store.outbox.release()
        assert plans() == (3, 0)
        (backend,) = rooms.sql("SELECT pid FROM pg_stat_activity WHERE query LIKE "
                               "'SELECT generic_plans%%' AND pid <> pg_backend_pid()")
        rooms.sql("SELECT pg_terminate_backend(%s)", backend[0])
        with pytest.raises(Unavailable):
            store.post_messages(batch())
        answers, _events = store.post_messages(batch())
        assert [answer["created"] for answer in answers] == [True, True]
        assert answers[1]["message"]["mentions"] == [owner["id"]]  # resolved by the new one too
        assert plans() == (1, 0)
        store.outbox.release()
        store.outbox.flush_released()
    finally:
        store.session.close()
        engine.dispose()
        autocommit.dispose()
    seqs = [seq for (seq,) in rooms.sql("SELECT seq FROM messages WHERE room_id = %s ORDER BY seq",
                                        room["id"])]
    assert seqs == list(range(1, 9))
