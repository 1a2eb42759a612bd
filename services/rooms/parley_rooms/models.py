"""The rooms database: rooms, memberships, messages, and a replica of public user profiles."""
from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, DateTime, ForeignKey, Index, MetaData,
                        String, Table, Text, UniqueConstraint)

from parley_common.audit import audit_table
from parley_common.outbox import outbox_table

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

ID = String(64)
Timestamp = DateTime(timezone=True)

# Public profiles of users, fed by auth.events and by auth.get_users for ids we have not seen.
users = Table(
    "users", metadata,
    Column("id", ID, primary_key=True),
    Column("username", String(64), nullable=False),
    Column("display_name", String(128)),
    Column("avatar_url", Text),
    Column("created_at", Timestamp),
    Column("deleted", Boolean, nullable=False, default=False),
)

rooms = Table(
    "rooms", metadata,
    Column("id", ID, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(64)),
    # lower(trimmed name) for public rooms, NULL otherwise: its unique index makes public
    # names unique case-insensitively even when two creators race.
    Column("name_key", String(256), unique=True),
    Column("topic", String(256)),
    Column("owner_id", ID),
    # "<min user id>:<max user id>" for direct rooms, NULL otherwise: one room per pair.
    Column("direct_key", String(140), unique=True),
    # "<creator id>:<request id>" when the caller names its request: a redelivered or retried
    # create_room finds the room it already made instead of making a second one.
    Column("creation_key", String(160)),
    Column("created_at", Timestamp, nullable=False),
    Column("last_activity_at", Timestamp, nullable=False),
    Column("last_seq", BigInteger, nullable=False, default=0),
    # Set by an administrator: the room stays readable, nothing can be posted or changed.
    Column("archived_at", Timestamp),
    # An index rather than a constraint: SQLite cannot add a constraint to an existing table.
    Index("ix_rooms_creation_key", "creation_key", unique=True),
)

memberships = Table(
    "memberships", metadata,
    Column("room_id", ID, ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ID, primary_key=True),
    Column("role", String(16), nullable=False),
    Column("joined_at", Timestamp, nullable=False),
    Column("last_read_seq", BigInteger, nullable=False, default=0),
    Column("muted", Boolean, nullable=False, default=False),
    Index("ix_memberships_user_id", "user_id"),
)

messages = Table(
    "messages", metadata,
    Column("id", ID, primary_key=True),
    Column("room_id", ID, ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("author_id", ID, nullable=False),
    Column("text", Text, nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("edited_at", Timestamp),
    Column("deleted_at", Timestamp),
    # The message this one replies to, of the same room (checked when posting); a plain id:
    # messages are only ever tombstoned, and go all together with their room.
    Column("reply_to_id", ID),
    # (room_id, seq) is also the index every history page and unread count walks.
    UniqueConstraint("room_id", "seq", name="uq_messages_room_id_seq"),
    UniqueConstraint("room_id", "author_id", "client_id", name="uq_messages_room_author_client"),
)

# Who a message mentions (@username resolved against the room's members when it was posted
# or last edited; the author never mentions themself). seq is the message's, so a member's
# unread mentions are those after their read marker.
mentions = Table(
    "mentions", metadata,
    Column("message_id", ID, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ID, primary_key=True),
    Column("room_id", ID, ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    # the Mentions view (newest first) and mention counts (per room, after the read marker)
    Index("ix_mentions_user_id_room_id_seq", "user_id", "room_id", "seq"),
)

# One row per (message, emoji, user): a user reacts with an emoji at most once; counts are
# aggregated on reading (store/reactions.py). The key's prefix serves the per-message reads.
message_reactions = Table(
    "message_reactions", metadata,
    Column("message_id", ID, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("emoji", String(64), primary_key=True),
    Column("user_id", ID, primary_key=True),
    Column("created_at", Timestamp, nullable=False),
)

# Events committed with their change (parley_common.outbox). message_posted rows are written by
# the post statement itself, keyed by the message id, with no payload: rebuilt if relayed.
outbox = outbox_table(metadata)

# Administrators' actions on rooms and messages (parley_common.audit).
audit_log = audit_table(metadata)

# Full-text search of messages (store/search.py, migration 0005_message_search) lives outside
# this metadata, because each dialect keeps it its own way: on PostgreSQL the generated
# tsvector column messages.search_vector and its GIN index, on SQLite the FTS5 table
# message_search (with its shadow tables) kept by triggers. Schema comparisons skip them.
SEARCH_SCHEMA_NAMES = ("search_vector", "ix_messages_search_vector", "message_search")


def outside_metadata(name: str | None, type_: str, _parents: dict | None = None) -> bool:
    """For Alembic's include_name: True for the search structures above (FTS5's shadow tables
    are message_search_data, _idx, _content, _docsize, _config)."""
    return bool(name) and any(name == known or (type_ == "table" and name.startswith(known + "_"))
                              for known in SEARCH_SCHEMA_NAMES)
