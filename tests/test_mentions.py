"""@mentions end to end through the gateway (REST and WebSocket), every process real:
message.mentions, mention_count in conversations and read answers, GET /api/v1/mentions
(pagination, only rooms you still belong to, 401/422), and the `mention` frame reaching the
mentioned user's sockets only - also when they did not subscribe to the room."""
from __future__ import annotations

import asyncio
import base64
import uuid

from helpers import auth_headers, new_user, next_frame, unique, ws_url


async def room_of(owner, *members, kind="private") -> dict:
    reply = await owner.post("/api/v1/rooms", {"name": unique("room"), "kind": kind,
                                               "member_ids": [m.id for m in members]})
    assert reply.status == 201, reply
    return reply.body["room"]


async def say(client, room: dict, text: str) -> dict:
    reply = await client.post(f"/api/v1/rooms/{room['id']}/messages",
                              {"text": text, "client_id": uuid.uuid4().hex})
    assert reply.status == 201, reply
    return reply.body["message"]


async def test_mentions_api_counts_and_listing(suite, http):
    ada, bob, out = (await new_user(http, suite.url), await new_user(http, suite.url),
                     await new_user(http, suite.url))
    room = await room_of(ada, bob)
    first = await say(ada, room, f"hi @{bob.user['username'].upper()} and @{out.user['username']}")
    assert first["mentions"] == [bob.id]  # case-insensitive; a non-member is not mentioned
    await say(ada, room, f"`@{bob.user['username']}` is code, not a mention")
    second = await say(ada, room, f"@{bob.user['username']}: again")

    history = await bob.get(f"/api/v1/rooms/{room['id']}/messages")
    assert [m["mentions"] for m in history.body["messages"]] == [[bob.id], [], [bob.id]]
    conversations = await bob.get("/api/v1/conversations")
    mine = next(c for c in conversations.body["conversations"] if c["room"]["id"] == room["id"])
    assert (mine["unread_count"], mine["mention_count"]) == (3, 2)

    page = await bob.get("/api/v1/mentions?limit=1")
    assert page.status == 200, page
    assert [item["message"]["id"] for item in page.body["mentions"]] == [second["id"]]
    assert page.body["mentions"][0]["room"]["id"] == room["id"]
    assert page.body["mentions"][0]["unread"] is True
    rest = await bob.get(f"/api/v1/mentions?limit=1&cursor={page.body['next_cursor']}")
    assert [item["message"]["id"] for item in rest.body["mentions"]] == [first["id"]]
    assert rest.body["next_cursor"] is None

    read = await bob.post(f"/api/v1/rooms/{room['id']}/read", {"seq": second["seq"]})
    assert read.status == 200 and (read.body["unread_count"], read.body["mention_count"]) == (0, 0)
    assert (await bob.get("/api/v1/mentions")).body["mentions"][0]["unread"] is False

    # a room you left no longer shows its mentions
    assert (await bob.post(f"/api/v1/rooms/{room['id']}/leave")).status == 204
    assert (await bob.get("/api/v1/mentions")).body == {"mentions": [], "next_cursor": None}


async def test_mentions_endpoint_refuses_bad_input(suite, http):
    ada = await new_user(http, suite.url)
    not_a_time = base64.urlsafe_b64encode(b'["yesterday","x"]').decode().rstrip("=")
    wrong_shape = base64.urlsafe_b64encode(b'[1,2,3]').decode().rstrip("=")
    for query, field in (("limit=0", "limit"), ("limit=101", "limit"), ("limit=x", "limit"),
                         ("cursor=not-a-cursor", "cursor"), (f"cursor={not_a_time}", "cursor"),
                         (f"cursor={wrong_shape}", "cursor")):
        reply = await ada.get(f"/api/v1/mentions?{query}")
        assert reply.status == 422, (query, reply)
        assert reply.error["code"] == "validation_failed" and field in reply.error["details"]
    anonymous = await ada.get("/api/v1/mentions", token="not-a-token")
    assert anonymous.status == 401
    spec = await ada.get("/api/v1/openapi.json")
    assert "/api/v1/mentions" in spec.body["paths"]
    assert "mention_count" in spec.body["components"]["schemas"]["Conversation"]["properties"]


async def test_mention_frame_reaches_only_the_mentioned_users_sockets(suite, http):
    gw_a, gw_b = suite.gateway_urls[:2]
    ada = await new_user(http, gw_a)
    bob, cyd = await new_user(http, gw_b), await new_user(http, gw_b)
    room = await room_of(ada, bob, cyd, kind="public")
    # nobody subscribes to the room: mention frames are per user
    sockets = {}
    for name, client, base in (("ada", ada, gw_a), ("bob", bob, gw_b), ("cyd", cyd, gw_b)):
        sockets[name] = await http.ws_connect(ws_url(base), headers=auth_headers(client.token))
        await next_frame(sockets[name], "ready")
    try:
        message = await say(ada, room, f"@{ada.user['username']} @{bob.user['username']} look")
        frame = await next_frame(sockets["bob"], "mention")
        assert frame["room_id"] == room["id"] and frame["message"]["id"] == message["id"]
        assert frame["message"]["mentions"] == [bob.id]
        for name in ("ada", "cyd"):  # no self-mention, nothing for the unmentioned
            try:
                extra = await next_frame(sockets[name], "mention", 1.5)
            except asyncio.TimeoutError:
                continue
            raise AssertionError(f"{name} got {extra}")

        # an edit notifies only whom it adds
        edited = await ada.patch(f"/api/v1/rooms/{room['id']}/messages/{message['id']}",
                                 {"text": f"@{bob.user['username']} @{cyd.user['username']}"})
        assert edited.status == 200 and sorted(edited.body["message"]["mentions"]) == \
            sorted([bob.id, cyd.id])
        frame = await next_frame(sockets["cyd"], "mention")
        assert frame["message"]["id"] == message["id"]
        try:
            extra = await next_frame(sockets["bob"], "mention", 1.5)
        except asyncio.TimeoutError:
            extra = None
        assert extra is None, extra
    finally:
        for ws in sockets.values():
            await ws.close()
