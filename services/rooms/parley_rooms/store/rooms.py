"""Rooms: create (public, private, direct), read, list, rename, delete."""
from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from parley_common.db import like_escape
from parley_common.errors import Forbidden
from parley_common.ids import new_id
from parley_common.outbox import Event
from parley_common.timeutil import aware, parse_iso, utcnow

from ..models import memberships, messages, rooms
from ..validation import encode_cursor
from .access import RoomAccess
from .base import (DIRECT, MEMBER, OWNER, PUBLIC, bad_cursor, operation, read_only,
                   room_archived, room_exists)
from .rendering import room_dict


def name_key(kind: str, name: str) -> str | None:
    return name.lower() if kind == PUBLIC else None


def direct_key(a: str, b: str) -> str:
    return ":".join(sorted((a, b)))


def like_pattern(text: str) -> str:
    """Names containing ``text``, any case."""
    return f"%{like_escape(text.lower())}%"


class Rooms(RoomAccess):
    @operation
    def create_room(self, user_id: str, name: str, kind: str, topic: str, member_ids: list[str],
                    request_id: str | None = None) -> tuple[dict, bool, list[Event]]:
        """The new room, or (created False, no events) the one this request already made."""
        creation_key = f"{user_id}:{request_id}" if request_id else None
        made = self._room_made_by(creation_key)
        if made is not None:  # checked before the name: a replayed public room holds its name
            return made, False, []
        member_ids = [member_id for member_id in member_ids if member_id != user_id]
        self.ensure_users([user_id], "user_id")
        self.ensure_users(member_ids, "member_ids")
        key = name_key(kind, name)
        if key is not None and self.session.execute(
                select(rooms.c.id).where(rooms.c.name_key == key)).first():
            raise room_exists()
        now = utcnow()
        room_id = new_id()
        try:
            self.session.execute(insert(rooms).values(
                id=room_id, kind=kind, name=name, name_key=key, topic=topic, owner_id=user_id,
                direct_key=None, creation_key=creation_key, created_at=now, last_activity_at=now,
                last_seq=0))
            self._insert_members(room_id, now, {user_id: OWNER, **{m: MEMBER for m in member_ids}})
        except IntegrityError:  # another creator took the name, or a twin of this request won
            self.session.rollback()
            made = self._room_made_by(creation_key)
            if made is not None:
                return made, False, []
            raise room_exists() from None
        room = self.load_room(room_id)
        events = [("room_created", {"room": room, "member_ids": [user_id, *member_ids]})]
        self.outbox.commit(events)
        return room, True, events

    def _room_made_by(self, creation_key: str | None) -> dict | None:
        if creation_key is None:
            return None
        room_id = self.session.execute(
            select(rooms.c.id).where(rooms.c.creation_key == creation_key)).scalar()
        return None if room_id is None else self.load_room(room_id)

    def _insert_members(self, room_id: str, now, roles: dict[str, str]) -> None:
        self.session.execute(insert(memberships), [
            {"room_id": room_id, "user_id": member, "role": role, "joined_at": now,
             "last_read_seq": 0, "muted": False} for member, role in roles.items()])

    @operation
    def open_direct(self, user_id: str, other_id: str) -> tuple[dict, bool, list[Event]]:
        self.ensure_users([user_id], "user_id")
        self.ensure_users([other_id], "other_user_id")
        key = direct_key(user_id, other_id)
        existing = self.session.execute(select(rooms.c.id).where(rooms.c.direct_key == key)).scalar()
        if existing is not None:
            return self.load_room(existing), False, []
        now = utcnow()
        room_id = new_id()
        try:
            self.session.execute(insert(rooms).values(
                id=room_id, kind=DIRECT, name="", name_key=None, topic="", owner_id=None,
                direct_key=key, created_at=now, last_activity_at=now, last_seq=0))
            self._insert_members(room_id, now, {user_id: MEMBER, other_id: MEMBER})
        except IntegrityError:  # the other side (or a retry) created it first: that one wins
            self.session.rollback()
            existing = self.session.execute(
                select(rooms.c.id).where(rooms.c.direct_key == key)).scalar()
            if existing is None:
                raise
            return self.load_room(existing), False, []
        room = self.load_room(room_id)
        events = [("room_created", {"room": room, "member_ids": [user_id, other_id]})]
        self.outbox.commit(events)
        return room, True, events

    @read_only
    def get_room(self, user_id: str, room_id: str) -> dict:
        access = self.access(user_id, room_id, need_member=False, member_count=True)
        return room_dict(access.room, access.room.member_count)

    @operation
    def update_room(self, user_id: str, room_id: str, name: str | None,
                    topic: str | None) -> tuple[dict, list[Event]]:
        access = self.access(user_id, room_id, need_member=False)
        room = access.room
        if room.kind == DIRECT:
            raise Forbidden("Direct rooms cannot be renamed.")
        if not access.is_owner:
            raise Forbidden("Only the room's owner may change it.")
        if room.archived_at is not None:
            raise room_archived()
        values: dict[str, Any] = {}
        if name is not None and name != room.name:
            values.update(name=name, name_key=name_key(room.kind, name))
        if topic is not None and topic != (room.topic or ""):
            values["topic"] = topic
        if not values:
            return self.get_room(user_id, room_id), []
        key = values.get("name_key")
        if key is not None and self.session.execute(
                select(rooms.c.id).where(rooms.c.name_key == key, rooms.c.id != room_id)).first():
            raise room_exists()
        try:
            self.session.execute(update(rooms).where(rooms.c.id == room_id).values(**values))
        except IntegrityError:
            raise room_exists() from None
        updated = self.load_room(room_id)
        events = [("room_updated", {"room": updated, "member_ids": self.member_ids(room_id)})]
        self.outbox.commit(events)
        return updated, events

    @operation
    def delete_room(self, user_id: str, room_id: str) -> list[Event]:
        access = self.access(user_id, room_id, need_member=False, lock=True)
        if not access.is_owner:
            raise Forbidden("Only the room's owner may delete it.")
        member_ids = self.member_ids(room_id)
        self._delete_room_rows(room_id)
        events = [("room_deleted", {"room_id": room_id, "member_ids": member_ids})]
        self.outbox.commit(events)
        return events

    def _delete_room_rows(self, room_id: str) -> None:
        self.session.execute(delete(messages).where(messages.c.room_id == room_id))
        self.session.execute(delete(memberships).where(memberships.c.room_id == room_id))
        self.session.execute(delete(rooms).where(rooms.c.id == room_id))

    @operation
    def list_rooms(self, user_id: str, scope: str, q: str | None, limit: int,
                   cursor: list | None) -> dict:
        if scope == PUBLIC:
            statement = select(rooms).where(rooms.c.kind == PUBLIC)
            if q:
                statement = statement.where(rooms.c.name_key.like(like_pattern(q), escape="\\"))
            if cursor is not None:
                if cursor[0] != "p":
                    raise bad_cursor()
                statement = statement.where(or_(rooms.c.name_key > cursor[1],
                                                and_(rooms.c.name_key == cursor[1], rooms.c.id > cursor[2])))
            statement = statement.order_by(rooms.c.name_key, rooms.c.id).limit(limit + 1)
            rows = list(self.session.execute(statement))
            page, more = rows[:limit], len(rows) > limit
            next_cursor = encode_cursor("p", page[-1].name_key, page[-1].id) if more else None
        else:
            statement = (select(rooms).join(memberships, and_(memberships.c.room_id == rooms.c.id,
                                                              memberships.c.user_id == user_id)))
            if q:
                statement = statement.where(func.lower(rooms.c.name).like(like_pattern(q), escape="\\"))
            page, next_cursor = self._by_activity(statement, limit, cursor)
        counts = self.member_counts([row.id for row in page])
        return {"rooms": [room_dict(row, counts.get(row.id, 0)) for row in page],
                "next_cursor": next_cursor}

    def _by_activity(self, statement, limit: int, cursor: list | None):
        """Newest activity first, then id: a keyset page and the cursor of the next one."""
        if cursor is not None:
            when = parse_iso(cursor[1]) if cursor[0] == "a" else None
            if when is None:
                raise bad_cursor()
            statement = statement.where(or_(rooms.c.last_activity_at < when,
                                            and_(rooms.c.last_activity_at == when, rooms.c.id < cursor[2])))
        statement = statement.order_by(rooms.c.last_activity_at.desc(), rooms.c.id.desc()).limit(limit + 1)
        rows = list(self.session.execute(statement))
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last = page[-1]
            next_cursor = encode_cursor("a", aware(last.last_activity_at).isoformat(), last.id)
        return page, next_cursor
