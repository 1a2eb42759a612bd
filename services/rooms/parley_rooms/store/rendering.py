"""Rows to the JSON shapes of the API (DESIGN.md): rooms, members' profiles, messages."""
from __future__ import annotations

from sqlalchemy import select

from parley_common.limits import MAX_REPLY_EXCERPT
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
        "reply_to": reply_summary(getattr(row, "reply_to_id", None), getattr(row, "reply_seq", None),
                                  getattr(row, "reply_author_id", None),
                                  getattr(row, "reply_username", None),
                                  getattr(row, "reply_display_name", None),
                                  getattr(row, "reply_text", None),
                                  getattr(row, "reply_deleted_at", None)),
        "reactions": [],  # filled in by the reading operation (reactions.py)
    }


def reply_summary(reply_to_id, seq, author_id, username, display_name, text,
                  deleted_at) -> dict | None:
    """The quoted original of a reply: who wrote it and how it began, or ``deleted``."""
    if reply_to_id is None:
        return None
    deleted = deleted_at is not None or seq is None
    return {"id": reply_to_id, "seq": seq,
            "author": author(author_id, username, display_name) if author_id else None,
            "excerpt": "" if deleted else (text or "")[:MAX_REPLY_EXCERPT], "deleted": deleted}


def new_message(post, message_id: str, seq: int, created_at: str,
                username: str | None, display_name: str | None, mentions=(),
                reply_to: dict | None = None) -> dict:
    """The message a post just made (``post``: a NewPost), without reading it back;
    ``created_at``: iso() of its commit time (one per batch: formatting it is most of the cost
    of rendering a post); ``reply_to``: its reply_summary, when it replies."""
    return {
        "id": message_id, "room_id": post.room_id, "seq": seq,
        "author": author(post.user_id, username, display_name),
        "text": post.text, "client_id": post.client_id, "created_at": created_at,
        "edited_at": None, "deleted": False, "mentions": list(mentions), "reply_to": reply_to,
        "reactions": [],
    }


# Messages with their author's names from the users replica (absent: names are None), and
# for a reply the quoted original and its author's names (reply_summary).
_original = messages.alias("original")
_original_author = users.alias("original_author")
MESSAGE_WITH_AUTHOR = (
    select(messages, users.c.username, users.c.display_name,
           _original.c.seq.label("reply_seq"), _original.c.author_id.label("reply_author_id"),
           _original.c.text.label("reply_text"), _original.c.deleted_at.label("reply_deleted_at"),
           _original_author.c.username.label("reply_username"),
           _original_author.c.display_name.label("reply_display_name"))
    .select_from(messages.outerjoin(users, users.c.id == messages.c.author_id)
                 .outerjoin(_original, _original.c.id == messages.c.reply_to_id)
                 .outerjoin(_original_author, _original_author.c.id == _original.c.author_id))
)


def message_from_joined(row) -> dict:
    return message_dict(row, row.username, row.display_name)
