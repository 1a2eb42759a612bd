"""Reading reactions: the aggregated counts of messages, in the order each emoji first came.
Used by the history (messages.py) and by reactions.py; no class, so both can import it."""
from __future__ import annotations

from sqlalchemy import case, func, select

from ..models import message_reactions as reactions


def reaction_counts(session, message_ids: list[str], viewer: str | None = None
                    ) -> dict[str, list[dict]]:
    """message id -> ``[{emoji, count}]`` (``me`` too when ``viewer`` is given: whether the
    viewer reacted with it). One statement for a whole page of messages."""
    if not message_ids:
        return {}
    columns = [reactions.c.message_id, reactions.c.emoji, func.count().label("count"),
               func.min(reactions.c.created_at).label("first_at")]
    if viewer is not None:
        columns.append(func.max(case((reactions.c.user_id == viewer, 1), else_=0)).label("me"))
    rows = session.execute(
        select(*columns).where(reactions.c.message_id.in_(message_ids))
        .group_by(reactions.c.message_id, reactions.c.emoji)
        .order_by(reactions.c.message_id, "first_at", reactions.c.emoji))
    counts: dict[str, list[dict]] = {}
    for row in rows:
        entry = {"emoji": row.emoji, "count": row.count}
        if viewer is not None:
            entry["me"] = bool(row.me)
        counts.setdefault(row.message_id, []).append(entry)
    return counts


def with_reactions(session, messages: list[dict], viewer: str | None = None) -> list[dict]:
    """``messages`` (rendered) with their ``reactions`` filled in; a deleted message shows none."""
    counts = reaction_counts(session, [m["id"] for m in messages if not m["deleted"]], viewer)
    for message in messages:
        message["reactions"] = counts.get(message["id"], [])
    return messages
