"""Full-text search of the messages of the caller's rooms: ranked, paged, with a highlighted
snippet per result.

Where the index lives (migration 0005_message_search): on PostgreSQL the generated tsvector
column messages.search_vector (the 'simple' configuration) with a GIN index; on SQLite the
FTS5 table message_search, kept by triggers. Both are written by the statement that writes the
message, so a post, an edit (re-indexed) or a delete (text "" indexes nothing) is searchable
exactly when it is committed, and a deleted room's messages are gone with their rows.

Who sees what: only messages of rooms the caller is a member of right now (archived rooms
included, as they stay readable). Public rooms the caller has not joined are not searched:
their history needs membership too (DESIGN.md §5), and a search across every public room would
be a way round that. Deleted messages are never found.

The query: its words (letters and digits; anything else separates them), each matching the
start of a word of the message, all of them required: "deplo fri" finds "Deploying on Friday".
Ranking: PostgreSQL's ts_rank_cd (cover density, normalized by length), SQLite's bm25; ties go
to the newer message. Pages are keyset pages on (rank, created_at, id): the cursor is the last
result's key, so a page never repeats or skips a result as long as the matches do not change
(an edit changes its message's rank; bm25 also moves a little as the room's corpus grows).

The snippet is built here, not by ts_headline / snippet(): the same code for both databases,
and a list of ``{text, match}`` parts rather than markup, so no client ever parses HTML."""
from __future__ import annotations

import re

from sqlalchemy import Float, and_, cast, column, func, literal_column, or_, select, table

from parley_common.timeutil import aware, parse_iso

from ..models import memberships, messages, rooms, users
from ..validation import encode_cursor
from .access import RoomAccess
from .base import read_only
from .rendering import message_dict

# A word of the query or of a message: letters and digits (what both databases' tokenizers
# keep); "_" and punctuation separate words, as they do in the indexes.
WORD = re.compile(r"[^\W_]+")
SNIPPET_CHARS = 160  # about two lines of a result list
ELLIPSIS = "…"


def search_terms(query: str) -> list[str]:
    """The distinct words of ``query``, lower-cased, in order."""
    return list(dict.fromkeys(word.lower() for word in WORD.findall(query)))


def highlight(text: str, terms: list[str], width: int = SNIPPET_CHARS) -> list[dict]:
    """About ``width`` characters of ``text`` around its first match, as ``{text, match}``
    parts: a part with match true is a word starting with one of ``terms``. Parts are plain
    text (cut at word starts where possible, "…" marking a cut): a client renders them as text
    nodes and marks the matches, never as HTML."""
    matches = [(m.start(), m.end()) for m in WORD.finditer(text)
               if m.group().lower().startswith(tuple(terms))]
    start, end = 0, len(text)
    if len(text) > width:
        first = matches[0][0] if matches else 0
        start = max(0, min(first - width // 4, len(text) - width))
        if start > 0:  # begin at a word, not in the middle of one
            word = WORD.search(text, start)
            start = word.start() if word and word.start() <= first else start
        end = min(len(text), start + width)
    parts: list[dict] = []
    if start > 0:
        parts.append({"text": ELLIPSIS, "match": False})
    position = start
    for match_start, match_end in matches:
        if match_end <= start or match_start >= end:
            continue
        match_start, match_end = max(match_start, start), min(match_end, end)
        if match_start > position:
            parts.append({"text": text[position:match_start], "match": False})
        parts.append({"text": text[match_start:match_end], "match": True})
        position = match_end
    if position < end:
        parts.append({"text": text[position:end], "match": False})
    if end < len(text):
        parts.append({"text": ELLIPSIS, "match": False})
    return parts


def _postgresql_matches(terms: list[str]):
    """(filter, rank) on PostgreSQL: every term a prefix (to_tsquery's ``'word':*``; the terms
    hold letters and digits only, so quoting them is safe); the rank as float8, which a cursor
    carries through JSON and back exactly (ts_rank_cd's real would not compare equal)."""
    query = func.to_tsquery(literal_column("'simple'::regconfig"),
                            " & ".join(f"'{term}':*" for term in terms))
    vector = literal_column("messages.search_vector")
    return vector.op("@@")(query), cast(func.ts_rank_cd(vector, query, 1), Float(53))


# The FTS5 table (SQLite) as a FROM item, and as the hidden column MATCH and bm25() take.
FTS_TABLE = table("message_search", column("rowid"))
FTS = literal_column("message_search")


def _sqlite_matches(terms: list[str]):
    """(filter, rank) on SQLite, for a query joining the FTS5 table (bm25() exists only there):
    every term a prefix (``"word"*``); bm25 is lower for better matches, so the rank is its
    negation (higher is better, as on PostgreSQL)."""
    return FTS.op("MATCH")(" ".join(f'"{term}"*' for term in terms)), -func.bm25(FTS)


def _after(hits, before: list):
    """The results ranked after the cursor's [rank, created_at, id] (all three descending)."""
    rank, created_at, message_id = before
    return or_(hits.c.rank < rank,
               and_(hits.c.rank == rank,
                    or_(hits.c.created_at < created_at,
                        and_(hits.c.created_at == created_at, hits.c.id < message_id))))


class Search(RoomAccess):
    @read_only
    def search_messages(self, user_id: str, terms: list[str], room_id: str | None,
                        before: list | None, limit: int) -> dict:
        """``{results: [{message, room: {id, kind, name}, snippet}], next_cursor}``, best
        first. ``terms``: search_terms() of the query (at least one); ``room_id``: only that
        room (NotFound / Forbidden as for its history); ``before``: the previous page's cursor,
        decoded by decode_before()."""
        if room_id is not None:
            self.access(user_id, room_id, need_member=True)
            in_rooms = messages.c.room_id == room_id
        else:
            in_rooms = messages.c.room_id.in_(
                select(memberships.c.room_id).where(memberships.c.user_id == user_id))
        if self.dialect == "postgresql":
            matches, rank = _postgresql_matches(terms)
            source = messages
        else:
            matches, rank = _sqlite_matches(terms)
            source = FTS_TABLE.join(messages, literal_column("messages.rowid") == FTS_TABLE.c.rowid)
        hits = (select(*messages.c, rank.label("rank")).select_from(source)
                .where(matches, in_rooms, messages.c.deleted_at.is_(None))).subquery("hits")
        statement = (
            select(hits, users.c.username, users.c.display_name,
                   rooms.c.kind.label("room_kind"), rooms.c.name.label("room_name"))
            .select_from(hits.join(rooms, rooms.c.id == hits.c.room_id)
                         .outerjoin(users, users.c.id == hits.c.author_id)))
        if before is not None:
            statement = statement.where(_after(hits, before))
        statement = statement.order_by(hits.c.rank.desc(), hits.c.created_at.desc(),
                                       hits.c.id.desc()).limit(limit + 1)
        rows = list(self.session.execute(statement))
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last = page[-1]
            next_cursor = encode_cursor(float(last.rank), aware(last.created_at).isoformat(),
                                        last.id)
        return {"results": [{"message": message_dict(row, row.username, row.display_name),
                             "room": {"id": row.room_id, "kind": row.room_kind,
                                      "name": row.room_name or ""},
                             "snippet": highlight(row.text, terms)} for row in page],
                "next_cursor": next_cursor}


def decode_before(key: list) -> list | None:
    """A search cursor's key [rank, created_at, id] with its time parsed, or None if it is not
    one (the service turns that into a field error)."""
    rank, created_at, message_id = key
    when = parse_iso(created_at)
    return None if when is None else [rank, when, message_id]
