"""The messages_posted event (store/posted.py): one per post call, and the relay's merge of
the one-message events it rebuilds from outbox rows."""
from __future__ import annotations

from parley_rooms.store.posted import MAX_MESSAGES_PER_EVENT, merge_posted, posted_event


def message(room_id: str, seq: int) -> dict:
    return {"id": f"{room_id}-{seq}", "room_id": room_id, "seq": seq}


def test_one_event_for_a_batch_with_each_roster_once():
    items = [(message("a", 1), ["u1", "u2"]), (message("b", 7), ["u3"]),
             (message("a", 2), ["u1", "u2"])]
    assert posted_event(items) == [("messages_posted", {
        "messages": [message("a", 1), message("b", 7), message("a", 2)],
        "member_ids": {"a": ["u1", "u2"], "b": ["u3"]}})]
    assert posted_event([]) == []


def test_the_relay_merges_runs_of_posts_and_keeps_every_other_event_in_place():
    one = lambda room_id, seq: posted_event([(message(room_id, seq), [room_id + "-m"])])[0]
    renamed = ("room_updated", {"room": {"id": "a"}})
    events = [one("a", 1), one("b", 1), renamed, one("a", 2), one("a", 3)]
    merged = merge_posted(events)
    assert merged == [
        ("messages_posted", {"messages": [message("a", 1), message("b", 1)],
                             "member_ids": {"a": ["a-m"], "b": ["b-m"]}}),
        renamed,
        ("messages_posted", {"messages": [message("a", 2), message("a", 3)],
                             "member_ids": {"a": ["a-m"]}})]
    assert events[0][1]["messages"] == [message("a", 1)]  # the inputs are not changed


def test_a_merged_event_holds_at_most_one_calls_worth_of_messages():
    events = [posted_event([(message("a", seq), ["m"])])[0]
              for seq in range(1, 2 * MAX_MESSAGES_PER_EVENT + 2)]
    merged = merge_posted(events)
    assert [len(payload["messages"]) for _, payload in merged] == [
        MAX_MESSAGES_PER_EVENT, MAX_MESSAGES_PER_EVENT, 1]
    assert [m["seq"] for _, payload in merged for m in payload["messages"]] == list(
        range(1, 2 * MAX_MESSAGES_PER_EVENT + 2))
