"""Messages once posted: read a page of history, edit, delete (a tombstone keeps its seq).
Posting is posting.py (SQLite) and postgres_posting.py (PostgreSQL)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from parley_common.errors import Conflict, Forbidden
from parley_common.outbox import Event
from parley_common.timeutil import utcnow

from ..models import messages
from .base import no_such_message, operation, read_only, room_archived
from .mentions import Mentions
from .reaction_counts import with_reactions
from .posted import posted_event
from .rendering import MESSAGE_WITH_AUTHOR, message_from_joined


@dataclass(frozen=True)
class NewPost:
    """A post as the caller gave it (validated): `user_id` is the author."""
    user_id: str
    room_id: str
    text: str
    client_id: str
    reply_to: str | None = None  # the id of a message of the same room

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.user_id, self.room_id, self.client_id)


class Messages(Mentions):
    def _rebuild_posted(self, row) -> Event | None:
        """A relayed message_posted row: a messages_posted of that one message (the relay
        merges consecutive ones, posted.merge_posted), as it is now, to its members now;
        nothing if it went with its room."""
        room_id = self.session.execute(
            select(messages.c.room_id).where(messages.c.id == row.id)).scalar()
        if room_id is None:
            return None
        (event,) = posted_event([(self.message(room_id, row.id), self.member_ids(room_id))])
        return event

    def message(self, room_id: str, message_id: str) -> dict:
        row = self.session.execute(MESSAGE_WITH_AUTHOR.where(messages.c.id == message_id,
                                                             messages.c.room_id == room_id)).first()
        if row is None:
            raise no_such_message()
        return with_reactions(self.session, self.with_mentions([message_from_joined(row)]))[0]

    @read_only
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
        rows = list(self.session.execute(statement.limit(limit + 1)))
        has_more = len(rows) > limit
        rows = rows[:limit]
        if after_seq is None:
            rows.reverse()
        # The room's newest seq too, so a WebSocket subscribe needs this one call (a post that
        # committed between the two reads shows in the page: take whichever is newer).
        last_seq = max([access.room.last_seq, *(row.seq for row in rows)])
        page = with_reactions(self.session, self.with_mentions(
            [message_from_joined(row) for row in rows]), user_id)
        return {"messages": page, "has_more": has_more,
                "last_seq": last_seq}

    def _message_row(self, room_id: str, message_id: str):
        row = self.session.execute(select(messages).where(messages.c.id == message_id,
                                                          messages.c.room_id == room_id)).first()
        if row is None:
            raise no_such_message()
        return row

    @operation
    def edit_message(self, user_id: str, room_id: str, message_id: str,
                     text: str) -> tuple[dict, list[Event]]:
        if self.access(user_id, room_id, need_member=True).room.archived_at is not None:
            raise room_archived()
        row = self._message_row(room_id, message_id)
        if row.author_id != user_id:
            raise Forbidden("Only the author may edit a message.")
        if row.deleted_at is not None:
            raise Conflict("A deleted message cannot be edited.")
        if row.text == text:  # a repeated edit: nothing changes, nobody needs telling
            return self.message(room_id, message_id), []
        self.session.execute(update(messages).where(messages.c.id == message_id)
                             .values(text=text, edited_at=utcnow()))
        new_mentions = self.replace_mentions(message_id, room_id, row.seq,
                                             self.resolve_mentions(room_id, user_id, text))
        message = self.message(room_id, message_id)
        # new_mentions: whom this edit mentions for the first time (they get a mention frame)
        events = [("message_edited", {"message": message, "member_ids": self.member_ids(room_id),
                                      "new_mentions": new_mentions})]
        self.outbox.commit(events)
        return message, events

    @operation
    def delete_message(self, user_id: str, room_id: str, message_id: str) -> list[Event]:
        access = self.access(user_id, room_id, need_member=True)
        row = self._message_row(room_id, message_id)
        if row.author_id != user_id and not access.is_owner:
            raise Forbidden("Only the author or the room's owner may delete a message.")
        if access.room.archived_at is not None:
            raise room_archived()
        if row.deleted_at is not None:  # already a tombstone
            return []
        done = self.session.execute(update(messages).where(messages.c.id == message_id,
                                                           messages.c.deleted_at.is_(None))
                                    .values(text="", deleted_at=utcnow()))
        if done.rowcount == 0:  # a concurrent delete won
            return []
        events = [("message_deleted", {"room_id": room_id, "message_id": message_id, "seq": row.seq,
                                       "member_ids": self.member_ids(room_id)})]
        self.outbox.commit(events)
        return events
