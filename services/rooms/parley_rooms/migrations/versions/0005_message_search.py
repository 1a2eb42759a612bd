"""rooms: full-text search of messages (store/search.py), backfilled for existing messages

PostgreSQL: messages.search_vector, a tsvector GENERATED from the text (the 'simple'
configuration: lower-cased words, no stemming, no stop words, so every language is treated
alike) and a GIN index on it. Everything but letters and digits becomes a space first, so the
words are those of SQLite's unicode61 and of store/search.py's highlighting: the default
parser would otherwise keep "alice@example.com", "x.org/a_b" or "3.14" as single tokens,
which "example" or "14" could never find. PostgreSQL computes it in the statement that inserts or updates
the row, so every path that writes a message (the one-statement post batch included) keeps it
current in the same transaction, with no trigger; a deleted message's text is "" and its
vector empty. Adding the column rewrites the table once, which fills it for existing rows.

SQLite (`make run`): an FTS5 table message_search over messages.text (external content,
keyed by the messages rowid), kept by triggers on insert, text update and delete (which fire
inside the writing transaction), filled once by FTS5's 'rebuild'. A later migration that
recreates the messages table on SQLite (batch "move and copy") drops these triggers and
renumbers rowids: it must create the triggers again and rebuild the index.

Revision ID: 0005_message_search
Revises: 0004
Create Date: 2026-12-01
"""
from alembic import op

revision = "0005_message_search"
down_revision = "0004"
branch_labels = None
depends_on = None

# unicode61 without diacritics folding: the same words match as on PostgreSQL's 'simple'.
SQLITE_UP = [
    "CREATE VIRTUAL TABLE message_search USING fts5(text, content='messages', "
    "content_rowid='rowid', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN "
    "INSERT INTO message_search(rowid, text) VALUES (new.rowid, new.text); END",
    "CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN "
    "INSERT INTO message_search(message_search, rowid, text) VALUES ('delete', old.rowid, old.text); END",
    "CREATE TRIGGER message_search_update AFTER UPDATE OF text ON messages BEGIN "
    "INSERT INTO message_search(message_search, rowid, text) VALUES ('delete', old.rowid, old.text); "
    "INSERT INTO message_search(rowid, text) VALUES (new.rowid, new.text); END",
    "INSERT INTO message_search(message_search) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS message_search_update",
    "DROP TRIGGER IF EXISTS message_search_delete",
    "DROP TRIGGER IF EXISTS message_search_insert",
    "DROP TABLE IF EXISTS message_search",
]
POSTGRESQL_UP = [
    "ALTER TABLE messages ADD COLUMN search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, "
    "regexp_replace(text, '[^[:alnum:]]+', ' ', 'g'))) STORED",
    "CREATE INDEX ix_messages_search_vector ON messages USING gin (search_vector)",
]
POSTGRESQL_DOWN = [
    "DROP INDEX IF EXISTS ix_messages_search_vector",
    "ALTER TABLE messages DROP COLUMN IF EXISTS search_vector",
]


def _run(statements: list[str]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    _run(SQLITE_UP if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_UP)


def downgrade() -> None:
    _run(SQLITE_DOWN if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_DOWN)
