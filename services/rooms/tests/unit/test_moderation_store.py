"""moderation.py on the portable path (SQLite, the `make run` default), in-process: archiving
stops posts, edits, deletes and renames but not reading; an administrator's delete of a message
or a room; every change one audit entry, a repeat none. (The PostgreSQL post statement and the
RPC methods are covered end to end by tests/test_api_admin.py.)"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import insert

from parley_common import db
from parley_common.errors import Forbidden, NotFound, ParleyError
from parley_rooms import moderation
from parley_rooms.models import memberships, rooms, users
from parley_rooms.store import NewPost, Store

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path):
    url = f"sqlite:///{tmp_path / 'rooms.db'}"
    db.migrate(url, "parley_rooms:migrations")
    engine = db.make_engine(url, pool_size=1)
    session = db.make_sessionmaker(engine)()
    session.execute(insert(users), [
        {"id": "admin", "username": "boss", "deleted": False},
        {"id": "owner", "username": "olga", "deleted": False},
        {"id": "member", "username": "mia", "deleted": False}])
    session.execute(insert(rooms).values(
        id="room", kind="public", name="Lobby", name_key="lobby", topic="", owner_id="owner",
        created_at=NOW, last_activity_at=NOW, last_seq=0))
    session.execute(insert(memberships), [
        {"room_id": "room", "user_id": user, "role": role, "joined_at": NOW, "last_read_seq": 0,
         "muted": False} for user, role in (("owner", "owner"), ("member", "member"))])
    session.commit()
    yield Store(session, lambda ids: {})
    session.close()
    engine.dispose()


def post(store: Store, text: str, client_id: str):
    (outcome,), events = store.post_messages([NewPost("member", "room", text, client_id)])
    return outcome, events


def actions(store: Store) -> list[tuple[str, str]]:
    return [(entry["action"], entry["target"]["id"])
            for entry in moderation.audit_entries(store, None, 100)]


def test_archived_room_is_readable_not_writable(store):
    first, _ = post(store, "before", "c1")
    room, events = moderation.set_archived(store, "admin", "room", True)
    assert room["archived_at"] and [kind for kind, _ in events] == ["room_updated"]
    assert moderation.set_archived(store, "admin", "room", True)[1] == []  # a repeat: nothing

    refused, events = post(store, "after", "c2")
    assert isinstance(refused, Forbidden) and refused.details == {"room_id": "archived"}
    assert events == []
    replay, _ = post(store, "before", "c1")  # a redelivered earlier post still answers
    assert replay["created"] is False and replay["message"]["id"] == first["message"]["id"]
    for attempt in (lambda: store.edit_message("member", "room", first["message"]["id"], "x"),
                    lambda: store.delete_message("member", "room", first["message"]["id"]),
                    lambda: store.update_room("owner", "room", "Renamed", None)):
        with pytest.raises(Forbidden):
            attempt()
    page = store.list_messages("member", "room", None, None, 50)
    assert [m["text"] for m in page["messages"]] == ["before"]
    listed = moderation.list_rooms(store, "lob", None, True, 50, None)
    assert [r["id"] for r in listed["rooms"]] == ["room"]
    assert moderation.list_rooms(store, None, None, False, 50, None)["rooms"] == []

    moderation.set_archived(store, "admin", "room", False)
    assert post(store, "after", "c2")[0]["created"] is True
    assert actions(store) == [("room_unarchived", "room"), ("room_archived", "room")]


def test_admin_deletes_a_message_then_the_room(store):
    message = post(store, "spam", "c1")[0]["message"]
    events = moderation.delete_message(store, "admin", "room", message["id"])
    assert [kind for kind, _ in events] == ["message_deleted"]
    assert moderation.delete_message(store, "admin", "room", message["id"]) == []
    seen = moderation.list_messages(store, "room", None, 50)
    assert [(m["text"], m["deleted"]) for m in seen["messages"]] == [("", True)]
    with pytest.raises(NotFound):
        moderation.delete_message(store, "admin", "room", "nope")

    (kind, payload), = moderation.delete_room(store, "admin", "room")
    assert kind == "room_deleted" and payload["room_id"] == "room"
    assert sorted(payload["member_ids"]) == ["member", "owner"]
    assert moderation.delete_room(store, "admin", "room") == []  # a repeat, known from the log
    with pytest.raises(NotFound):
        moderation.delete_room(store, "admin", "never-was")
    entries = moderation.audit_entries(store, None, 100)
    assert [(e["action"], e["actor"]["username"]) for e in entries] == [
        ("room_deleted", "boss"), ("message_deleted", "boss")]
    assert entries[0]["target"]["label"] == "Lobby"
    older = moderation.audit_entries(store, entries[0]["cursor"], 100)
    assert [e["id"] for e in older] == [entries[1]["id"]]
    with pytest.raises(ParleyError):
        moderation.audit_entries(store, "garbage", 10)
