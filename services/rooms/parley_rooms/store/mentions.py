"""@mentions: which members a message names, the mentions table, mention counts and the
Mentions listing.

Rules (documented in services/rooms/README.md "Mentions"):
- A mention is ``@`` + a username (parley_common.limits.USERNAME_PATTERN's characters) not
  preceded by a username character (so e-mail addresses are not mentions), matched
  case-insensitively (usernames are unique case-insensitively) against the room's members at
  the time of the post or edit. A token that names nobody is left as text; so is a token
  inside a code span (`...`) or a code block (```...```), as the clients render those
  literally. Trailing dots and dashes (end of a sentence) are tried off when the whole token
  names nobody.
- The author never mentions themself; non-members are never mentioned.
- An edit re-resolves: the stored mentions become the edit's, and only users the edit newly
  mentions are notified (``new_mentions`` of message_edited); a user mentioned already is
  not notified twice, and a mention taken out disappears from counts and listings.
"""
from __future__ import annotations

import re

from sqlalchemy import and_, delete, func, insert, select

from parley_common.limits import MAX_USERNAME, MIN_USERNAME
from parley_common.timeutil import aware, parse_iso

from ..models import memberships, mentions, messages, rooms, users
from ..validation import encode_cursor
from .access import RoomAccess
from .base import bad_cursor, read_only
from .rendering import MESSAGE_WITH_AUTHOR, message_from_joined

_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`", re.DOTALL)
_TOKEN = re.compile(r"(?<![A-Za-z0-9_.@-])@([A-Za-z0-9_.-]+)")
_MAX_NAMES = 50  # distinct names looked up per message: a message of 4000 @s stays cheap


def mentioned_names(text: str) -> list[str]:
    """The lower-cased usernames ``text`` may mention, in order of appearance, each once; a
    token ending in dots or dashes also yields its trimmed form."""
    if "@" not in text:  # most posts: no regular expression to run
        return []
    names: list[str] = []
    for token in _TOKEN.findall(_CODE.sub(" ", text)):
        for name in (token, token.rstrip(".-")):
            name = name.lower()
            if MIN_USERNAME <= len(name) <= MAX_USERNAME and name not in names:
                names.append(name)
        if len(names) >= _MAX_NAMES:
            break
    return names[:_MAX_NAMES]


class Mentions(RoomAccess):
    def resolve_mentions(self, room_id: str, author_id: str, text: str) -> list[str]:
        """The ids of the room's members (not the author) that ``text`` mentions. (The
        PostgreSQL post statement does the same in SQL: postgres_posting.py, ``named``.)"""
        names = mentioned_names(text)
        if not names:
            return []
        rows = self.session.execute(
            select(users.c.id, func.lower(users.c.username))
            .join(memberships, and_(memberships.c.user_id == users.c.id,
                                    memberships.c.room_id == room_id))
            .where(func.lower(users.c.username).in_(names), users.c.deleted.is_(False),
                   users.c.id != author_id))
        by_name = {name: user_id for user_id, name in rows}
        return sorted(set(by_name.values()))  # in id order, as mentions_of and PostgreSQL

    def store_mentions(self, message_id: str, room_id: str, seq: int, user_ids: list[str]) -> None:
        """Insert the mentions of a new message (in the caller's transaction)."""
        if user_ids:
            self.session.execute(insert(mentions), [
                {"message_id": message_id, "user_id": user_id, "room_id": room_id, "seq": seq}
                for user_id in user_ids])

    def replace_mentions(self, message_id: str, room_id: str, seq: int,
                         user_ids: list[str]) -> list[str]:
        """An edit: the message's mentions become ``user_ids``; answers those that are new."""
        before = set(self.session.execute(select(mentions.c.user_id).where(
            mentions.c.message_id == message_id)).scalars())
        gone = before - set(user_ids)
        if gone:
            self.session.execute(delete(mentions).where(mentions.c.message_id == message_id,
                                                        mentions.c.user_id.in_(gone)))
        added = [user_id for user_id in user_ids if user_id not in before]
        self.store_mentions(message_id, room_id, seq, added)
        return added

    def mentions_of(self, message_ids: list[str]) -> dict[str, list[str]]:
        """message id -> the ids it mentions (messages mentioning nobody are absent)."""
        if not message_ids:
            return {}
        found: dict[str, list[str]] = {}
        for message_id, user_id in self.session.execute(
                select(mentions.c.message_id, mentions.c.user_id)
                .where(mentions.c.message_id.in_(message_ids))
                .order_by(mentions.c.message_id, mentions.c.user_id)):
            found.setdefault(message_id, []).append(user_id)
        return found

    def with_mentions(self, rendered: list[dict]) -> list[dict]:
        """Fill in ``mentions`` of rendered messages (in place; answers the same list)."""
        of = self.mentions_of([message["id"] for message in rendered if not message["deleted"]])
        for message in rendered:
            message["mentions"] = of.get(message["id"], [])
        return rendered

    def mention_counts(self, user_id: str, room_ids: list[str]) -> dict[str, int]:
        """Mentions of the user after their read marker, per room (deleted messages not)."""
        if not room_ids:
            return {}
        rows = self.session.execute(
            select(mentions.c.room_id, func.count())
            .select_from(mentions.join(memberships, and_(
                memberships.c.room_id == mentions.c.room_id,
                memberships.c.user_id == mentions.c.user_id))
                .join(messages, messages.c.id == mentions.c.message_id))
            .where(mentions.c.user_id == user_id, mentions.c.room_id.in_(room_ids),
                   mentions.c.seq > memberships.c.last_read_seq,
                   messages.c.deleted_at.is_(None))
            .group_by(mentions.c.room_id))
        return {room_id: count for room_id, count in rows}

    @read_only
    def list_mentions(self, user_id: str, limit: int, cursor: list | None) -> dict:
        """The messages mentioning the user, newest first, in rooms they are a member of now;
        ``cursor``: the (created_at, message id) key a previous page handed out."""
        statement = (
            MESSAGE_WITH_AUTHOR.add_columns(rooms.c.name.label("room_name"),
                                            rooms.c.kind.label("room_kind"),
                                            memberships.c.last_read_seq)
            .join(mentions, and_(mentions.c.message_id == messages.c.id,
                                 mentions.c.user_id == user_id))
            .join(memberships, and_(memberships.c.room_id == messages.c.room_id,
                                    memberships.c.user_id == user_id))
            .join(rooms, rooms.c.id == messages.c.room_id)
            .where(messages.c.deleted_at.is_(None)))
        if cursor is not None:
            moment, message_id = parse_iso(cursor[0]), cursor[1]
            if moment is None:
                raise bad_cursor()
            statement = statement.where(
                (messages.c.created_at < moment)
                | and_(messages.c.created_at == moment, messages.c.id < message_id))
        rows = list(self.session.execute(
            statement.order_by(messages.c.created_at.desc(), messages.c.id.desc())
            .limit(limit + 1)))
        page = rows[:limit]
        rendered = self.with_mentions([message_from_joined(row) for row in page])
        items = [{"message": message, "room": {"id": row.room_id, "name": row.room_name or "",
                                                "kind": row.room_kind},
                  "unread": row.seq > row.last_read_seq}
                 for message, row in zip(rendered, page)]
        next_cursor = None
        if len(rows) > limit:
            last = page[-1]
            next_cursor = encode_cursor(aware(last.created_at).isoformat(), last.id)
        return {"mentions": items, "next_cursor": next_cursor}
