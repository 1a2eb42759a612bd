"""Posting: a batch of posts in, one answer per post out. PostgreSQL takes the whole batch in
one statement (postgres_posting.py); SQLite posts them one transaction each (_post_one)."""
from __future__ import annotations

from sqlalchemy import and_, case, insert, select, update
from sqlalchemy.exc import IntegrityError

from parley_common.errors import Forbidden, ParleyError
from parley_common.ids import new_id
from parley_common.outbox import Event
from parley_common.timeutil import iso, utcnow

from ..models import memberships, messages, outbox, rooms, users
from .base import PUBLIC, no_such_room, not_a_reply_target, operation, room_archived
from .messages import NewPost
from .postgres_posting import PostgresPosting
from .posted import posted_event
from .rendering import new_message, reply_summary


class Posting(PostgresPosting):
    @operation
    def post_messages(self, posts: list[NewPost]) -> tuple[list[dict | ParleyError], list[Event]]:
        """Post a batch. Answers, in the order given, `{"message", "created"}` or the error that
        refused that post (one refused post does not fail the others), and the one
        messages_posted event of the new messages (posted.py). A repeated (author, room, client_id), whether posted
        earlier or repeated within the batch, answers the first message with created false."""
        keys = [post.key for post in posts]
        first_of: dict[tuple, int] = {}
        distinct: list[NewPost] = []
        for post, key in zip(posts, keys):
            if key not in first_of:
                first_of[key] = len(distinct)
                distinct.append(post)
        if self.autocommit is not None:  # PostgreSQL: one statement per batch
            outcomes, events = self._post_batch_postgresql(self.autocommit, distinct)
        else:
            outcomes, events = self._post_each(distinct)
        if len(distinct) == len(posts):  # the usual batch: no post repeated within it
            return outcomes, events
        answers: list[dict | ParleyError] = []
        answered: set[tuple] = set()
        for key in keys:
            outcome = outcomes[first_of[key]]
            if key in answered and isinstance(outcome, dict):
                outcome = {"message": outcome["message"], "created": False}
            answered.add(key)
            answers.append(outcome)
        return answers, events

    def _post_each(self, posts: list[NewPost]) -> tuple[list[dict | ParleyError], list[Event]]:
        outcomes: list[dict | ParleyError] = []
        posted: list[tuple[dict, list]] = []
        for post in posts:
            try:
                message, created, member_ids = self._post_one(post)
            except ParleyError as exc:
                outcomes.append(exc)
                continue
            outcomes.append({"message": message, "created": created})
            if created:
                posted.append((message, member_ids))
        return outcomes, posted_event(posted)

    def _post_one(self, post: NewPost) -> tuple[dict, bool, list]:
        """One transaction on the session (SQLite): bump rooms.last_seq (the row lock orders
        concurrent posters of a room; a rollback hands the number back, so seqs have no gaps),
        insert, move the author's read marker, commit. Answers the message, whether this call
        created it, and the room's member ids ([] for an earlier message)."""
        user_id, room_id, text, client_id = post.user_id, post.room_id, post.text, post.client_id
        probe = self.session.execute(
            select(rooms.c.kind, rooms.c.archived_at,
                   memberships.c.user_id.label("member_user_id"),
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
            raise no_such_room()
        if probe.member_user_id is None:
            raise Forbidden("Join this room first.")
        if probe.existing_id is not None:
            existing = self.message(room_id, probe.existing_id)
            self.session.rollback()  # the next post of the batch starts afresh
            return existing, False, []
        if probe.archived_at is not None:
            raise room_archived()
        reply_to = self._reply_to(post)
        member_ids = self.member_ids(room_id)
        mentioned = self.resolve_mentions(room_id, user_id, text)
        now = utcnow()
        seq = self.session.execute(
            update(rooms).where(rooms.c.id == room_id)
            .values(last_seq=rooms.c.last_seq + 1, last_activity_at=now)
            .returning(rooms.c.last_seq)).scalar()
        if seq is None:  # deleted under our feet
            self.session.rollback()
            raise no_such_room()
        message_id = new_id()
        try:
            self.session.execute(insert(messages).values(
                id=message_id, room_id=room_id, seq=seq, author_id=user_id, text=text,
                client_id=client_id, created_at=now, edited_at=None, deleted_at=None,
                reply_to_id=post.reply_to))
            self.store_mentions(message_id, room_id, seq, mentioned)
            self.session.execute(
                update(memberships)
                .where(memberships.c.room_id == room_id, memberships.c.user_id == user_id)
                .values(last_read_seq=case((memberships.c.last_read_seq < seq, seq),
                                           else_=memberships.c.last_read_seq)))
            # Like the PostgreSQL statement: a payload-less row, rebuilt from the message if relayed.
            self.session.execute(insert(outbox).values(id=message_id, event_type="message_posted",
                                                       payload=None, position=0, created_at=now))
            self.session.commit()
        except IntegrityError:  # the same client_id raced us and won: that message is the answer
            self.session.rollback()
            existing_id = self.session.execute(select(messages.c.id).where(
                messages.c.room_id == room_id, messages.c.author_id == user_id,
                messages.c.client_id == client_id)).scalar()
            if existing_id is None:
                raise
            existing = self.message(room_id, existing_id)
            self.session.rollback()
            return existing, False, []
        self.outbox.adopt([message_id])
        message = new_message(post, message_id, seq, iso(now), probe.username, probe.display_name,
                              mentioned, reply_to)
        return message, True, member_ids

    def _reply_to(self, post: NewPost) -> dict | None:
        """The quoted original of a reply (reply_summary); refused unless it is a message of
        the post's room."""
        if post.reply_to is None:
            return None
        original = self.session.execute(
            select(messages.c.seq, messages.c.author_id, messages.c.text, messages.c.deleted_at,
                   users.c.username, users.c.display_name)
            .select_from(messages.outerjoin(users, users.c.id == messages.c.author_id))
            .where(messages.c.id == post.reply_to, messages.c.room_id == post.room_id)).first()
        if original is None:
            raise not_a_reply_target()
        return reply_summary(post.reply_to, original.seq, original.author_id, original.username,
                             original.display_name, original.text, original.deleted_at)
