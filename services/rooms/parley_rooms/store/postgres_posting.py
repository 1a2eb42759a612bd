"""Posting on PostgreSQL, the hot path: a whole batch of posts in ONE statement
(_PG_POST_BATCH) on an autocommit connection, which makes the statement its own transaction:
one round trip per batch, no separate COMMIT.

The statement is a server-side prepared statement, PREPAREd once per connection with typed
array parameters and EXECUTEd with one generic plan (plan_cache_mode force_generic_plan on
those connections): the ~5 KB statement is neither parsed nor planned again per batch
(psycopg2 writes the arrays into the text, so every batch was a new text, parsed and planned
from scratch: 1.2 ms of planning alone per 40-post batch). PostgreSQL re-plans it by itself
when a table's statistics or definition change. A generic plan does not know the batch's
size or its values, so every per-post lookup is written to have one sensible plan whatever the
estimates: a LATERAL subquery fenced with OFFSET 0 (not pulled up into a join, which the
planner could turn into a hash join over a whole table) that probes one unique index.
bench/pg_post_batch.py measures it (PostgreSQL CPU per message, EXPLAIN of the generic plan)."""
from __future__ import annotations

from datetime import datetime

from parley_common.errors import Forbidden, ParleyError, Unavailable
from parley_common.ids import new_id
from parley_common.outbox import Event
from parley_common.timeutil import iso, utcnow

from .base import PUBLIC, no_such_room, not_a_reply_target, room_archived
from .mentions import mentioned_names
from .messages import Messages, NewPost
from .posted import posted_event
from .rendering import new_message, reply_summary

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
#   order; then the seq bump, the inserts and the authors' read markers. An archived room
#   takes no post, nor does a reply whose original is not a message of its room (`reply_ok`;
#   the final SELECT brings that original's summary along). `released` deletes the outbox
#   rows of events already confirmed (the process's pending releases,
#   common/parley_common/outbox.py): no statement of their own.
# - `named` resolves the @names each post may mention (mentions.py's mentioned_names, made in
#   Python: (ord, lower-cased name) pairs) against the room's members, not the author, as
#   Mentions.resolve_mentions does; `mentioned` stores them with the message. A post without
#   an @name adds no row to the pairs, so costs nothing here.
# - Every CTE reads the snapshot of the statement's start. If a racing retry of one of these
#   posts committed while we waited for a lock, the insert hits the unique constraint and the
#   whole statement is undone (no seq taken, no gap); the caller re-runs it on a fresh snapshot.
# - Lookups per post (membership, the replied-to original, the authors' names) are LATERAL
#   subqueries with OFFSET 0, each one probe of a unique index (see the module's doc): the
#   original is found by its id alone, then must be of the post's room.
# - One row per post, in batch order; the first row of each room with a fresh post carries its
#   member ids (an ARRAY subquery run for those rows only).
_PG_POST_BATCH = """
WITH input AS MATERIALIZED (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
           WITH ORDINALITY AS t(id, room_id, author_id, client_id, text, reply_to, ord)
), locked AS MATERIALIZED (
    SELECT id, kind, last_seq, archived_at FROM rooms
     WHERE id = ANY($2::text[])
     ORDER BY id FOR UPDATE
), probe AS MATERIALIZED (
    SELECT i.*, l.kind, l.last_seq AS base_seq, l.archived_at IS NOT NULL AS archived,
           m.user_id IS NOT NULL AS is_member,
           (SELECT x.id FROM messages x
             WHERE x.room_id = i.room_id AND x.author_id = i.author_id
               AND x.client_id = i.client_id) AS existing_id,
           (i.reply_to IS NULL OR y.id IS NOT NULL) AS reply_ok,
           y.seq AS reply_seq, y.author_id AS reply_author_id, y.text AS reply_text,
           y.deleted_at AS reply_deleted_at
      FROM input i LEFT JOIN locked l ON l.id = i.room_id
      LEFT JOIN LATERAL (SELECT m.user_id FROM memberships m
                          WHERE m.room_id = i.room_id AND m.user_id = i.author_id
                          OFFSET 0) m ON true
      LEFT JOIN LATERAL (SELECT y.id, y.room_id, y.seq, y.author_id, y.text, y.deleted_at
                           FROM messages y WHERE y.id = i.reply_to OFFSET 0) y
             ON y.room_id = i.room_id
), fresh AS MATERIALIZED (
    SELECT p.ord, p.id, p.room_id, p.author_id, p.client_id, p.text, p.reply_to,
           p.base_seq + row_number() OVER (PARTITION BY p.room_id ORDER BY p.ord) AS seq
      FROM probe p
     WHERE p.kind IS NOT NULL AND p.is_member AND p.existing_id IS NULL AND NOT p.archived
       AND p.reply_ok
), bump AS (
    UPDATE rooms r SET last_seq = f.top, last_activity_at = $7
      FROM (SELECT room_id, max(seq) AS top FROM fresh GROUP BY room_id) f
     WHERE r.id = f.room_id
), posted AS (
    INSERT INTO messages (id, room_id, seq, author_id, text, client_id, created_at, reply_to_id)
    SELECT id, room_id, seq, author_id, text, client_id, $7, reply_to FROM fresh
), outboxed AS (
    INSERT INTO outbox (id, event_type, position, created_at)
    SELECT id, 'message_posted', ord, $7 FROM fresh
), marked AS (
    UPDATE memberships m SET last_read_seq = GREATEST(m.last_read_seq, f.top)
      FROM (SELECT room_id, author_id, max(seq) AS top FROM fresh
             GROUP BY room_id, author_id) f
     WHERE m.room_id = f.room_id AND m.user_id = f.author_id
), candidates AS MATERIALIZED (
    SELECT f.ord, f.id AS message_id, f.room_id, f.seq, f.author_id, n.name
      FROM unnest($8::bigint[], $9::text[]) AS n(ord, name)
      JOIN fresh f ON f.ord = n.ord
), named AS (
    -- from the (usually no) candidates out: the room's members by key, then their names
    SELECT DISTINCT c.ord, c.message_id, c.room_id, c.seq, u.id AS user_id
      FROM candidates c
      JOIN memberships m ON m.room_id = c.room_id
      JOIN users u ON u.id = m.user_id AND lower(u.username) = c.name AND NOT u.deleted
     WHERE u.id <> c.author_id
), mentioned AS (
    INSERT INTO mentions (message_id, user_id, room_id, seq)
    SELECT message_id, user_id, room_id, seq FROM named
), released AS (
    DELETE FROM outbox WHERE ctid = ANY(ARRAY(SELECT ctid FROM outbox WHERE id = ANY($10::text[])
                                              FOR UPDATE SKIP LOCKED))
)
SELECT p.kind, p.is_member, p.existing_id, f.seq,
       CASE WHEN p.ord = min(p.ord) OVER room AND bool_or(f.seq IS NOT NULL) OVER room
            THEN ARRAY(SELECT m.user_id FROM memberships m WHERE m.room_id = p.room_id
                        ORDER BY m.joined_at, m.user_id) END,
       u.username, u.display_name, p.archived,
       ARRAY(SELECT n.user_id FROM named n WHERE n.ord = p.ord ORDER BY n.user_id),
       p.reply_ok, p.reply_seq, p.reply_author_id, yu.username, yu.display_name, p.reply_text,
       p.reply_deleted_at
  FROM probe p
  LEFT JOIN fresh f ON f.ord = p.ord
  LEFT JOIN LATERAL (SELECT u.username, u.display_name FROM users u
                      WHERE u.id = p.author_id OFFSET 0) u ON true
  LEFT JOIN LATERAL (SELECT yu.username, yu.display_name FROM users yu
                      WHERE yu.id = p.reply_author_id OFFSET 0) yu ON true
WINDOW room AS (PARTITION BY p.room_id)
 ORDER BY p.ord
"""
# $1..$10 of _PG_POST_BATCH, in the order _PG_EXECUTE_POST_BATCH passes them. The generic
# plan is forced: with the default (auto) PostgreSQL plans the first five executions for their
# values and may keep doing so, which is the planning this is meant to save.
_PG_PREPARE_POST_BATCH = (
    "SET plan_cache_mode = force_generic_plan; "
    "PREPARE parley_post_batch(text[], text[], text[], text[], text[], text[], timestamptz, "
    f"bigint[], text[], text[]) AS {_PG_POST_BATCH}")
_PG_EXECUTE_POST_BATCH = ("EXECUTE parley_post_batch(%(ids)s, %(rooms)s, %(authors)s, %(clients)s, "
                          "%(texts)s, %(replies)s, %(now)s, %(mention_ords)s, %(mention_names)s, "
                          "%(released)s)")
# The key in a pooled connection's info (it lives as long as the DBAPI connection: a new
# connection after an invalidation prepares again).
_PREPARED = "parley_post_batch_prepared"


class PostgresPosting(Messages):
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
                  "texts": [post.text for post in posts],
                  "replies": [post.reply_to for post in posts], "now": now,
                  "mention_ords": [], "mention_names": [],
                  # outbox rows of events already confirmed: deleted by this same statement
                  "released": self.outbox.take_released()}
        for ord_, post in enumerate(posts, 1):  # WITH ORDINALITY counts from 1
            for name in mentioned_names(post.text):
                params["mention_ords"].append(ord_)
                params["mention_names"].append(name)
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
                    if not connection.info.get(_PREPARED):  # once per connection
                        cursor.execute(_PG_PREPARE_POST_BATCH)
                        connection.info[_PREPARED] = True
                    cursor.execute(_PG_EXECUTE_POST_BATCH, params)
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
        """_PG_POST_BATCH's rows (one per post, in order) -> the answers and the batch's one
        messages_posted event. Per post only what differs: the batch's commit time is
        formatted once, its outbox rows adopted at once."""
        if len(rows) != len(posts):
            raise RuntimeError(f"post batch: {len(rows)} rows for {len(posts)} posts")
        created_at = iso(now)
        # the first row of each room that took a post carries the room's member ids
        rosters = {post.room_id: row[4] for post, row in zip(posts, rows) if row[4]}
        outcomes: list[dict | ParleyError] = []
        posted: list[tuple[dict, list]] = []
        created_ids: list[str] = []
        for post, message_id, row in zip(posts, message_ids, rows):
            kind, is_member, existing_id, seq, _roster, username, display_name, archived = row[:8]
            mentioned, reply_ok, original = row[8], row[9], row[10:]
            if kind is None or (not is_member and kind != PUBLIC):
                outcomes.append(no_such_room())
            elif not is_member:
                outcomes.append(Forbidden("Join this room first."))
            elif existing_id is not None:
                outcomes.append({"message": self.message(post.room_id, existing_id),
                                 "created": False})
            elif archived:
                outcomes.append(room_archived())
            elif not reply_ok:
                outcomes.append(not_a_reply_target())
            else:
                reply_to = None if post.reply_to is None else reply_summary(post.reply_to,
                                                                            *original)
                message = new_message(post, message_id, seq, created_at, username, display_name,
                                      mentioned or (), reply_to)
                outcomes.append({"message": message, "created": True})
                created_ids.append(message_id)
                posted.append((message, rosters.get(post.room_id, [])))
        self.outbox.adopt(created_ids)  # the statement wrote their outbox rows
        return outcomes, posted_event(posted)  # one messages_posted for the batch
