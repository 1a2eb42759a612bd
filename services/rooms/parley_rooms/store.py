"""The rooms domain on one SQLAlchemy session: every operation commits its own transaction and
returns the events to publish once that commit has happened (never before). The events are
also written to the outbox in that transaction, so a process dying before it published them
loses nothing: the relay publishes them later.

Arguments arrive already validated (see validation.py); authorization happens here.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from sqlalchemy import and_, case, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from parley_common.errors import (Conflict, Forbidden, NotFound, ParleyError, Unavailable,
                                   ValidationFailed)
from parley_common.outbox import Event, Outbox
from parley_common.timeutil import iso, utcnow

from .models import memberships, messages, outbox, rooms, users
from .validation import encode_cursor

FetchUsers = Callable[[list[str]], dict[str, dict]]

PUBLIC, PRIVATE, DIRECT = "public", "private", "direct"
OWNER, MEMBER = "owner", "member"


def new_id() -> str:
    return uuid.uuid4().hex


def name_key(kind: str, name: str) -> str | None:
    return name.lower() if kind == PUBLIC else None


def direct_key(a: str, b: str) -> str:
    return ":".join(sorted((a, b)))


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def like_pattern(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# --- rendering ------------------------------------------------------------------------------

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
    }


def public_user(user_id: str, row) -> dict:
    if row is None:  # not in the replica (should not happen for members); render the id alone
        return {"id": user_id, "username": None, "display_name": None, "avatar_url": None,
                "created_at": None}
    return {"id": row.id, "username": row.username, "display_name": row.display_name,
            "avatar_url": row.avatar_url, "created_at": iso(row.created_at)}


def message_dict(row, username: str | None, display_name: str | None) -> dict:
    return {
        "id": row.id,
        "room_id": row.room_id,
        "seq": row.seq,
        "author": {"id": row.author_id, "username": username, "display_name": display_name},
        "text": "" if row.deleted_at is not None else row.text,
        "client_id": row.client_id,
        "created_at": iso(row.created_at),
        "edited_at": iso(row.edited_at),
        "deleted": row.deleted_at is not None,
    }


MESSAGE_WITH_AUTHOR = (
    select(messages, users.c.username, users.c.display_name)
    .select_from(messages.outerjoin(users, users.c.id == messages.c.author_id))
)


def _message_from_joined(row) -> dict:
    return message_dict(row, row.username, row.display_name)


@dataclass
class Access:
    room: Any            # the rooms row
    member: Any | None   # the caller's memberships row, or None

    @property
    def is_owner(self) -> bool:
        return self.room.owner_id is not None and self.member is not None \
            and self.room.owner_id == self.member.user_id


class Store:
    def __init__(self, session: Session, fetch_users: FetchUsers):
        self.s = session
        self.fetch_users = fetch_users
        # PostgreSQL: releases go through the autocommit pool, one round trip per call.
        self.outbox = Outbox(outbox, session, rebuild=self._rebuild_posted,
                             fast_delete=session.info.get(AUTOCOMMIT_ENGINE))

    def _rebuild_posted(self, row) -> Event | None:
        """A relayed message_posted: the message as it is now, to its members now; nothing if
        it went with its room."""
        room_id = self.s.execute(select(messages.c.room_id).where(messages.c.id == row.id)).scalar()
        if room_id is None:
            return None
        return row.event_type, {"message": self.message(room_id, row.id),
                                "member_ids": self.member_ids(room_id)}

    @property
    def dialect(self) -> str:
        return self.s.get_bind().dialect.name

    # --- users replica ----------------------------------------------------------------------

    def upsert_user(self, user: dict) -> None:
        """Insert or refresh one public profile; a deleted user stays deleted (redelivery of an
        older event must not bring them back)."""
        def string(name: str, limit: int | None = None) -> str | None:
            value = user.get(name)
            if not isinstance(value, str):
                return None
            return value[:limit] if limit else value

        # Lenient about odd payloads: an event that can never be stored would be redelivered forever.
        values = {
            "id": user["id"],
            "username": string("username", 64) or "",
            "display_name": string("display_name", 128),
            "avatar_url": string("avatar_url"),
            "created_at": parse_time(user.get("created_at")),
        }
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert
        statement = upsert(users).values(**values, deleted=False)
        statement = statement.on_conflict_do_update(
            index_elements=[users.c.id],
            set_={name: statement.excluded[name]
                  for name in ("username", "display_name", "avatar_url", "created_at")})
        self.s.execute(statement)

    def ensure_users(self, ids: list[str], field: str) -> dict[str, Any]:
        """Replica rows of ``ids``, fetching unknown ones from auth; NotFound naming ``field``
        when a user does not exist (or was deleted)."""
        if not ids:
            return {}
        found = {row.id: row for row in self.s.execute(select(users).where(users.c.id.in_(ids)))}
        missing = [user_id for user_id in ids if user_id not in found]
        if missing:
            fetched = self.fetch_users(missing) or {}
            for user in fetched.values():
                if isinstance(user, dict) and isinstance(user.get("id"), str) and user["id"] in missing:
                    self.upsert_user(user)
            self.s.commit()
            found.update({row.id: row for row in
                          self.s.execute(select(users).where(users.c.id.in_(missing)))})
        unknown = [user_id for user_id in ids if user_id not in found or found[user_id].deleted]
        if unknown:
            self.s.rollback()
            raise NotFound("No such user.", {field: "no such user: " + ", ".join(unknown)})
        return found

    def user_rows(self, ids) -> dict[str, Any]:
        ids = list(ids)
        if not ids:
            return {}
        return {row.id: row for row in self.s.execute(select(users).where(users.c.id.in_(ids)))}

    def remove_user(self, user_id: str) -> list[Event]:
        """user_deleted: mark the replica row deleted and take the user out of every room."""
        marked = self.s.execute(update(users).where(users.c.id == user_id).values(deleted=True))
        if marked.rowcount == 0:  # never seen: remember the deletion so a late event can't revive
            try:
                self.s.execute(insert(users).values(id=user_id, username="", deleted=True))
            except IntegrityError:
                self.s.rollback()
                self.s.execute(update(users).where(users.c.id == user_id).values(deleted=True))
        self.s.commit()
        events: list[Event] = []
        room_ids = self.room_ids_for_user(user_id)
        for room_id in room_ids:
            events.extend(self._remove_member(room_id, user_id))
        return events

    # --- access -----------------------------------------------------------------------------

    def access(self, user_id: str, room_id: str, *, need_member: bool, lock: bool = False) -> Access:
        """The room as ``user_id`` may see it. Hidden rooms (private/direct, not a member) are
        NotFound; public rooms need membership for anything but reading the room itself."""
        statement = (
            select(rooms, memberships.c.user_id.label("member_user_id"),
                   memberships.c.role, memberships.c.joined_at, memberships.c.last_read_seq,
                   memberships.c.muted)
            .select_from(rooms.outerjoin(memberships, and_(memberships.c.room_id == rooms.c.id,
                                                           memberships.c.user_id == user_id)))
            .where(rooms.c.id == room_id)
        )
        if lock:  # serializes membership changes of one room (and waits for its posters)
            statement = statement.with_for_update(of=rooms)
        row = self.s.execute(statement).first()
        if row is None:
            raise NotFound("No such room.", {"room_id": "no such room"})
        member = None
        if row.member_user_id is not None:
            member = _Member(row.member_user_id, row.role, row.joined_at, row.last_read_seq, row.muted)
        if member is None and row.kind != PUBLIC:
            raise NotFound("No such room.", {"room_id": "no such room"})
        if member is None and need_member:
            raise Forbidden("Join this room first.")
        return Access(row, member)

    def member_ids(self, room_id: str) -> list[str]:
        return list(self.s.execute(
            select(memberships.c.user_id).where(memberships.c.room_id == room_id)
            .order_by(memberships.c.joined_at, memberships.c.user_id)).scalars())

    def member_counts(self, room_ids: list[str]) -> dict[str, int]:
        if not room_ids:
            return {}
        rows = self.s.execute(select(memberships.c.room_id, func.count())
                              .where(memberships.c.room_id.in_(room_ids))
                              .group_by(memberships.c.room_id))
        return {room_id: count for room_id, count in rows}

    def load_room(self, room_id: str) -> dict:
        row = self.s.execute(select(rooms).where(rooms.c.id == room_id)).first()
        if row is None:
            raise NotFound("No such room.", {"room_id": "no such room"})
        return room_dict(row, self.member_counts([room_id]).get(room_id, 0))

    # --- rooms ------------------------------------------------------------------------------

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
        if key is not None and self.s.execute(select(rooms.c.id).where(rooms.c.name_key == key)).first():
            self.s.rollback()
            raise _room_exists()
        now = utcnow()
        room_id = new_id()
        try:
            self.s.execute(insert(rooms).values(
                id=room_id, kind=kind, name=name, name_key=key, topic=topic, owner_id=user_id,
                direct_key=None, creation_key=creation_key, created_at=now, last_activity_at=now,
                last_seq=0))
            self.s.execute(insert(memberships), [
                {"room_id": room_id, "user_id": member, "role": OWNER if member == user_id else MEMBER,
                 "joined_at": now, "last_read_seq": 0, "muted": False}
                for member in [user_id, *member_ids]])
        except IntegrityError:  # another creator took the name, or a twin of this request won
            self.s.rollback()
            made = self._room_made_by(creation_key)
            if made is not None:
                return made, False, []
            raise _room_exists() from None
        room = self.load_room(room_id)
        events = [("room_created", {"room": room, "member_ids": [user_id, *member_ids]})]
        self.outbox.commit(events)
        return room, True, events

    def _room_made_by(self, creation_key: str | None) -> dict | None:
        if creation_key is None:
            return None
        room_id = self.s.execute(select(rooms.c.id).where(rooms.c.creation_key == creation_key)).scalar()
        return None if room_id is None else self.load_room(room_id)

    def open_direct(self, user_id: str, other_id: str) -> tuple[dict, bool, list[Event]]:
        self.ensure_users([user_id], "user_id")
        self.ensure_users([other_id], "other_user_id")
        key = direct_key(user_id, other_id)
        existing = self.s.execute(select(rooms.c.id).where(rooms.c.direct_key == key)).scalar()
        if existing is not None:
            return self.load_room(existing), False, []
        now = utcnow()
        room_id = new_id()
        try:
            self.s.execute(insert(rooms).values(
                id=room_id, kind=DIRECT, name="", name_key=None, topic="", owner_id=None,
                direct_key=key, created_at=now, last_activity_at=now, last_seq=0))
            self.s.execute(insert(memberships), [
                {"room_id": room_id, "user_id": member, "role": MEMBER, "joined_at": now,
                 "last_read_seq": 0, "muted": False} for member in (user_id, other_id)])
        except IntegrityError:  # the other side (or a retry) created it first: that one wins
            self.s.rollback()
            existing = self.s.execute(select(rooms.c.id).where(rooms.c.direct_key == key)).scalar()
            if existing is None:
                raise
            return self.load_room(existing), False, []
        room = self.load_room(room_id)
        events = [("room_created", {"room": room, "member_ids": [user_id, other_id]})]
        self.outbox.commit(events)
        return room, True, events

    def get_room(self, user_id: str, room_id: str) -> dict:
        access = self.access(user_id, room_id, need_member=False)
        return room_dict(access.room, self.member_counts([room_id]).get(room_id, 0))

    def update_room(self, user_id: str, room_id: str, name: str | None,
                    topic: str | None) -> tuple[dict, list[Event]]:
        access = self.access(user_id, room_id, need_member=False)
        room = access.room
        if room.kind == DIRECT:
            raise Forbidden("Direct rooms cannot be renamed.")
        if not access.is_owner:
            raise Forbidden("Only the room's owner may change it.")
        values: dict[str, Any] = {}
        if name is not None and name != room.name:
            values.update(name=name, name_key=name_key(room.kind, name))
        if topic is not None and topic != (room.topic or ""):
            values["topic"] = topic
        if not values:
            self.s.rollback()
            return self.get_room(user_id, room_id), []
        key = values.get("name_key")
        if key is not None and self.s.execute(
                select(rooms.c.id).where(rooms.c.name_key == key, rooms.c.id != room_id)).first():
            self.s.rollback()
            raise _room_exists()
        try:
            self.s.execute(update(rooms).where(rooms.c.id == room_id).values(**values))
        except IntegrityError:
            self.s.rollback()
            raise _room_exists() from None
        updated = self.load_room(room_id)
        events = [("room_updated", {"room": updated, "member_ids": self.member_ids(room_id)})]
        self.outbox.commit(events)
        return updated, events

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
        self.s.execute(delete(messages).where(messages.c.room_id == room_id))
        self.s.execute(delete(memberships).where(memberships.c.room_id == room_id))
        self.s.execute(delete(rooms).where(rooms.c.id == room_id))

    def join_room(self, user_id: str, room_id: str) -> tuple[dict, list[Event]]:
        access = self.access(user_id, room_id, need_member=False)
        if access.room.kind == DIRECT:
            raise Forbidden("Direct rooms cannot be joined.")
        if access.member is not None:  # already in: joining again changes nothing
            self.s.rollback()
            return self.get_room(user_id, room_id), []
        user = self.ensure_users([user_id], "user_id")[user_id]
        access = self.access(user_id, room_id, need_member=False, lock=True)
        if access.member is not None:
            self.s.rollback()
            return self.get_room(user_id, room_id), []
        now = utcnow()
        becomes_owner = access.room.owner_id is None  # an abandoned public room gets a new owner
        try:
            self.s.execute(insert(memberships).values(
                room_id=room_id, user_id=user_id, role=OWNER if becomes_owner else MEMBER,
                joined_at=now, last_read_seq=access.room.last_seq, muted=False))
            if becomes_owner:
                self.s.execute(update(rooms).where(rooms.c.id == room_id).values(owner_id=user_id))
        except IntegrityError:  # a concurrent join of the same user won
            self.s.rollback()
            return self.get_room(user_id, room_id), []
        room = self.load_room(room_id)
        member_ids = self.member_ids(room_id)
        events = [("member_joined", {"room_id": room_id, "user": public_user(user_id, user),
                                     "member_ids": member_ids})]
        if becomes_owner:
            events.append(("room_updated", {"room": room, "member_ids": member_ids}))
        self.outbox.commit(events)
        return room, events

    def add_member(self, user_id: str, room_id: str, member_id: str) -> tuple[dict, list[Event]]:
        access = self.access(user_id, room_id, need_member=True)
        if access.room.kind != PRIVATE:
            raise Forbidden("Members can only be added to private rooms; public rooms are joined.")
        user = self.ensure_users([member_id], "member_id")[member_id]
        access = self.access(user_id, room_id, need_member=True, lock=True)
        already = self.s.execute(select(memberships.c.user_id).where(
            memberships.c.room_id == room_id, memberships.c.user_id == member_id)).first()
        if already is not None:
            self.s.rollback()
            return self.get_room(user_id, room_id), []
        try:
            self.s.execute(insert(memberships).values(
                room_id=room_id, user_id=member_id, role=MEMBER, joined_at=utcnow(),
                last_read_seq=access.room.last_seq, muted=False))
        except IntegrityError:
            self.s.rollback()
            return self.get_room(user_id, room_id), []
        room = self.load_room(room_id)
        events = [("member_joined", {"room_id": room_id, "user": public_user(member_id, user),
                                     "member_ids": self.member_ids(room_id)})]
        self.outbox.commit(events)
        return room, events

    def leave_room(self, user_id: str, room_id: str) -> list[Event]:
        access = self.access(user_id, room_id, need_member=False)
        if access.room.kind == DIRECT:
            raise Forbidden("Direct rooms cannot be left.")
        if access.member is None:  # public room you are not in: nothing to do
            self.s.rollback()
            return []
        self.s.rollback()
        return self._remove_member(room_id, user_id)

    def _remove_member(self, room_id: str, user_id: str) -> list[Event]:
        """Take ``user_id`` out of the room. Ownership passes to the longest-standing member;
        a public room left empty stays (ownerless; the next to join owns it), a private or
        direct room left empty is deleted, since nobody could ever reach it again."""
        room = self.s.execute(select(rooms).where(rooms.c.id == room_id).with_for_update()).first()
        if room is None:
            self.s.rollback()
            return []
        member_ids = self.member_ids(room_id)
        removed = self.s.execute(delete(memberships).where(
            memberships.c.room_id == room_id, memberships.c.user_id == user_id))
        if removed.rowcount == 0:
            self.s.rollback()
            return []
        remaining = [member for member in member_ids if member != user_id]
        user = public_user(user_id, self.user_rows([user_id]).get(user_id))
        events: list[Event] = [("member_left", {"room_id": room_id, "user": user,
                                                "member_ids": member_ids})]
        if not remaining and room.kind != PUBLIC:
            self._delete_room_rows(room_id)
            events.append(("room_deleted", {"room_id": room_id, "member_ids": member_ids}))
            self.outbox.commit(events)
            return events
        owner_changed = False
        if room.owner_id == user_id:
            successor = remaining[0] if remaining else None  # member_ids is ordered by joined_at
            self.s.execute(update(rooms).where(rooms.c.id == room_id).values(owner_id=successor))
            if successor is not None:
                self.s.execute(update(memberships).where(
                    memberships.c.room_id == room_id, memberships.c.user_id == successor)
                    .values(role=OWNER))
            owner_changed = True
        if owner_changed:
            events.append(("room_updated", {"room": self.load_room(room_id), "member_ids": remaining}))
        self.outbox.commit(events)
        return events

    def list_members(self, user_id: str, room_id: str) -> list[dict]:
        self.access(user_id, room_id, need_member=True)
        rows = self.s.execute(
            select(memberships, users.c.id.label("u_id"), users.c.username, users.c.display_name,
                   users.c.avatar_url, users.c.created_at.label("u_created_at"))
            .select_from(memberships.outerjoin(users, users.c.id == memberships.c.user_id))
            .where(memberships.c.room_id == room_id)
            .order_by(memberships.c.joined_at, memberships.c.user_id))
        result = []
        for row in rows:
            user = ({"id": row.user_id, "username": row.username, "display_name": row.display_name,
                     "avatar_url": row.avatar_url, "created_at": iso(row.u_created_at)}
                    if row.u_id is not None else public_user(row.user_id, None))
            result.append({"user": user, "role": row.role, "joined_at": iso(row.joined_at),
                           "last_read_seq": row.last_read_seq})
        return result

    def set_muted(self, user_id: str, room_id: str, muted: bool) -> dict:
        self.access(user_id, room_id, need_member=True)
        self.s.execute(update(memberships).where(memberships.c.room_id == room_id,
                                                 memberships.c.user_id == user_id).values(muted=muted))
        self.s.commit()
        return {"room_id": room_id, "muted": muted}

    def room_ids_for_user(self, user_id: str) -> list[str]:
        return list(self.s.execute(select(memberships.c.room_id)
                                   .where(memberships.c.user_id == user_id)
                                   .order_by(memberships.c.room_id)).scalars())

    def list_rooms(self, user_id: str, scope: str, q: str | None, limit: int,
                   cursor: list | None) -> dict:
        if scope == PUBLIC:
            statement = select(rooms).where(rooms.c.kind == PUBLIC)
            if q:
                statement = statement.where(rooms.c.name_key.like(like_pattern(q), escape="\\"))
            if cursor is not None:
                if cursor[0] != "p":
                    raise _bad_cursor()
                statement = statement.where(or_(rooms.c.name_key > cursor[1],
                                                and_(rooms.c.name_key == cursor[1], rooms.c.id > cursor[2])))
            statement = statement.order_by(rooms.c.name_key, rooms.c.id).limit(limit + 1)
            rows = list(self.s.execute(statement))
            page, more = rows[:limit], len(rows) > limit
            next_cursor = encode_cursor("p", page[-1].name_key, page[-1].id) if more else None
        else:
            statement = (select(rooms).join(memberships, and_(memberships.c.room_id == rooms.c.id,
                                                              memberships.c.user_id == user_id)))
            if q:
                statement = statement.where(func.lower(rooms.c.name).like(like_pattern(q), escape="\\"))
            rows, next_cursor = self._by_activity(statement, limit, cursor)
            page = rows
        counts = self.member_counts([row.id for row in page])
        return {"rooms": [room_dict(row, counts.get(row.id, 0)) for row in page],
                "next_cursor": next_cursor}

    def _by_activity(self, statement, limit: int, cursor: list | None):
        """Newest activity first, then id: a keyset page and the cursor of the next one."""
        if cursor is not None:
            when = parse_time(cursor[1]) if cursor[0] == "a" else None
            if when is None:
                raise _bad_cursor()
            statement = statement.where(or_(rooms.c.last_activity_at < when,
                                            and_(rooms.c.last_activity_at == when, rooms.c.id < cursor[2])))
        statement = statement.order_by(rooms.c.last_activity_at.desc(), rooms.c.id.desc()).limit(limit + 1)
        rows = list(self.s.execute(statement))
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last = page[-1]
            when = last.last_activity_at
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            next_cursor = encode_cursor("a", when.isoformat(), last.id)
        return page, next_cursor

    # --- messages ---------------------------------------------------------------------------

    def post_messages(self, posts: list[NewPost]) -> tuple[list[dict | ParleyError], list[Event]]:
        """Post a batch. Answers, in the order given, `{"message", "created"}` or the error that
        refused that post (one refused post does not fail the others), and the message_posted
        events of the new messages. A repeated (author, room, client_id), whether posted
        earlier or repeated within the batch, answers the first message with created false."""
        first_of: dict[tuple, int] = {}
        distinct: list[NewPost] = []
        for post in posts:
            if post.key not in first_of:
                first_of[post.key] = len(distinct)
                distinct.append(post)
        autocommit = self.s.info.get(AUTOCOMMIT_ENGINE)
        if autocommit is not None:  # PostgreSQL under RoomsDatabase: one statement per batch
            outcomes, events = self._post_batch_postgresql(autocommit, distinct)
        else:
            outcomes, events = self._post_each(distinct)
        answers: list[dict | ParleyError] = []
        answered: set[tuple] = set()
        for post in posts:
            outcome = outcomes[first_of[post.key]]
            if post.key in answered and isinstance(outcome, dict):
                outcome = {"message": outcome["message"], "created": False}
            answered.add(post.key)
            answers.append(outcome)
        return answers, events

    def _post_each(self, posts: list[NewPost]) -> tuple[list[dict | ParleyError], list[Event]]:
        outcomes: list[dict | ParleyError] = []
        events: list[Event] = []
        for post in posts:
            try:
                message, created, posted = self._post_one(post)
            except ParleyError as exc:
                outcomes.append(exc)
                continue
            outcomes.append({"message": message, "created": created})
            events.extend(posted)
        return outcomes, events

    def _post_one(self, post: NewPost) -> tuple[dict, bool, list[Event]]:
        """One transaction on the session (SQLite): bump rooms.last_seq (the row lock orders
        concurrent posters of a room; a rollback hands the number back, so seqs have no gaps),
        insert, move the author's read marker, commit."""
        user_id, room_id, text, client_id = post.user_id, post.room_id, post.text, post.client_id
        probe = self.s.execute(
            select(rooms.c.kind, memberships.c.user_id.label("member_user_id"),
                   messages.c.id.label("existing_id"), users.c.username, users.c.display_name)
            .select_from(
                rooms.outerjoin(memberships, and_(memberships.c.room_id == rooms.c.id,
                                                  memberships.c.user_id == user_id))
                .outerjoin(messages, and_(messages.c.room_id == rooms.c.id,
                                          messages.c.author_id == user_id,
                                          messages.c.client_id == client_id))
                .outerjoin(users, users.c.id == memberships.c.user_id))
            .where(rooms.c.id == room_id)).first()
        if probe is None or (probe.member_user_id is None and probe.kind != PUBLIC):
            raise _no_such_room()
        if probe.member_user_id is None:
            raise Forbidden("Join this room first.")
        if probe.existing_id is not None:
            existing = self.message(room_id, probe.existing_id)
            self.s.rollback()
            return existing, False, []
        member_ids = self.member_ids(room_id)
        now = utcnow()
        seq = self.s.execute(
            update(rooms).where(rooms.c.id == room_id)
            .values(last_seq=rooms.c.last_seq + 1, last_activity_at=now)
            .returning(rooms.c.last_seq)).scalar()
        if seq is None:  # deleted under our feet
            self.s.rollback()
            raise _no_such_room()
        message_id = new_id()
        try:
            self.s.execute(insert(messages).values(
                id=message_id, room_id=room_id, seq=seq, author_id=user_id, text=text,
                client_id=client_id, created_at=now, edited_at=None, deleted_at=None))
            self.s.execute(
                update(memberships)
                .where(memberships.c.room_id == room_id, memberships.c.user_id == user_id)
                .values(last_read_seq=case((memberships.c.last_read_seq < seq, seq),
                                           else_=memberships.c.last_read_seq)))
            # Like the PostgreSQL statement: a payload-less row, rebuilt from the message if relayed.
            self.s.execute(insert(outbox).values(id=message_id, event_type="message_posted",
                                                 payload=None, position=0, created_at=now))
            self.s.commit()
        except IntegrityError:  # the same client_id raced us and won: that message is the answer
            self.s.rollback()
            existing_id = self.s.execute(select(messages.c.id).where(
                messages.c.room_id == room_id, messages.c.author_id == user_id,
                messages.c.client_id == client_id)).scalar()
            if existing_id is None:
                raise
            existing = self.message(room_id, existing_id)
            self.s.rollback()
            return existing, False, []
        self.outbox.adopt([message_id])
        message = _new_message(post, message_id, seq, now, probe.username, probe.display_name)
        return message, True, [("message_posted", {"message": message, "member_ids": member_ids})]

    def _post_batch_postgresql(self, autocommit, posts: list[NewPost]
                               ) -> tuple[list[dict | ParleyError], list[Event]]:
        """The hot path on PostgreSQL: the whole batch in ONE statement on an autocommit
        connection (its own transaction, no separate COMMIT; see _PG_POST_BATCH). Raw DBAPI
        cursor and a constant SQL string: no SQLAlchemy compile/execute machinery per call."""
        now = utcnow()
        message_ids = [new_id() for _ in posts]
        params = {"ids": message_ids, "rooms": [post.room_id for post in posts],
                  "authors": [post.user_id for post in posts],
                  "clients": [post.client_id for post in posts],
                  "texts": [post.text for post in posts], "now": now,
                  # outbox rows of events already confirmed: deleted by this same statement
                  "released": self.outbox.take_released()}
        try:
            return self._run_post_batch(autocommit, posts, message_ids, params, now)
        except BaseException:  # nothing committed: those rows still wait for their delete
            self.outbox.restore_released(params["released"])
            raise

    def _run_post_batch(self, autocommit, posts: list[NewPost], message_ids: list[str],
                        params: dict, now: datetime
                        ) -> tuple[list[dict | ParleyError], list[Event]]:
        import psycopg2.errors  # here, not at the top: SQLite-only installs have no psycopg2

        for _attempt in range(POST_ATTEMPTS):
            connection = autocommit.raw_connection()
            try:
                cursor = connection.cursor()
                try:
                    cursor.execute(_PG_POST_BATCH, params)
                    rows = cursor.fetchall()
                finally:
                    cursor.close()
            except (psycopg2.errors.UniqueViolation, psycopg2.errors.DeadlockDetected):
                # A retry of one of these posts committed while we waited for a room lock
                # (our snapshot predates it). The statement wrote nothing and took no seq;
                # on a fresh snapshot that post is found as already posted.
                connection.close()
                continue
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                # A dead connection (database restarted, connection killed): drop it and every
                # other pooled one of its age, like SQLAlchemy does for sessions; the caller retries.
                connection.invalidate(exc)
                autocommit.dispose()
                raise Unavailable("The rooms database is not answering.", retry_after=2) from None
            except BaseException:  # e.g. the worker killed mid-query: the connection's state is unknown
                connection.invalidate()
                raise
            connection.close()
            return self._batch_outcomes(posts, message_ids, rows, now)
        raise Unavailable("The rooms database is too busy; try again.", retry_after=1)

    def _batch_outcomes(self, posts: list[NewPost], message_ids: list[str], rows, now
                        ) -> tuple[list[dict | ParleyError], list[Event]]:
        if len(rows) != len(posts):
            raise RuntimeError(f"post batch: {len(rows)} rows for {len(posts)} posts")
        rosters = {post.room_id: list(row[4]) for post, row in zip(posts, rows) if row[4]}
        outcomes: list[dict | ParleyError] = []
        events: list[Event] = []
        read_existing = False
        for post, message_id, row in zip(posts, message_ids, rows):
            kind, is_member, existing_id, seq, _roster, username, display_name = row
            if kind is None or (not is_member and kind != PUBLIC):
                outcomes.append(_no_such_room())
            elif not is_member:
                outcomes.append(Forbidden("Join this room first."))
            elif existing_id is not None:
                outcomes.append({"message": self.message(post.room_id, existing_id),
                                 "created": False})
                read_existing = True
            else:
                message = _new_message(post, message_id, seq, now, username, display_name)
                outcomes.append({"message": message, "created": True})
                self.outbox.adopt([message_id])  # the statement wrote its outbox row
                events.append(("message_posted", {"message": message,
                                                  "member_ids": rosters.get(post.room_id, [])}))
        if read_existing:
            self.s.rollback()  # end the read-only transaction those lookups opened
        return outcomes, events

    def message(self, room_id: str, message_id: str) -> dict:
        row = self.s.execute(MESSAGE_WITH_AUTHOR.where(messages.c.id == message_id,
                                                       messages.c.room_id == room_id)).first()
        if row is None:
            raise NotFound("No such message.", {"message_id": "no such message"})
        return _message_from_joined(row)

    def list_messages(self, user_id: str, room_id: str, before_seq: int | None,
                      after_seq: int | None, limit: int) -> dict:
        access = self.access(user_id, room_id, need_member=True)
        statement = MESSAGE_WITH_AUTHOR.where(messages.c.room_id == room_id)
        if after_seq is not None:
            statement = statement.where(messages.c.seq > after_seq).order_by(messages.c.seq)
        else:
            if before_seq is not None:
                statement = statement.where(messages.c.seq < before_seq)
            statement = statement.order_by(messages.c.seq.desc())
        rows = list(self.s.execute(statement.limit(limit + 1)))
        has_more = len(rows) > limit
        rows = rows[:limit]
        if after_seq is None:
            rows.reverse()
        self.s.rollback()
        # The room's newest seq too, so a WebSocket subscribe needs this one call (a post that
        # committed between the two reads shows in the page: take whichever is newer).
        last_seq = max([access.room.last_seq, *(row.seq for row in rows)])
        return {"messages": [_message_from_joined(row) for row in rows], "has_more": has_more,
                "last_seq": last_seq}

    def edit_message(self, user_id: str, room_id: str, message_id: str,
                     text: str) -> tuple[dict, list[Event]]:
        self.access(user_id, room_id, need_member=True)
        row = self.s.execute(select(messages).where(messages.c.id == message_id,
                                                    messages.c.room_id == room_id)).first()
        if row is None:
            raise NotFound("No such message.", {"message_id": "no such message"})
        if row.author_id != user_id:
            raise Forbidden("Only the author may edit a message.")
        if row.deleted_at is not None:
            raise Conflict("A deleted message cannot be edited.")
        if row.text == text:  # a repeated edit: nothing changes, nobody needs telling
            message = self.message(room_id, message_id)
            self.s.rollback()
            return message, []
        self.s.execute(update(messages).where(messages.c.id == message_id)
                       .values(text=text, edited_at=utcnow()))
        message = self.message(room_id, message_id)
        events = [("message_edited", {"message": message, "member_ids": self.member_ids(room_id)})]
        self.outbox.commit(events)
        return message, events

    def delete_message(self, user_id: str, room_id: str, message_id: str) -> list[Event]:
        access = self.access(user_id, room_id, need_member=True)
        row = self.s.execute(select(messages).where(messages.c.id == message_id,
                                                    messages.c.room_id == room_id)).first()
        if row is None:
            raise NotFound("No such message.", {"message_id": "no such message"})
        if row.author_id != user_id and not access.is_owner:
            raise Forbidden("Only the author or the room's owner may delete a message.")
        if row.deleted_at is not None:  # already a tombstone
            self.s.rollback()
            return []
        done = self.s.execute(update(messages).where(messages.c.id == message_id,
                                                     messages.c.deleted_at.is_(None))
                              .values(text="", deleted_at=utcnow()))
        if done.rowcount == 0:  # a concurrent delete won
            self.s.rollback()
            return []
        events = [("message_deleted", {"room_id": room_id, "message_id": message_id, "seq": row.seq,
                                       "member_ids": self.member_ids(room_id)})]
        self.outbox.commit(events)
        return events

    # --- read state -------------------------------------------------------------------------

    def unread_counts(self, user_id: str, room_ids: list[str]) -> dict[str, int]:
        """Messages after the member's read marker that are neither theirs nor deleted."""
        if not room_ids:
            return {}
        rows = self.s.execute(
            select(messages.c.room_id, func.count())
            .select_from(messages.join(memberships, and_(memberships.c.room_id == messages.c.room_id,
                                                         memberships.c.user_id == user_id)))
            .where(messages.c.room_id.in_(room_ids), messages.c.seq > memberships.c.last_read_seq,
                   messages.c.author_id != user_id, messages.c.deleted_at.is_(None))
            .group_by(messages.c.room_id))
        return {room_id: count for room_id, count in rows}

    def mark_read(self, user_id: str, room_id: str, seq: int) -> tuple[dict, list[Event]]:
        access = self.access(user_id, room_id, need_member=True)
        target = min(seq, access.room.last_seq)  # never past the room's newest message
        events: list[Event] = []
        if target > access.member.last_read_seq:
            moved = self.s.execute(
                update(memberships)
                .where(memberships.c.room_id == room_id, memberships.c.user_id == user_id,
                       memberships.c.last_read_seq < target)  # forward only, even when racing
                .values(last_read_seq=target)).rowcount == 1
            if moved:
                events.append(("messages_read", {"room_id": room_id, "user_id": user_id,
                                                 "seq": target, "member_ids": self.member_ids(room_id)}))
            self.outbox.commit(events)
        last_read = self.s.execute(select(memberships.c.last_read_seq).where(
            memberships.c.room_id == room_id, memberships.c.user_id == user_id)).scalar()
        if last_read is None:  # left meanwhile
            raise NotFound("No such room.", {"room_id": "no such room"})
        unread = self.unread_counts(user_id, [room_id]).get(room_id, 0)
        self.s.rollback()
        return {"room_id": room_id, "last_read_seq": last_read, "unread_count": unread}, events

    def list_conversations(self, user_id: str, limit: int, cursor: list | None) -> dict:
        statement = (select(rooms, memberships.c.muted)
                     .join(memberships, and_(memberships.c.room_id == rooms.c.id,
                                             memberships.c.user_id == user_id)))
        page, next_cursor = self._by_activity(statement, limit, cursor)
        room_ids = [row.id for row in page]
        counts = self.member_counts(room_ids)
        unread = self.unread_counts(user_id, room_ids)
        newest = [and_(messages.c.room_id == row.id, messages.c.seq == row.last_seq)
                  for row in page if row.last_seq > 0]
        last_messages = {}
        if newest:
            last_messages = {row.room_id: _message_from_joined(row)
                             for row in self.s.execute(MESSAGE_WITH_AUTHOR.where(or_(*newest)))}
        self.s.rollback()
        return {
            "conversations": [{"room": room_dict(row, counts.get(row.id, 0)),
                               "last_message": last_messages.get(row.id),
                               "unread_count": unread.get(row.id, 0),
                               "muted": bool(row.muted)} for row in page],
            "next_cursor": next_cursor,
        }


# Session.info key under which RoomsDatabase hands the store its autocommit engine.
AUTOCOMMIT_ENGINE = "rooms_autocommit_engine"

# How often a post batch is re-run after a unique violation (a racing retry of one of its
# posts committed first) before the caller is told to try again.
POST_ATTEMPTS = 3

# A whole post batch in one statement = one transaction on an autocommit connection.
# - `locked` takes the row lock of every room of the batch, in id order: concurrent batches
#   (any replica) that share rooms queue up in the same order, so they cannot deadlock, and
#   the lock orders posters of a room: each reads the last_seq its predecessor committed
#   (FOR UPDATE returns the newest row version after waiting).
# - `probe` checks membership and an earlier message with the same (author, client_id);
#   `fresh` numbers the accepted posts of each room on from that room's last_seq, in batch
#   order; then the seq bump, the inserts and the authors' read markers.
# - Every CTE reads the snapshot of the statement's start. If a racing retry of one of these
#   posts committed while we waited for a lock, the insert hits the unique constraint and the
#   whole statement is undone (no seq taken, no gap); the caller re-runs it on a fresh snapshot.
# - One row per post, in batch order; the first row of each room carries its member ids.
_PG_POST_BATCH = """
WITH input AS MATERIALIZED (
    SELECT * FROM unnest(%(ids)s::text[], %(rooms)s::text[], %(authors)s::text[],
                         %(clients)s::text[], %(texts)s::text[]) WITH ORDINALITY
           AS t(id, room_id, author_id, client_id, text, ord)
), locked AS MATERIALIZED (
    SELECT id, kind, last_seq FROM rooms
     WHERE id IN (SELECT room_id FROM input)
     ORDER BY id FOR UPDATE
), probe AS MATERIALIZED (
    SELECT i.*, l.kind, l.last_seq AS base_seq,
           EXISTS (SELECT 1 FROM memberships m
                    WHERE m.room_id = i.room_id AND m.user_id = i.author_id) AS is_member,
           (SELECT x.id FROM messages x
             WHERE x.room_id = i.room_id AND x.author_id = i.author_id
               AND x.client_id = i.client_id) AS existing_id
      FROM input i LEFT JOIN locked l ON l.id = i.room_id
), fresh AS MATERIALIZED (
    SELECT p.ord, p.id, p.room_id, p.author_id, p.client_id, p.text,
           p.base_seq + row_number() OVER (PARTITION BY p.room_id ORDER BY p.ord) AS seq
      FROM probe p
     WHERE p.kind IS NOT NULL AND p.is_member AND p.existing_id IS NULL
), bump AS (
    UPDATE rooms r SET last_seq = f.top, last_activity_at = %(now)s
      FROM (SELECT room_id, max(seq) AS top FROM fresh GROUP BY room_id) f
     WHERE r.id = f.room_id
), posted AS (
    INSERT INTO messages (id, room_id, seq, author_id, text, client_id, created_at)
    SELECT id, room_id, seq, author_id, text, client_id, %(now)s FROM fresh
), outboxed AS (
    INSERT INTO outbox (id, event_type, position, created_at)
    SELECT id, 'message_posted', ord, %(now)s FROM fresh
), marked AS (
    UPDATE memberships m SET last_read_seq = GREATEST(m.last_read_seq, f.top)
      FROM (SELECT room_id, author_id, max(seq) AS top FROM fresh
             GROUP BY room_id, author_id) f
     WHERE m.room_id = f.room_id AND m.user_id = f.author_id
), released AS (
    DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE id = ANY(%(released)s::text[])
                                    FOR UPDATE SKIP LOCKED)
), roster AS (
    SELECT room_id, array_agg(user_id ORDER BY joined_at, user_id) AS member_ids
      FROM memberships WHERE room_id IN (SELECT room_id FROM fresh)
     GROUP BY room_id
)
SELECT p.kind, p.is_member, p.existing_id, f.seq,
       CASE WHEN p.ord = min(p.ord) OVER (PARTITION BY p.room_id) THEN r.member_ids END,
       u.username, u.display_name
  FROM probe p
  LEFT JOIN fresh f ON f.ord = p.ord
  LEFT JOIN roster r ON r.room_id = p.room_id
  LEFT JOIN users u ON u.id = p.author_id
 ORDER BY p.ord
"""


@dataclass(frozen=True)
class NewPost:
    """A post as the caller gave it (validated): `user_id` is the author."""
    user_id: str
    room_id: str
    text: str
    client_id: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.user_id, self.room_id, self.client_id)


def _new_message(post: NewPost, message_id: str, seq: int, now: datetime,
                 username: str | None, display_name: str | None) -> dict:
    return {
        "id": message_id, "room_id": post.room_id, "seq": seq,
        "author": {"id": post.user_id, "username": username, "display_name": display_name},
        "text": post.text, "client_id": post.client_id, "created_at": iso(now),
        "edited_at": None, "deleted": False,
    }


def _no_such_room() -> NotFound:
    return NotFound("No such room.", {"room_id": "no such room"})


@dataclass
class _Member:
    user_id: str
    role: str
    joined_at: Any
    last_read_seq: int
    muted: bool


def _room_exists() -> Conflict:
    return Conflict("A public room with that name already exists.",
                    {"name": "is taken by another public room"}, code="room_exists")


def _bad_cursor() -> ValidationFailed:
    return ValidationFailed(details={"cursor": "is not a cursor this listing handed out"})
