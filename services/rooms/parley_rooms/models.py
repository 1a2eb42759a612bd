"""The rooms database: rooms, memberships, messages, and a replica of public user profiles."""
from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, DateTime, ForeignKey, Index, Integer,
                        MetaData, String, Table, Text, UniqueConstraint)

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
    # (room_id, seq) is also the index every history page and unread count walks.
    UniqueConstraint("room_id", "seq", name="uq_messages_room_id_seq"),
    UniqueConstraint("room_id", "author_id", "client_id", name="uq_messages_room_author_client"),
)

# The transactional outbox: each event is written in the transaction of the change it
# announces and deleted once the broker has confirmed it. What a process that died between
# commit and publish left behind, the relay (RoomsService.relay_outbox) publishes later.
outbox = Table(
    "outbox", metadata,
    Column("id", ID, primary_key=True),  # for message_posted: the message's id
    Column("event_type", String(64), nullable=False),
    # The event as JSON; NULL for message_posted, rebuilt from the message when relayed (the
    # post statement inserts these rows itself, before any payload exists in Python).
    Column("payload", Text),
    Column("position", Integer, nullable=False, default=0),  # order within one transaction
    Column("created_at", Timestamp, nullable=False),
    Index("ix_outbox_created_at", "created_at"),
)
