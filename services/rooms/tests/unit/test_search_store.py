"""Message search (store/search.py) in-process, on both databases: SQLite (FTS5, `make run`) and
PostgreSQL (the generated tsvector column; posts go through the one-statement batch on the
autocommit pool, as in production). Ranking, prefixes, paging, edits re-indexed, deletions,
and above all: never a message of a room the caller is not a member of."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import insert

from parley_common import db
from parley_common.errors import Forbidden, NotFound
from parley_rooms import moderation
from parley_rooms.models import memberships, messages, rooms, users
from parley_rooms.store import NewPost, Store
from parley_rooms.store.search import decode_before, highlight, search_terms
from parley_rooms.validation import Checker, decode_cursor

PEOPLE = ("ada", "bob", "cyd")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'rooms.db'}"
    else:
        url = request.getfixturevalue("isolation").database_url("search")
    db.migrate(url, "parley_rooms:migrations")
    engine = db.make_engine(url, pool_size=2)
    autocommit = None if db.is_sqlite(url) else db.make_engine(
        url, pool_size=2, pre_ping=False, isolation_level="AUTOCOMMIT")
    session = db.make_sessionmaker(engine)()
    store = Store(session, lambda ids: {}, autocommit=autocommit)
    for user_id in PEOPLE:
        store.replicate_user({"id": user_id, "username": user_id, "display_name": user_id.title()})
    yield store
    session.close()
    engine.dispose()
    if autocommit is not None:
        autocommit.dispose()


def post(store: Store, author: str, room: dict, *texts: str) -> list[dict]:
    """One batch (PostgreSQL: one statement), every post accepted."""
    outcomes, _ = store.post_messages([NewPost(author, room["id"], text, uuid.uuid4().hex)
                                       for text in texts])
    assert all(isinstance(outcome, dict) for outcome in outcomes), outcomes
    return [outcome["message"] for outcome in outcomes]


def search(store: Store, user: str, query: str, room_id=None, before=None, limit=20) -> dict:
    return store.search_messages(user, search_terms(query), room_id, before, limit)


def texts(found: dict) -> list[str]:
    return [result["message"]["text"] for result in found["results"]]


def test_words_must_all_match_as_word_starts_and_better_matches_rank_first(store):
    room, _, _ = store.create_room("ada", "Ops", "private", "", ["bob"])
    post(store, "ada", room, "the deploy went fine", "Deploying on Friday? deploy deploy!",
         "nothing to see here", "friday lunch")
    found = search(store, "bob", "deplo")
    assert texts(found)[0] == "Deploying on Friday? deploy deploy!"  # three hits beat one
    assert set(texts(found)) == {"the deploy went fine", "Deploying on Friday? deploy deploy!"}
    assert texts(search(store, "bob", "DEPLOY fri")) == ["Deploying on Friday? deploy deploy!"]
    assert texts(search(store, "bob", "lunch deploy")) == []
    result = search(store, "bob", "fine")["results"][0]
    assert result["room"] == {"id": room["id"], "kind": "private", "name": "Ops"}
    assert result["message"]["author"] == {"id": "ada", "username": "ada", "display_name": "Ada"}
    assert result["snippet"] == [{"text": "the deploy went ", "match": False},
                                 {"text": "fine", "match": True}]


def test_both_databases_split_words_alike(store):
    room, _, _ = store.create_room("ada", "Words", "private", "", [])
    post(store, "ada", room, "mail alice@example.com about snake_case in v3.14 (see x.org/a_b)",
         "Über naïve 日本語")
    for query in ("example", "snake case", "14", "org", "b", "über", "NAÏVE", "日本"):
        assert len(search(store, "ada", query)["results"]) == 1, query
    assert [p["text"] for p in search(store, "ada", "exam")["results"][0]["snippet"]
            if p["match"]] == ["example"]


def test_pages_follow_the_cursor_without_repeats_or_gaps(store):
    room, _, _ = store.create_room("ada", "Pages", "private", "", ["bob"])
    posted = post(store, "ada", room, *[f"needle number {n}" for n in range(7)])
    seen, before, pages = [], None, 0
    while True:
        page = search(store, "bob", "needle", before=before, limit=3)
        seen += [result["message"]["id"] for result in page["results"]]
        pages += 1
        if page["next_cursor"] is None:
            break
        before = decode_before(decode_cursor(Checker(), page["next_cursor"], (float, str, str)))
    assert pages == 3 and sorted(seen) == sorted(m["id"] for m in posted)
    # Equal ranks (the same words, the same length): the newest first.
    assert seen == [m["id"] for m in sorted(posted, key=lambda m: (m["created_at"], m["id"]),
                                            reverse=True)]


def test_edits_are_reindexed_and_deleted_messages_never_found(store):
    room, _, _ = store.create_room("ada", "Edits", "public", "", [])
    store.join_room("bob", room["id"])
    first, second = post(store, "ada", room, "a typo in here", "remove this secret")
    store.edit_message("ada", room["id"], first["id"], "a fixed sentence")
    assert texts(search(store, "bob", "typo")) == []
    assert texts(search(store, "bob", "fixed")) == ["a fixed sentence"]
    store.delete_message("ada", room["id"], second["id"])
    assert texts(search(store, "bob", "secret")) == []
    assert texts(search(store, "ada", "remove")) == []


def test_only_rooms_you_are_a_member_of_are_searched(store):
    mine, _, _ = store.create_room("ada", "Mine", "private", "", ["bob"])
    theirs, _, _ = store.create_room("cyd", "Theirs", "private", "", [])
    public, _, _ = store.create_room("cyd", "Town square", "public", "", [])
    direct, _, _ = store.open_direct("cyd", "bob")
    post(store, "ada", mine, "zebra in my room")
    post(store, "cyd", theirs, "zebra in a private room of someone else")
    post(store, "cyd", public, "zebra in a public room not joined")
    post(store, "cyd", direct, "zebra between cyd and bob")

    assert texts(search(store, "ada", "zebra")) == ["zebra in my room"]
    assert set(texts(search(store, "bob", "zebra"))) == {"zebra in my room",
                                                         "zebra between cyd and bob"}
    with pytest.raises(NotFound):  # a private room of others: as if it did not exist
        search(store, "ada", "zebra", room_id=theirs["id"])
    with pytest.raises(NotFound):
        search(store, "ada", "zebra", room_id=direct["id"])
    with pytest.raises(Forbidden):  # a public room: join it first, as for its history
        search(store, "ada", "zebra", room_id=public["id"])
    with pytest.raises(NotFound):
        search(store, "ada", "zebra", room_id="no-such-room")
    assert texts(search(store, "bob", "zebra", room_id=mine["id"])) == ["zebra in my room"]

    store.join_room("ada", public["id"])  # joining makes the room's history searchable
    assert set(texts(search(store, "ada", "zebra"))) == {"zebra in my room",
                                                         "zebra in a public room not joined"}
    store.leave_room("ada", public["id"])  # and leaving takes it away again
    store.leave_room("bob", mine["id"])
    assert texts(search(store, "bob", "zebra")) == ["zebra between cyd and bob"]
    with pytest.raises(NotFound):
        search(store, "bob", "zebra", room_id=mine["id"])


def test_deleted_rooms_are_gone_and_archived_rooms_stay_searchable(store):
    gone, _, _ = store.create_room("ada", "Gone", "private", "", ["bob"])
    kept, _, _ = store.create_room("ada", "Kept", "public", "", ["bob"])
    store.join_room("bob", kept["id"])
    post(store, "ada", gone, "walrus one")
    post(store, "ada", kept, "walrus two")
    store.delete_room("ada", gone["id"])
    moderation.set_archived(store, "cyd", kept["id"], True)
    assert texts(search(store, "bob", "walrus")) == ["walrus two"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_existing_messages_are_indexed_by_the_migration(request, tmp_path, backend):
    """Messages written before 0005 are found after it (the migration backfills)."""
    url = (f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite"
           else request.getfixturevalue("isolation").database_url("search_backfill"))
    config = Config()
    config.set_main_option("script_location", "parley_rooms:migrations")
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "0004")
    engine = db.make_engine(url, pool_size=1)
    now = datetime.now(timezone.utc)
    with engine.begin() as connection:
        connection.execute(insert(users).values(id="ada", username="ada", deleted=False))
        connection.execute(insert(rooms).values(id="old", kind="private", name="Old", topic="",
                                                owner_id="ada", created_at=now,
                                                last_activity_at=now, last_seq=1))
        connection.execute(insert(memberships).values(room_id="old", user_id="ada", role="owner",
                                                      joined_at=now, last_read_seq=1,
                                                      muted=False))
        connection.execute(insert(messages).values(id="m1", room_id="old", seq=1, author_id="ada",
                                                   text="an ancient manuscript", client_id="c1",
                                                   created_at=now))
    db.migrate(url, "parley_rooms:migrations")
    session = db.make_sessionmaker(engine)()
    try:
        assert texts(search(Store(session, lambda ids: {}), "ada", "manuscr")) == [
            "an ancient manuscript"]
    finally:
        session.close()
        engine.dispose()


def test_search_terms_and_snippets():
    assert search_terms("  Deploy, deploy; snake_case — Über 42! ") == ["deploy", "snake", "case",
                                                                        "über", "42"]
    assert search_terms("?!") == []
    long = "word " * 60 + "the needle is here " + "tail " * 60
    parts = highlight(long, ["needle"])
    assert parts[0] == {"text": "…", "match": False} and parts[-1] == {"text": "…", "match": False}
    assert [part["text"] for part in parts if part["match"]] == ["needle"]
    assert sum(len(part["text"]) for part in parts) <= 160 + 2
    assert "".join(part["text"] for part in parts[1:-1]) in long
    assert highlight("<b>bold</b> claim", ["b"]) == [
        {"text": "<", "match": False}, {"text": "b", "match": True},
        {"text": ">", "match": False}, {"text": "bold", "match": True},
        {"text": "</", "match": False}, {"text": "b", "match": True},
        {"text": "> claim", "match": False}]
