"""What administrators do to rooms and messages: list every room (filters), delete any
message, delete or archive any room. Each change is written to the audit log in the
transaction of the change and returns the events to publish after the commit (as the store/
modules do). The caller (service.py's admin_* methods) has checked with auth that the actor is
an administrator; arguments arrive validated.

A repeat finds the work done and changes nothing (no event, no second audit entry): an
archived room archived again, a deleted message deleted again, a room deleted again (known
from the audit log, so a second delete answers like the first instead of 404).
"""
from __future__ import annotations

import functools

from sqlalchemy import func, select, update

from parley_common import audit
from parley_common.outbox import Event
from parley_common.timeutil import utcnow

from .models import audit_log, messages, rooms
from .store import Store
from .store.base import no_such_message, no_such_room
from .store.reaction_counts import with_reactions
from .store.rendering import MESSAGE_WITH_AUTHOR, message_from_joined, room_dict
from .store.rooms import like_pattern

KINDS = ("public", "private", "direct")


def _operation(function):
    """The store's transaction rule (store/base.py) for these functions too: what a function
    does not commit is rolled back when it ends."""

    @functools.wraps(function)
    def wrapper(store: Store, *args, **kwargs):
        with store.transaction():
            return function(store, *args, **kwargs)

    return wrapper


def _record(store: Store, actor_id: str, action: str, target_type: str, target_id: str,
            label: str | None, **details) -> None:
    actor = store.user_rows([actor_id]).get(actor_id)
    audit.record(store.session, audit_log, actor_id=actor_id,
                 actor_username=actor.username if actor is not None else None, action=action,
                 target_type=target_type, target_id=target_id, target_label=label,
                 details=details or None)


def _room_row(store: Store, room_id: str, lock: bool = False):
    statement = select(rooms).where(rooms.c.id == room_id)
    if lock:
        statement = statement.with_for_update()
    return store.session.execute(statement).first()


@_operation
def list_rooms(store: Store, q: str | None, kind: str | None, archived: bool | None,
               limit: int, cursor: list | None) -> dict:
    """Every room, private and direct ones included, newest activity first."""
    statement = select(rooms)
    if q:
        statement = statement.where(func.lower(rooms.c.name).like(like_pattern(q), escape="\\"))
    if kind is not None:
        statement = statement.where(rooms.c.kind == kind)
    if archived is True:
        statement = statement.where(rooms.c.archived_at.is_not(None))
    elif archived is False:
        statement = statement.where(rooms.c.archived_at.is_(None))
    page, next_cursor = store._by_activity(statement, limit, cursor)
    counts = store.member_counts([row.id for row in page])
    return {"rooms": [room_dict(row, counts.get(row.id, 0)) for row in page],
            "next_cursor": next_cursor}


@_operation
def list_messages(store: Store, room_id: str, before_seq: int | None, limit: int) -> dict:
    """A page of any room's history (newest page by default), for deciding what to delete."""
    room = _room_row(store, room_id)
    if room is None:
        raise no_such_room()
    statement = MESSAGE_WITH_AUTHOR.where(messages.c.room_id == room_id)
    if before_seq is not None:
        statement = statement.where(messages.c.seq < before_seq)
    rows = list(store.session.execute(statement.order_by(messages.c.seq.desc()).limit(limit + 1)))
    counts = store.member_counts([room_id])
    return {"room": room_dict(room, counts.get(room_id, 0)),
            "messages": with_reactions(store.session, [message_from_joined(row)
                                                       for row in reversed(rows[:limit])]),
            "has_more": len(rows) > limit}


@_operation
def delete_message(store: Store, actor_id: str, room_id: str, message_id: str) -> list[Event]:
    """Any message of any room (the room may be archived): a tombstone, like the author's own
    delete, announced to the room's members."""
    row = store.session.execute(select(messages).where(messages.c.id == message_id,
                                                 messages.c.room_id == room_id)).first()
    if row is None:
        raise no_such_message()
    done = store.session.execute(update(messages).where(messages.c.id == message_id,
                                                  messages.c.deleted_at.is_(None))
                           .values(text="", deleted_at=utcnow()))
    if done.rowcount == 0:  # already a tombstone
        return []
    author = store.user_rows([row.author_id]).get(row.author_id)
    _record(store, actor_id, "message_deleted", "message", message_id,
            f"#{row.seq} by {author.username}" if author is not None else f"#{row.seq}",
            room_id=room_id, seq=row.seq, author_id=row.author_id)
    events = [("message_deleted", {"room_id": room_id, "message_id": message_id, "seq": row.seq,
                                   "member_ids": store.member_ids(room_id)})]
    store.outbox.commit(events)
    return events


@_operation
def delete_room(store: Store, actor_id: str, room_id: str) -> list[Event]:
    """Any room with its messages and memberships; members are told (room_deleted)."""
    room = _room_row(store, room_id, lock=True)
    if room is None:
        done_before = audit.was_recorded(store.session, audit_log, "room_deleted", "room", room_id)
        if done_before:
            return []
        raise no_such_room()
    member_ids = store.member_ids(room_id)
    _record(store, actor_id, "room_deleted", "room", room_id, room.name or f"({room.kind})",
            kind=room.kind, members=len(member_ids), messages=room.last_seq)
    store._delete_room_rows(room_id)
    events = [("room_deleted", {"room_id": room_id, "member_ids": member_ids})]
    store.outbox.commit(events)
    return events


@_operation
def set_archived(store: Store, actor_id: str, room_id: str,
                 archived: bool) -> tuple[dict, list[Event]]:
    """Archive (readable, not writable) or unarchive; members see room_updated."""
    room = _room_row(store, room_id, lock=True)
    if room is None:
        raise no_such_room()
    if (room.archived_at is not None) == archived:
        return store.load_room(room_id), []
    store.session.execute(update(rooms).where(rooms.c.id == room_id)
                    .values(archived_at=utcnow() if archived else None))
    _record(store, actor_id, "room_archived" if archived else "room_unarchived", "room", room_id,
            room.name or f"({room.kind})")
    updated = store.load_room(room_id)
    events = [("room_updated", {"room": updated, "member_ids": store.member_ids(room_id)})]
    store.outbox.commit(events)
    return updated, events


@_operation
def audit_entries(store: Store, cursor, limit: int) -> list[dict]:
    return audit.entries(store.session, audit_log, cursor, limit)
