"""Rooms, members, messages, read state and conversations (all by RPC to rooms)."""
from __future__ import annotations

import uuid

from . import schemas as s
from .appkeys import CACHE_KEYS, POSTS, REDIS
from .http import Ctx, Endpoint, json_response, no_content
from .presence import online

ROOM = s.obj(room=s.ref("Room"))
MESSAGE = s.obj(message=s.ref("Message"))
ROOM_ERRORS = (401, 404, 503)
WRITE_ERRORS = (400, 401, 403, 404, 413, 415, 422, 429, 503)


async def create_room(ctx: Ctx):
    body = ctx.body
    # One request id per HTTP request: a redelivered RPC answers with the room it already made.
    room = await ctx.rpc("rooms", "create_room", ctx.user_id, body["name"], body["kind"],
                         body.get("topic"), body.get("member_ids"), request_id=uuid.uuid4().hex)
    return json_response({"room": room}, 201)


async def open_direct(ctx: Ctx):
    result = await ctx.rpc("rooms", "open_direct", ctx.user_id, ctx.body["user_id"])
    created = bool(result["created"])
    return json_response({"room": result["room"], "created": created}, 201 if created else 200)


async def list_rooms(ctx: Ctx):
    q = ctx.query
    result = await ctx.rpc("rooms", "list_rooms", ctx.user_id, q["scope"],
                           q=(q["q"] or "").strip() or None, limit=q["limit"], cursor=q["cursor"])
    return json_response({"rooms": result["rooms"], "next_cursor": result.get("next_cursor")})


async def get_room(ctx: Ctx):
    room = await ctx.rpc("rooms", "get_room", ctx.user_id, ctx.path("room_id"))
    return json_response({"room": room})


async def update_room(ctx: Ctx):
    changes = {key: ctx.body[key] for key in ("name", "topic") if key in ctx.body}
    room = await ctx.rpc("rooms", "update_room", ctx.user_id, ctx.path("room_id"), **changes)
    return json_response({"room": room})


async def delete_room(ctx: Ctx):
    await ctx.rpc("rooms", "delete_room", ctx.user_id, ctx.path("room_id"))
    return no_content()


async def join_room(ctx: Ctx):
    room = await ctx.rpc("rooms", "join_room", ctx.user_id, ctx.path("room_id"))
    return json_response({"room": room})


async def leave_room(ctx: Ctx):
    await ctx.rpc("rooms", "leave_room", ctx.user_id, ctx.path("room_id"))
    return no_content()


async def list_members(ctx: Ctx):
    members = await ctx.rpc("rooms", "list_members", ctx.user_id, ctx.path("room_id"))
    flags = await online(ctx.app[REDIS], ctx.app[CACHE_KEYS], [m["user"]["id"] for m in members])
    return json_response({"members": [{**member, "online": flag}
                                      for member, flag in zip(members, flags)]})


async def add_member(ctx: Ctx):
    room = await ctx.rpc("rooms", "add_member", ctx.user_id, ctx.path("room_id"),
                         ctx.body["user_id"])
    return json_response({"room": room})


async def set_muted(ctx: Ctx):
    result = await ctx.rpc("rooms", "set_muted", ctx.user_id, ctx.path("room_id"),
                           ctx.body["muted"])
    return json_response(result)


async def post_message(ctx: Ctx):
    # Without a client id a redelivered RPC could post twice; with one it cannot.
    client_id = ctx.body.get("client_id") or uuid.uuid4().hex
    result = await ctx.app[POSTS].post(ctx.user_id, ctx.path("room_id"), ctx.body["text"],
                                         client_id, reply_to=ctx.body.get("reply_to"))
    return json_response({"message": result["message"]}, 201 if result["created"] else 200)


async def list_messages(ctx: Ctx):
    q = ctx.query
    result = await ctx.rpc("rooms", "list_messages", ctx.user_id, ctx.path("room_id"),
                           before_seq=q["before_seq"], after_seq=q["after_seq"], limit=q["limit"])
    return json_response({"messages": result["messages"], "has_more": result["has_more"]})


async def edit_message(ctx: Ctx):
    message = await ctx.rpc("rooms", "edit_message", ctx.user_id, ctx.path("room_id"),
                            ctx.path("message_id"), ctx.body["text"])
    return json_response({"message": message})


async def delete_message(ctx: Ctx):
    await ctx.rpc("rooms", "delete_message", ctx.user_id, ctx.path("room_id"),
                  ctx.path("message_id"))
    return no_content()


async def add_reaction(ctx: Ctx):
    result = await ctx.rpc("rooms", "add_reaction", ctx.user_id, ctx.path("room_id"),
                           ctx.path("message_id"), ctx.path("emoji"))
    return json_response(result)


async def remove_reaction(ctx: Ctx):
    result = await ctx.rpc("rooms", "remove_reaction", ctx.user_id, ctx.path("room_id"),
                           ctx.path("message_id"), ctx.path("emoji"))
    return json_response(result)


async def mark_read(ctx: Ctx):
    result = await ctx.rpc("rooms", "mark_read", ctx.user_id, ctx.path("room_id"),
                           ctx.body["seq"])
    return json_response(result)


async def list_conversations(ctx: Ctx):
    q = ctx.query
    result = await ctx.rpc("rooms", "list_conversations", ctx.user_id, limit=q["limit"],
                           cursor=q["cursor"])
    return json_response({"conversations": result["conversations"],
                          "next_cursor": result.get("next_cursor")})


async def list_mentions(ctx: Ctx):
    q = ctx.query
    result = await ctx.rpc("rooms", "list_mentions", ctx.user_id, limit=q["limit"],
                           cursor=q["cursor"])
    return json_response({"mentions": result["mentions"],
                          "next_cursor": result.get("next_cursor")})


BASE = "/api/v1/rooms"
ITEM = BASE + "/{room_id}"
ENDPOINTS = [
    Endpoint("POST", BASE, create_room, "Create a public or private room.", "rooms",
             body=s.CREATE_ROOM, responses={201: ROOM}, errors=WRITE_ERRORS + (409,),
             description="The creator is owner and member; member_ids (private rooms) are "
                         "added too. Public names are unique case-insensitively (409 room_exists)."),
    Endpoint("POST", BASE + "/direct", open_direct, "Open (or find) the direct room with a user.",
             "rooms", body=s.OPEN_DIRECT,
             responses={201: s.obj(room=s.ref("Room"), created={"type": "boolean"}),
                        200: s.obj(room=s.ref("Room"), created={"type": "boolean"})},
             errors=WRITE_ERRORS, description="One direct room per pair: 201 when created, "
                                              "200 with created:false when it existed."),
    Endpoint("GET", BASE, list_rooms, "List public rooms or the rooms you joined.", "rooms",
             query={"scope": s.SCOPE, "q": s.SEARCH, "limit": s.LIMIT, "cursor": s.CURSOR},
             responses={200: s.obj(rooms={"type": "array", "items": s.ref("Room")},
                                   next_cursor={"type": ["string", "null"]})},
             errors=(401, 422, 503)),
    Endpoint("GET", ITEM, get_room, "A room (404 for private rooms you are not in).", "rooms",
             responses={200: ROOM}, errors=ROOM_ERRORS),
    Endpoint("PATCH", ITEM, update_room, "Rename a room or change its topic (owner).", "rooms",
             body=s.UPDATE_ROOM, responses={200: ROOM}, errors=WRITE_ERRORS + (409,)),
    Endpoint("DELETE", ITEM, delete_room, "Delete a room (owner).", "rooms",
             responses={204: None}, errors=(401, 403, 404, 429, 503)),
    Endpoint("POST", ITEM + "/join", join_room, "Join a public room.", "rooms",
             responses={200: ROOM}, errors=(401, 403, 404, 429, 503)),
    Endpoint("POST", ITEM + "/leave", leave_room, "Leave a room.", "rooms",
             responses={204: None}, errors=(401, 403, 404, 429, 503)),
    Endpoint("GET", ITEM + "/members", list_members, "The members of a room (members only).",
             "rooms", responses={200: s.obj(members={"type": "array",
                                                      "items": s.ref("Member")})},
             errors=(401, 403, 404, 503)),
    Endpoint("POST", ITEM + "/members", add_member, "Add a user to a private room (members).",
             "rooms", body=s.ADD_MEMBER, responses={200: ROOM}, errors=WRITE_ERRORS),
    Endpoint("PUT", ITEM + "/mute", set_muted, "Mute or unmute a room for yourself.", "rooms",
             body=s.MUTE, responses={200: s.obj(room_id=s.ID, muted={"type": "boolean"})},
             errors=WRITE_ERRORS),
    Endpoint("POST", ITEM + "/messages", post_message, "Post a message.", "messages",
             body=s.POST_MESSAGE, responses={201: MESSAGE, 200: MESSAGE}, errors=WRITE_ERRORS,
             description="201 when created; a repeated client_id from the same author returns "
                         "the first message with 200. Without client_id the gateway makes one."),
    Endpoint("GET", ITEM + "/messages", list_messages, "A page of history (ascending seq).",
             "messages",
             query={"before_seq": {**s.SEQ, "x-message": "before_seq must be a whole number of at least 0."},
                    "after_seq": {**s.SEQ, "x-message": "after_seq must be a whole number of at least 0."},
                    "limit": s.LIMIT},
             responses={200: s.obj(messages={"type": "array", "items": s.ref("Message")},
                                   has_more={"type": "boolean"})},
             errors=(401, 403, 404, 422, 503), description="Default: the newest page."),
    Endpoint("PATCH", ITEM + "/messages/{message_id}", edit_message, "Edit your message.",
             "messages", body=s.EDIT_MESSAGE, responses={200: MESSAGE}, errors=WRITE_ERRORS),
    Endpoint("DELETE", ITEM + "/messages/{message_id}", delete_message,
             "Delete a message (author or room owner).", "messages", responses={204: None},
             errors=(401, 403, 404, 429, 503)),
    Endpoint("PUT", ITEM + "/messages/{message_id}/reactions/{emoji}", add_reaction,
             "React to a message with an emoji (members).", "messages",
             path_schemas={"emoji": s.EMOJI}, responses={200: s.ref("Reactions")},
             errors=(401, 403, 404, 409, 422, 429, 503),
             description="One reaction per user per emoji: a repeat changes nothing (and tells "
                         "nobody). Answers the message's reactions as you see them. 409 for a "
                         "deleted message or one with too many different emoji "
                         "(too_many_reactions); 403 in an archived room; 422 if emoji is "
                         "not one emoji. Subscribers get a reaction_added frame."),
    Endpoint("DELETE", ITEM + "/messages/{message_id}/reactions/{emoji}", remove_reaction,
             "Take your reaction back.", "messages", path_schemas={"emoji": s.EMOJI},
             responses={200: s.ref("Reactions")}, errors=(401, 403, 404, 409, 422, 429, 503),
             description="Success also when you had not reacted with it (nothing changes, no "
                         "frame); otherwise subscribers get a reaction_removed frame."),
    Endpoint("POST", ITEM + "/read", mark_read, "Mark messages read up to seq (never backwards).",
             "messages", body=s.MARK_READ,
             responses={200: s.obj(room_id=s.ID, last_read_seq={"type": "integer"},
                                   unread_count={"type": "integer"},
                                   mention_count={"type": "integer"})},
             errors=WRITE_ERRORS),
    Endpoint("GET", "/api/v1/conversations", list_conversations,
             "Your rooms by last activity, newest first, with unread counts.", "rooms",
             query={"limit": s.LIMIT, "cursor": s.CURSOR},
             responses={200: s.obj(conversations={"type": "array",
                                                  "items": s.ref("Conversation")},
                                   next_cursor={"type": ["string", "null"]})},
             errors=(401, 422, 503)),
    Endpoint("GET", "/api/v1/mentions", list_mentions,
             "Messages that mention you, newest first, in rooms you belong to.", "messages",
             query={"limit": s.LIMIT, "cursor": s.CURSOR},
             responses={200: s.obj(mentions={"type": "array", "items": s.ref("Mention")},
                                   next_cursor={"type": ["string", "null"]})},
             errors=(401, 422, 503),
             description="A mention is @username of a member (case-insensitive), outside code "
                         "spans and blocks, never by yourself; a room you left drops out, a "
                         "deleted message too. Pass next_cursor as cursor for the next page."),
]
