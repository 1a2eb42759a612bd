"""The transactional outbox: every event is committed with its change, deleted once the broker
confirmed it, and published by the relay if the process that wrote it died before that."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from parley_common import db
from parley_common.testing import wait_until
from parley_rooms.models import outbox
from parley_rooms.store import NewPost, Store


def no_fetch(ids):
    return {}


@pytest.fixture
def stranded_store(rooms):
    """A Store on the suite's rooms database, in this process: what it commits is exactly what a
    replica killed between its commit and its publish would leave behind."""
    url = "postgresql+psycopg2" + rooms.dsn[len("postgresql"):]
    engine = db.make_engine(url, pool_size=1)
    autocommit = db.make_engine(url, pool_size=1, isolation_level="AUTOCOMMIT")
    session = db.make_sessionmaker(engine)()
    yield Store(session, no_fetch, autocommit=autocommit)
    session.close()
    engine.dispose()
    autocommit.dispose()


async def test_published_events_leave_nothing_in_the_outbox(rooms):
    owner, member = await rooms.user(), await rooms.user()
    room = await rooms.room(owner, members=[member])
    message = await rooms.post(owner, room, "hello")
    await rooms.call("edit_message", owner["id"], room["id"], message["id"], "hello again")
    await rooms.call("mark_read", member["id"], room["id"], message["seq"])
    await rooms.call("leave_room", member["id"], room["id"])
    await rooms.events.wait_for("member_left", lambda p: p["room_id"] == room["id"])
    # Each call's rows were released once the broker confirmed them: deleted by the next post
    # batch or, at the latest, the next relay tick (OUTBOX_RELAY_SECONDS=0.5 here).
    for _ in range(40):
        left = rooms.sql("SELECT count(*) FROM outbox WHERE id = %s OR payload LIKE %s",
                         message["id"], f"%{room['id']}%")
        if left == [(0,)]:
            break
        await asyncio.sleep(0.1)
    assert left == [(0,)]


async def test_a_post_batch_deletes_the_rows_released_before_it(rooms, stranded_store):
    """On PostgreSQL a release is deferred: the next post batch's own statement deletes the
    rows (no delete of their own per batch); a batch that fails gives them back."""
    owner = await rooms.user()
    room = await rooms.room(owner)
    (first,), _ = stranded_store.post_messages([NewPost(owner["id"], room["id"], "one", "c-1")])
    first_id = first["message"]["id"]
    stranded_store.outbox.release()  # as _emit does once the broker confirmed the event
    assert rooms.sql("SELECT count(*) FROM outbox WHERE id = %s", first_id) == [(1,)]
    assert stranded_store.outbox.take_released() == [first_id]
    stranded_store.outbox.restore_released([first_id])

    (second,), _ = stranded_store.post_messages([NewPost(owner["id"], room["id"], "two", "c-2")])
    assert rooms.sql("SELECT count(*) FROM outbox WHERE id = %s", first_id) == [(0,)]
    assert stranded_store.outbox.take_released() == []
    # the second one's row stays until it is released and flushed (the relay tick's job)
    stranded_store.outbox.release()
    assert stranded_store.outbox.flush_released() == 1
    assert rooms.sql("SELECT count(*) FROM outbox WHERE id = %s",
                     second["message"]["id"]) == [(0,)]


async def test_the_relay_publishes_what_a_dead_publisher_left(rooms, stranded_store):
    owner, member = await rooms.user(), await rooms.user()
    room = await rooms.room(owner, members=[member])
    # Committed, never published: the process "died" right after these commits.
    (answer, second), _ = stranded_store.post_messages(
        [NewPost(owner["id"], room["id"], "stranded", uuid.uuid4().hex),
         NewPost(member["id"], room["id"], "stranded too", uuid.uuid4().hex)])
    message = answer["message"]
    stranded_store.update_room(owner["id"], room["id"], "Renamed " + room["id"][:6], None)
    stranded = list(stranded_store.outbox.staged)
    assert len(stranded) == 3 and message["id"] in stranded
    assert not rooms.events.posted(lambda p: p["message"]["id"] == message["id"])
    # Past the grace period, as if the replica had died a while ago.
    rooms.sql("UPDATE outbox SET created_at = created_at - interval '1 hour' "
              "WHERE id = ANY(%s) RETURNING id", stranded)

    posted = await rooms.events.wait_for_posted(lambda p: p["message"]["id"] == message["id"])
    updated = await rooms.events.wait_for("room_updated", lambda p: p["room"]["id"] == room["id"])
    assert posted[0]["message"]["text"] == "stranded"
    assert posted[0]["message"]["seq"] == message["seq"]
    assert posted[0]["message"]["author"]["id"] == owner["id"]
    assert set(posted[0]["member_ids"]) == {owner["id"], member["id"]}
    assert updated[0]["room"]["name"].startswith("Renamed")
    # The relay deletes the rows in the transaction it published them from: its commit may
    # come a moment after the events reached us.
    wait_until(lambda: rooms.sql("SELECT count(*) FROM outbox WHERE id = ANY(%s)",
                                 stranded) == [(0,)], 5, what="the relayed rows deleted")
    # Three replicas run the relay; SKIP LOCKED lets exactly one of them take each row.
    await asyncio.sleep(1.5)
    relayed = rooms.events.posted(lambda p: p["message"]["room_id"] == room["id"])
    assert [p["message"]["seq"] for p in relayed] == [message["seq"], second["message"]["seq"]]
    assert relayed[0]["event"] == relayed[1]["event"]  # one messages_posted for both rows
    assert len(rooms.events.of("room_updated", lambda p: p["room"]["id"] == room["id"])) == 1


def test_sqlite_outbox_keeps_events_until_released_and_relays_them(tmp_path):
    url = f"sqlite:///{tmp_path / 'rooms.db'}"
    db.migrate(url, "parley_rooms:migrations")
    engine = db.make_engine(url)
    session = db.make_sessionmaker(engine)()
    try:
        store = Store(session, no_fetch)
        for user_id in ("ada", "bob"):
            store.upsert_user({"id": user_id, "username": user_id})
        session.commit()
        room, _, created = store.create_room("ada", "Lab", "private", "", ["bob"])
        (answer,), posted = store.post_messages([NewPost("ada", room["id"], "hi", "c1")])
        assert len(store.outbox.staged) == 2
        assert session.execute(select(outbox.c.event_type).order_by(outbox.c.event_type)
                               ).scalars().all() == ["message_posted", "room_created"]

        relayed = []
        assert store.outbox.relay(-1, 100, relayed.extend) == 2  # everything is "old"
        assert relayed == created + posted  # the post's event rebuilt from the message
        assert session.execute(select(outbox)).all() == []

        store.outbox.staged.clear()
        store.delete_room("ada", room["id"])
        store.outbox.release()  # what _emit does once the broker confirmed
        assert session.execute(select(outbox)).all() == [] and store.outbox.staged == []
    finally:
        session.close()
        engine.dispose()
