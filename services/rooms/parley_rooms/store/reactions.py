"""Emoji reactions to messages: one per (message, emoji, user), added and removed
idempotently (a repeated add or a remove of nothing changes nothing and tells nobody).
Members only; an archived room or a deleted message takes none."""
from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from parley_common.errors import Conflict
from parley_common.limits import MAX_REACTIONS_PER_MESSAGE
from parley_common.outbox import Event
from parley_common.timeutil import utcnow

from ..models import message_reactions as reactions
from .base import operation, room_archived
from .messages import Messages
from .reaction_counts import reaction_counts


class Reactions(Messages):
    def _reactable(self, user_id: str, room_id: str, message_id: str):
        """The message's row, if the caller may react to it now."""
        if self.access(user_id, room_id, need_member=True).room.archived_at is not None:
            raise room_archived()
        row = self._message_row(room_id, message_id)
        if row.deleted_at is not None:
            raise Conflict("A deleted message takes no reactions.",
                           {"message_id": "is deleted"})
        return row

    def _reaction_change(self, event_type: str, row, user_id: str, emoji: str
                         ) -> tuple[dict, list[Event]]:
        """Commit the change with its event; answer the message's counts as the caller sees
        them. The event carries everyone's counts and who reacted (clients keep their own
        ``me`` from ``user_id``)."""
        counts = reaction_counts(self.session, [row.id]).get(row.id, [])
        events = [(event_type, {"room_id": row.room_id, "message_id": row.id, "seq": row.seq,
                                "emoji": emoji, "user_id": user_id, "reactions": counts,
                                "member_ids": self.member_ids(row.room_id)})]
        self.outbox.commit(events)
        return self._answer(row, user_id), events

    def _answer(self, row, user_id: str) -> dict:
        return {"room_id": row.room_id, "message_id": row.id,
                "reactions": reaction_counts(self.session, [row.id], user_id).get(row.id, [])}

    @operation
    def add_reaction(self, user_id: str, room_id: str, message_id: str,
                     emoji: str) -> tuple[dict, list[Event]]:
        row = self._reactable(user_id, room_id, message_id)
        present = set(self.session.execute(
            select(reactions.c.emoji).where(reactions.c.message_id == message_id)
            .group_by(reactions.c.emoji)).scalars())
        if emoji not in present and len(present) >= MAX_REACTIONS_PER_MESSAGE:
            raise Conflict(f"A message takes at most {MAX_REACTIONS_PER_MESSAGE} different "
                           "emoji.", {"emoji": "too many different emoji on this message"},
                           code="too_many_reactions")
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        added = self.session.execute(
            insert(reactions).values(message_id=message_id, emoji=emoji, user_id=user_id,
                                     created_at=utcnow())
            .on_conflict_do_nothing()).rowcount
        if not added:  # already there (a repeat, or a racing twin committed first)
            return self._answer(row, user_id), []
        return self._reaction_change("reaction_added", row, user_id, emoji)

    @operation
    def remove_reaction(self, user_id: str, room_id: str, message_id: str,
                        emoji: str) -> tuple[dict, list[Event]]:
        row = self._reactable(user_id, room_id, message_id)
        removed = self.session.execute(delete(reactions).where(
            reactions.c.message_id == message_id, reactions.c.emoji == emoji,
            reactions.c.user_id == user_id)).rowcount
        if not removed:
            return self._answer(row, user_id), []
        return self._reaction_change("reaction_removed", row, user_id, emoji)

