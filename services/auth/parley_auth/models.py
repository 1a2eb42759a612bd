"""The auth database: users and sessions.

Uniqueness "ignoring case" is enforced by the database itself through lowercase copies of
username and email with plain unique constraints: that works the same on SQLite and
PostgreSQL and closes the race between two registrations of the same name.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        false, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from parley_common.audit import audit_table
from parley_common.outbox import outbox_table


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("username_lower", name="uq_users_username_lower"),
                      UniqueConstraint("email_lower", name="uq_users_email_lower"),
                      # An index rather than a constraint: SQLite cannot add one to a table.
                      Index("ix_users_registration_key", "registration_key", unique=True))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(32))
    username_lower: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(254))
    email_lower: Mapped[str] = mapped_column(String(254))
    display_name: Mapped[str] = mapped_column(String(64))
    # Our own address of the user's avatar (parley_common.users.avatar_url), None without one.
    avatar_url: Mapped[str | None] = mapped_column(String(512))
    # argon2id encoded hash: "$argon2id$v=19$m=...,t=...,p=...$salt$hash" (parameters inside)
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The caller's id for the register request that made this user: a redelivered or retried
    # request answers with this user instead of "username taken".
    registration_key: Mapped[str | None] = mapped_column(String(64))
    # The administrator role (granted; accounts named by PARLEY_ADMINS are admins besides).
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set by an administrator: no login, no refresh, every session ended. Messages stay.
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Session(Base):
    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_user_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    # The refresh credential "<session id>.<generation>.<secret>": only the SHA-256 of the
    # current one is kept. Each use rotates it (generation + 1).
    refresh_hash: Mapped[str | None] = mapped_column(String(64))
    refresh_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # SHA-256 of the last used credentials, newest first: presenting one again is a reuse.
    refresh_previous: Mapped[str | None] = mapped_column(Text)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AvatarImage(Base):
    """A user's avatar as served: a 128 x 128 WebP re-encoded from the upload (avatars.py).
    Apart from users, so loading a user never loads a picture."""
    __tablename__ = "avatars"

    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    version: Mapped[str] = mapped_column(String(32))  # hash of the bytes: in the avatar's URL
    media_type: Mapped[str] = mapped_column(String(32))
    image: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# Events committed with their change, relayed if their publisher died (parley_common.outbox).
outbox = outbox_table(Base.metadata)

# Administrators' actions on accounts and roles (parley_common.audit).
audit_log = audit_table(Base.metadata)
