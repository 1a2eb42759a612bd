"""Reactions and replies through the gateway: PUT/DELETE .../reactions/{emoji} (URL-encoded
emoji, 422 for anything else, members only, idempotent), counts with "me" in history, live
reaction_added/removed frames to the room's subscribers on both gateways, and reply_to on
REST posts and WebSocket sends (same room only, quoted in history, "deleted" once gone)."""
from __future__ import annotations

import uuid
from urllib.parse import quote

from helpers import auth_headers, new_user, next_frame, unique, ws_url

THUMBS = "👍"
FAMILY = "👨‍👩‍👧"


async def room_of(owner, *members, kind="public") -> dict:
    reply = await owner.post("/api/v1/rooms", {"name": unique("react"), "kind": kind})
    assert reply.status == 201, reply
    room = reply.body["room"]
    for member in members:
        assert (await member.post(f"/api/v1/rooms/{room['id']}/join")).status == 200
    return room


def reaction_path(room_id: str, message_id: str, emoji: str) -> str:
    return f"/api/v1/rooms/{room_id}/messages/{message_id}/reactions/{quote(emoji, safe='')}"


async def test_reactions_over_rest_and_frames(suite, http):
    alice = await new_user(http, suite.url)
    bob = (await new_user(http, suite.url)).at(suite.gateway_urls[1])
    room = await room_of(alice, bob)
    posted = await alice.post(f"/api/v1/rooms/{room['id']}/messages", {"text": "lunch?"})
    message = posted.body["message"]
    assert message["reactions"] == [] and message["reply_to"] is None
    path = reaction_path(room["id"], message["id"], THUMBS)

    sockets = []
    for client in (alice, bob):  # one socket on each gateway
        ws = await http.ws_connect(ws_url(client.base), headers=auth_headers(client.token))
        await next_frame(ws, "ready")
        await ws.send_json({"type": "subscribe", "room_id": room["id"], "ref": "s"})
        await next_frame(ws, "subscribed", ref="s")
        sockets.append(ws)

    added = await bob.put(path)
    assert added.status == 200, added
    assert added.body == {"room_id": room["id"], "message_id": message["id"],
                          "reactions": [{"emoji": THUMBS, "count": 1, "me": True}]}
    for ws in sockets:
        frame = await next_frame(ws, "reaction_added", message_id=message["id"])
        assert frame == {"type": "reaction_added", "room_id": room["id"],
                         "message_id": message["id"], "seq": message["seq"], "emoji": THUMBS,
                         "user_id": bob.id, "reactions": [{"emoji": THUMBS, "count": 1}]}
    assert (await bob.put(path)).body == added.body  # idempotent: no second frame (below)
    family = await alice.put(reaction_path(room["id"], message["id"], FAMILY))
    assert family.body["reactions"] == [{"emoji": THUMBS, "count": 1, "me": False},
                                        {"emoji": FAMILY, "count": 1, "me": True}]
    frame = await next_frame(sockets[1], "reaction_added")  # the next one is alice's
    assert frame["user_id"] == alice.id and frame["emoji"] == FAMILY

    history = await alice.get(f"/api/v1/rooms/{room['id']}/messages")
    assert history.body["messages"][0]["reactions"] == family.body["reactions"]

    removed = await bob.delete(path)
    assert removed.status == 200 and removed.body["reactions"] == [
        {"emoji": FAMILY, "count": 1, "me": False}]
    assert (await bob.delete(path)).status == 200  # nothing to remove: still fine, no frame
    for ws in sockets:
        frame = await next_frame(ws, "reaction_removed")
        assert frame["user_id"] == bob.id and frame["emoji"] == THUMBS
        assert frame["reactions"] == [{"emoji": FAMILY, "count": 1}]
    # The frames were exactly one per change: the repeats made none.
    await alice.put(reaction_path(room["id"], message["id"], "🎉"))
    for ws in sockets:
        frame = await next_frame(ws, "reaction_added")
        assert frame["emoji"] == "🎉"
        await ws.close()


async def test_reaction_input_and_access(suite, http):
    alice, bob, eve = (await new_user(http, suite.url), await new_user(http, suite.url),
                       await new_user(http, suite.url))
    room = await room_of(alice, bob)
    private = await room_of(alice, kind="private")
    message = (await alice.post(f"/api/v1/rooms/{room['id']}/messages",
                                {"text": "hi"})).body["message"]
    for text in ("abc", "1", THUMBS * 2, "%", "x" * 40):
        bad = await bob.put(reaction_path(room["id"], message["id"], text))
        assert bad.status == 422 and "emoji" in bad.error["details"], (text, bad)
    outsider = await eve.put(reaction_path(room["id"], message["id"], THUMBS))
    assert outsider.status == 403, outsider  # a public room: join first
    secret = (await alice.post(f"/api/v1/rooms/{private['id']}/messages",
                               {"text": "secret"})).body["message"]
    hidden = await eve.put(reaction_path(private["id"], secret["id"], THUMBS))
    assert hidden.status == 404, hidden
    wrong_room = await bob.put(reaction_path(room["id"], secret["id"], THUMBS))
    assert wrong_room.status == 404, wrong_room
    unknown = await bob.delete(reaction_path(room["id"], uuid.uuid4().hex, THUMBS))
    assert unknown.status == 404, unknown
    assert (await http.put(suite.url + reaction_path(room["id"], message["id"], THUMBS))
            ).status == 401
    await alice.delete(f"/api/v1/rooms/{room['id']}/messages/{message['id']}")
    deleted = await bob.put(reaction_path(room["id"], message["id"], THUMBS))
    assert deleted.status == 409, deleted


async def test_replies_over_rest_and_websocket(suite, http):
    alice, bob = await new_user(http, suite.url), await new_user(http, suite.url)
    room = await room_of(alice, bob)
    other = await room_of(alice, bob)
    messages = f"/api/v1/rooms/{room['id']}/messages"
    original = (await alice.post(messages, {"text": "where do we meet?"})).body["message"]
    foreign = (await alice.post(f"/api/v1/rooms/{other['id']}/messages",
                                {"text": "elsewhere"})).body["message"]

    reply = await bob.post(messages, {"text": "at noon", "client_id": "r-1",
                                      "reply_to": original["id"]})
    assert reply.status == 201, reply
    quoted = reply.body["message"]["reply_to"]
    assert quoted == {"id": original["id"], "seq": original["seq"], "deleted": False,
                      "excerpt": "where do we meet?",
                      "author": {"id": alice.id, "username": alice.user["username"],
                                 "display_name": alice.user["display_name"]}}
    again = await bob.post(messages, {"text": "at noon", "client_id": "r-1",
                                      "reply_to": original["id"]})
    assert again.status == 200 and again.body["message"]["id"] == reply.body["message"]["id"]
    wrong = await bob.post(messages, {"text": "x", "reply_to": foreign["id"]})
    assert wrong.status == 422 and "reply_to" in wrong.error["details"], wrong
    malformed = await bob.post(messages, {"text": "x", "reply_to": 7})
    assert malformed.status == 422 and "reply_to" in malformed.error["details"], malformed
    plain = await bob.post(messages, {"text": "not a reply", "reply_to": None})
    assert plain.status == 201 and plain.body["message"]["reply_to"] is None, plain

    ws = await http.ws_connect(ws_url(suite.url), headers=auth_headers(alice.token))
    await next_frame(ws, "ready")
    await ws.send_json({"type": "subscribe", "room_id": room["id"], "ref": "s"})
    await next_frame(ws, "subscribed", ref="s")
    await ws.send_json({"type": "send", "room_id": room["id"], "text": "noon works",
                        "client_id": uuid.uuid4().hex, "reply_to": reply.body["message"]["id"],
                        "ref": "r"})
    ack = await next_frame(ws, "ack", ref="r")
    assert ack["message"]["reply_to"]["id"] == reply.body["message"]["id"]
    assert ack["message"]["reply_to"]["excerpt"] == "at noon"
    await ws.send_json({"type": "send", "room_id": room["id"], "text": "no",
                        "client_id": uuid.uuid4().hex, "reply_to": foreign["id"], "ref": "bad"})
    error = await next_frame(ws, "error", ref="bad")
    assert error["code"] == "validation_failed" and "reply_to" in error["details"]
    await ws.close()

    await alice.delete(f"{messages}/{original['id']}")
    history = (await bob.get(messages)).body["messages"]
    by_seq = {m["seq"]: m for m in history}
    assert by_seq[reply.body["message"]["seq"]]["reply_to"] == {
        **quoted, "excerpt": "", "deleted": True}
