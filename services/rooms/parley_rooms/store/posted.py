"""The ``messages_posted`` event: every message one post call created, in ONE event.

Payload ``{messages: [message, ...], member_ids: {room_id: [user_id, ...]}}``: the messages in
the order they were posted (so ascending seq within each room), each room's members once
(a batch of 40 posts over 20 rooms would otherwise carry each 50-member roster twice, and 100
posts to one room a hundred times). One event per batch instead of one per message: one
publish and confirm at rooms, one delivery, decode and ack at every gateway, and a gateway
hands all of a batch's frames to its sockets in one loop turn, so a socket gets its frames of
the batch in one write.

The outbox keeps one row per message (``message_posted``, written by the post statement); a
relayed row is rebuilt as an event of one message and :func:`merge_posted` joins the relay's
consecutive ones again.
"""
from __future__ import annotations

from typing import Iterable

from parley_common.limits import MAX_POSTS_PER_CALL
from parley_common.outbox import Event

MESSAGES_POSTED = "messages_posted"
# A merged (relayed) event carries at most as many messages as one post call can create.
MAX_MESSAGES_PER_EVENT = MAX_POSTS_PER_CALL


def posted_event(items: Iterable[tuple[dict, list]]) -> list[Event]:
    """``(message, member_ids)`` pairs -> the event announcing them ([] when there are none)."""
    messages: list[dict] = []
    rosters: dict[str, list] = {}
    for message, member_ids in items:
        messages.append(message)
        rosters.setdefault(message["room_id"], member_ids)
    if not messages:
        return []
    return [(MESSAGES_POSTED, {"messages": messages, "member_ids": rosters})]


def merge_posted(events: list[Event]) -> list[Event]:
    """Consecutive ``messages_posted`` events joined into one (up to MAX_MESSAGES_PER_EVENT
    messages); every other event kept, in order."""
    merged: list[Event] = []
    for event_type, payload in events:
        if event_type == MESSAGES_POSTED and merged and merged[-1][0] == MESSAGES_POSTED:
            into = merged[-1][1]
            if len(into["messages"]) + len(payload["messages"]) <= MAX_MESSAGES_PER_EVENT:
                into["messages"].extend(payload["messages"])
                for room_id, member_ids in payload["member_ids"].items():
                    into["member_ids"].setdefault(room_id, member_ids)
                continue
        if event_type == MESSAGES_POSTED:  # a copy: the next ones may be merged into it
            payload = {"messages": list(payload["messages"]),
                       "member_ids": dict(payload["member_ids"])}
        merged.append((event_type, payload))
    return merged
