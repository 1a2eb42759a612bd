"""The store's transaction rule, on SQLite in this process: whatever an operation did not
commit itself (a read, a refused change, an error) is rolled back when it ends, so a worker's
session never carries an open transaction into its next call."""
from __future__ import annotations

import pytest

from parley_common.errors import Forbidden, NotFound
from parley_rooms.store import NewPost


@pytest.fixture
def store(sqlite_store):
    return sqlite_store({user_id: user_id for user_id in ("ada", "bob", "cyd")})


def test_reads_writes_and_refusals_leave_no_transaction_open(store):
    session = store.session
    room, created, events = store.create_room("ada", "Lab", "private", "", ["bob"])
    assert created and events and not session.in_transaction()
    store.post_messages([NewPost("ada", room["id"], "hello", "c1")])
    assert not session.in_transaction()
    page = store.list_messages("bob", room["id"], None, None, 50)
    assert [m["text"] for m in page["messages"]] == ["hello"]
    assert not session.in_transaction()  # a read ends in a rollback
    store.list_conversations("bob", 50, None)
    assert not session.in_transaction()
    with pytest.raises(NotFound):  # hidden room: refused after reading
        store.get_room("cyd", room["id"])
    assert not session.in_transaction()
    with pytest.raises(Forbidden):  # refused in the middle of a change
        store.update_room("bob", room["id"], "Renamed", None)
    assert not session.in_transaction()
    assert store.get_room("ada", room["id"])["name"] == "Lab"


def test_operations_calling_operations_share_one_transaction(store):
    room, _, _ = store.create_room("ada", "Lab", "public", "", [])
    with store.transaction() as session:
        store.get_room("ada", room["id"])  # an operation inside: must not end the outer one
        assert session.in_transaction()
    assert not store.session.in_transaction()
    # join_room reads the room through get_room when already a member
    assert store.join_room("ada", room["id"]) == (store.get_room("ada", room["id"]), [])
