"""Rows to the JSON shapes of the API (DESIGN.md): rooms, members' profiles, messages."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from parley_common.timeutil import iso
from parley_common.users import public_user as public_profile

from ..models import messages, users


def room_dict(row, member_count: int) -> dict:
    return {
        "id": row.id,
        "kind": row.kind,
        "name": row.name or "",
        "topic": row.topic or "",
        "owner_id": row.owner_id,
        "member_count": member_count,
        "created_at": iso(row.created_at),
        "last_activity_at": iso(row.last_activity_at),
        "last_seq": row.last_seq,
        "archived_at": iso(row.archived_at),
    }


def public_user(user_id: str, row) -> dict:
    """A replica row as a public user; ``row`` None (not in the replica, which should not
    happen for members) renders the id alone."""
    if row is None:
        return {"id": user_id, "username": None, "display_name": None, "avatar_url": None,
                "created_at": None}
    return public_profile(row)


def author(author_id: str, username: str | None, display_name: str | None) -> dict:
    return {"id": author_id, "username": username, "display_name": display_name}


def message_dict(row, username: str | None, display_name: str | None) -> dict:
    return {
        "id": row.id,
        "room_id": row.room_id,
        "seq": row.seq,
        "author": author(row.author_id, username, display_name),
        "text": "" if row.deleted_at is not None else row.text,
        "client_id": row.client_id,
        "created_at": iso(row.created_at),
        "edited_at": iso(row.edited_at),
        "deleted": row.deleted_at is not None,
        "mentions": [],  # filled in by Mentions.with_mentions where a caller shows them
    }


def new_message(post, message_id: str, seq: int, now: datetime,
                username: str | None, display_name: str | None, mentions=()) -> dict:
    """The message a post just made (``post``: a NewPost), without reading it back."""
    return {
        "id": message_id, "room_id": post.room_id, "seq": seq,
        "author": author(post.user_id, username, display_name),
        "text": post.text, "client_id": post.client_id, "created_at": iso(now),
        "edited_at": None, "deleted": False, "mentions": list(mentions),
    }


# Messages with their author's names from the users replica (absent: names are None).
MESSAGE_WITH_AUTHOR = (
    select(messages, users.c.username, users.c.display_name)
    .select_from(messages.outerjoin(users, users.c.id == messages.c.author_id))
)


def message_from_joined(row) -> dict:
    return message_dict(row, row.username, row.display_name)
