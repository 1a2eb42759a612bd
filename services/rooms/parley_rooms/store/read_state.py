"""Read state: each member's read marker, unread counts, and the conversation list built on
them."""
from __future__ import annotations

from sqlalchemy import and_, func, or_, select, update

from parley_common.outbox import Event

from ..models import memberships, messages, rooms
from .base import no_such_room, operation
from .reaction_counts import with_reactions
from .rendering import MESSAGE_WITH_AUTHOR, message_from_joined, room_dict
from .rooms import Rooms


class ReadState(Rooms):
    def unread_counts(self, user_id: str, room_ids: list[str]) -> dict[str, int]:
        """Messages after the member's read marker that are neither theirs nor deleted."""
        if not room_ids:
            return {}
        rows = self.session.execute(
            select(messages.c.room_id, func.count())
            .select_from(messages.join(memberships, and_(memberships.c.room_id == messages.c.room_id,
                                                         memberships.c.user_id == user_id)))
            .where(messages.c.room_id.in_(room_ids), messages.c.seq > memberships.c.last_read_seq,
                   messages.c.author_id != user_id, messages.c.deleted_at.is_(None))
            .group_by(messages.c.room_id))
        return {room_id: count for room_id, count in rows}

    @operation
    def mark_read(self, user_id: str, room_id: str, seq: int) -> tuple[dict, list[Event]]:
        access = self.access(user_id, room_id, need_member=True)
        target = min(seq, access.room.last_seq)  # never past the room's newest message
        events: list[Event] = []
        if target > access.member.last_read_seq:
            moved = self.session.execute(
                update(memberships)
                .where(memberships.c.room_id == room_id, memberships.c.user_id == user_id,
                       memberships.c.last_read_seq < target)  # forward only, even when racing
                .values(last_read_seq=target)).rowcount == 1
            if moved:
                events.append(("messages_read", {"room_id": room_id, "user_id": user_id,
                                                 "seq": target, "member_ids": self.member_ids(room_id)}))
            self.outbox.commit(events)
        last_read = self.session.execute(select(memberships.c.last_read_seq).where(
            memberships.c.room_id == room_id, memberships.c.user_id == user_id)).scalar()
        if last_read is None:  # left meanwhile
            raise no_such_room()
        unread = self.unread_counts(user_id, [room_id]).get(room_id, 0)
        mentioned = self.mention_counts(user_id, [room_id]).get(room_id, 0)
        return {"room_id": room_id, "last_read_seq": last_read, "unread_count": unread,
                "mention_count": mentioned}, events

    @operation
    def list_conversations(self, user_id: str, limit: int, cursor: list | None) -> dict:
        statement = (select(rooms, memberships.c.muted)
                     .join(memberships, and_(memberships.c.room_id == rooms.c.id,
                                             memberships.c.user_id == user_id)))
        page, next_cursor = self._by_activity(statement, limit, cursor)
        room_ids = [row.id for row in page]
        counts = self.member_counts(room_ids)
        unread = self.unread_counts(user_id, room_ids)
        mentioned = self.mention_counts(user_id, room_ids)
        newest = [and_(messages.c.room_id == row.id, messages.c.seq == row.last_seq)
                  for row in page if row.last_seq > 0]
        last_messages = {}
        if newest:
            rendered = self.with_mentions(
                [message_from_joined(row)
                 for row in self.session.execute(MESSAGE_WITH_AUTHOR.where(or_(*newest)))])
            last_messages = {m["room_id"]: m
                             for m in with_reactions(self.session, rendered, user_id)}
        return {
            "conversations": [{"room": room_dict(row, counts.get(row.id, 0)),
                               "last_message": last_messages.get(row.id),
                               "unread_count": unread.get(row.id, 0),
                               "mention_count": mentioned.get(row.id, 0),
                               "muted": bool(row.muted)} for row in page],
            "next_cursor": next_cursor,
        }
