"""The store in this process on a fresh, migrated SQLite file (the `make run` default)."""
from __future__ import annotations

import pytest

from parley_common import db
from parley_rooms.store import Store


@pytest.fixture
def sqlite_store(tmp_path):
    """``sqlite_store({user_id: username, ...})``: a Store with those users replicated."""
    opened = []

    def make(usernames: dict[str, str]) -> Store:
        url = f"sqlite:///{tmp_path / 'rooms.db'}"
        db.migrate(url, "parley_rooms:migrations")
        engine = db.make_engine(url)
        session = db.make_sessionmaker(engine)()
        opened.append((session, engine))
        store = Store(session, lambda ids: {})
        for user_id, username in usernames.items():
            store.replicate_user({"id": user_id, "username": username})
        return store

    yield make
    for session, engine in opened:
        session.close()
        engine.dispose()
