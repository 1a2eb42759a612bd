"""/api/v1/admin/...: the administrators' console (accounts, roles, rooms, messages, the audit
log, the log archive). Every action is checked by the service that owns the data (auth knows
who is an administrator; rooms asks it), so the gateway adds no trust of its own: anyone else
gets 403 ``forbidden`` from there. The log archive belongs to the logger, which answers
``logger.query_logs``; the gateway asks auth first, since the logger knows nobody.

Closing a deactivated user's sockets needs nothing here: auth ends their sessions and
announces each (``session_revoked``), and every gateway closes those sockets with 4001.
"""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

from parley_common.errors import Forbidden
from parley_common.logs import get_logger

from aiohttp import web

from . import schemas as s
from .appkeys import CACHE_KEYS, METRICS, REDIS, SETTINGS
from .console_stats import SAMPLE_SECONDS, StatsSampler, gateway_samples, queue_depths
from .http import Ctx, Endpoint, json_response, no_content

log = get_logger("parley_gateway.api_admin")

TAG = "admin"
READ_ERRORS = (401, 403, 422, 503)
ACTION_ERRORS = (401, 403, 404, 409, 429, 503)

# --- schemas of this module (the console's own objects) ---------------------------------
ADMIN_USER = {
    "type": "object",
    "required": ["id", "username", "display_name", "avatar_url", "created_at", "email",
                 "is_admin", "admin_source", "deactivated", "deactivated_at"],
    "properties": {
        **s.SELF_USER["properties"], "is_admin": {"type": "boolean"},
        "admin_source": {"type": ["string", "null"], "enum": ["config", "granted", None],
                         "description": "config: named by PARLEY_ADMINS (the API cannot take "
                                        "the role back); granted: by the first registration "
                                        "or an administrator."},
        "deactivated": {"type": "boolean"}, "deactivated_at": s.NULLABLE_TIME},
}
ADMIN_ROOM = s.ROOM
AUDIT_ENTRY = {
    "type": "object",
    "required": ["id", "created_at", "actor", "action", "target", "details", "cursor"],
    "properties": {
        "id": s.ID, "created_at": s.TIME,
        "actor": {"type": "object", "properties": {"id": s.ID,
                                                   "username": {"type": ["string", "null"]}}},
        "action": {"type": "string", "enum": [
            "user_deactivated", "user_reactivated", "admin_granted", "admin_revoked",
            "message_deleted", "room_deleted", "room_archived", "room_unarchived"]},
        "target": {"type": "object", "properties": {
            "type": {"type": "string", "enum": ["user", "room", "message"]}, "id": s.ID,
            "label": {"type": ["string", "null"],
                      "description": "The username or room name at the time."}}},
        "details": {"type": "object"},
        "cursor": {"type": "string", "description": "Pass as cursor for older entries."},
    },
}
LOG_RECORD = {
    "type": "object", "required": ["id", "ts", "service", "instance", "level", "event", "fields"],
    "properties": {"id": {"type": "integer"}, "ts": s.TIME, "service": {"type": "string"},
                   "instance": {"type": "string"},
                   "level": {"type": "string",
                             "enum": ["debug", "info", "warning", "error", "critical"]},
                   "event": {"type": "string"}, "fields": {"type": "object"}},
}
_SECONDS = {"type": ["number", "null"], "description": "Seconds, over the last minute."}
STATS_SAMPLE = {
    "type": "object",
    "required": ["ts", "sockets", "messages", "rpc_p50", "rpc_p99", "lag_p50", "lag_p99"],
    "properties": {"ts": {"type": "number", "description": "Unix seconds."},
                   "sockets": {"type": "integer", "description": "WebSockets held."},
                   "messages": {"type": "number",
                                "description": "Messages posted through this gateway so far "
                                               "(a rate is the difference of two samples)."},
                   "rpc_p50": _SECONDS, "rpc_p99": _SECONDS,
                   "lag_p50": _SECONDS, "lag_p99": _SECONDS},
}
SET_ROLE = {"type": "object", "required": ["admin"],
            "properties": {"admin": {"title": "admin", "type": "boolean"}}}
_TEXT = {"type": "string", "maxLength": 200, "x-message": "{name} must be at most 200 characters."}
_BOOL = {"type": "string", "enum": ["true", "false"],
         "x-message": "{name} must be 'true' or 'false'."}
USERS_QUERY = {
    "q": {**s.SEARCH, "x-message": "q must be at most 64 characters.",
          "description": "Substring of username, display name or email."},
    "status": {"type": "string", "enum": ["active", "deactivated"],
               "x-message": "status must be 'active' or 'deactivated'."},
    "role": {"type": "string", "enum": ["admin"], "x-message": "role must be 'admin'."},
    "limit": s.LIMIT, "cursor": s.CURSOR,
}
ROOMS_QUERY = {
    "q": {**s.SEARCH, "description": "Substring of the room's name."},
    "kind": {"type": "string", "enum": ["public", "private", "direct"],
             "x-message": "kind must be 'public', 'private' or 'direct'."},
    "archived": _BOOL, "limit": s.LIMIT, "cursor": s.CURSOR,
}
LOGS_QUERY = {
    "service": {**_TEXT, "description": "Service name(s), comma-separated."},
    "level": {**_TEXT, "description": "Exactly these level(s), comma-separated."},
    "min_level": {"type": "string", "enum": ["debug", "info", "warning", "error", "critical"],
                  "x-message": "min_level must be debug, info, warning, error or critical.",
                  "description": "This level and every more severe one."},
    "since": {**_TEXT, "description": "A duration back from now (30s, 10m, 2h, 1d, 1w) or an "
                                      "ISO 8601 time."},
    "until": {**_TEXT, "description": "Like since."},
    "q": {**_TEXT, "description": "Case-insensitive substring of the event."},
    "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100,
              "x-message": "limit must be a whole number from 1 to 500."},
}


def _page(rows_key: str, result: dict):
    return json_response({rows_key: result[rows_key], "next_cursor": result.get("next_cursor")})


# --- accounts and roles (auth) ----------------------------------------------------------
async def admin_list_users(ctx: Ctx):
    q = ctx.query
    result = await ctx.rpc("auth", "admin_list_users", ctx.user_id,
                           q=(q["q"] or "").strip() or None, status=q["status"], role=q["role"],
                           limit=q["limit"], cursor=q["cursor"])
    return _page("users", result)


async def _set_active(ctx: Ctx, active: bool):
    user = await ctx.rpc("auth", "admin_set_active", ctx.user_id, ctx.path("user_id"), active)
    return json_response({"user": user})


async def admin_deactivate_user(ctx: Ctx):
    return await _set_active(ctx, False)


async def admin_reactivate_user(ctx: Ctx):
    return await _set_active(ctx, True)


async def admin_set_role(ctx: Ctx):
    user = await ctx.rpc("auth", "admin_set_role", ctx.user_id, ctx.path("user_id"),
                         ctx.body["admin"])
    return json_response({"user": user})


# --- rooms and messages (rooms) ---------------------------------------------------------
async def admin_list_rooms(ctx: Ctx):
    q = ctx.query
    archived = None if q["archived"] is None else q["archived"] == "true"
    result = await ctx.rpc("rooms", "admin_list_rooms", ctx.user_id,
                           q=(q["q"] or "").strip() or None, kind=q["kind"], archived=archived,
                           limit=q["limit"], cursor=q["cursor"])
    return _page("rooms", result)


async def admin_delete_room(ctx: Ctx):
    await ctx.rpc("rooms", "admin_delete_room", ctx.user_id, ctx.path("room_id"))
    return no_content()


async def _set_archived(ctx: Ctx, archived: bool):
    room = await ctx.rpc("rooms", "admin_set_archived", ctx.user_id, ctx.path("room_id"),
                         archived)
    return json_response({"room": room})


async def admin_archive_room(ctx: Ctx):
    return await _set_archived(ctx, True)


async def admin_unarchive_room(ctx: Ctx):
    return await _set_archived(ctx, False)


async def admin_list_messages(ctx: Ctx):
    q = ctx.query
    result = await ctx.rpc("rooms", "admin_list_messages", ctx.user_id, ctx.path("room_id"),
                           before_seq=q["before_seq"], limit=q["limit"])
    return json_response(result)


async def admin_delete_message(ctx: Ctx):
    await ctx.rpc("rooms", "admin_delete_message", ctx.user_id, ctx.path("room_id"),
                  ctx.path("message_id"))
    return no_content()


# --- the audit log (both services' entries, merged) and the log archive -----------------
async def admin_audit(ctx: Ctx):
    limit, cursor = ctx.query["limit"], ctx.query["cursor"]
    parts = await asyncio.gather(
        ctx.rpc("auth", "admin_audit", ctx.user_id, cursor=cursor, limit=limit),
        ctx.rpc("rooms", "admin_audit", ctx.user_id, cursor=cursor, limit=limit))
    # Each part is newest first by (created_at, id); so is the fixed-width cursor string.
    merged = sorted((entry for part in parts for entry in part),
                    key=lambda entry: entry["cursor"], reverse=True)
    page = merged[:limit]
    more = len(merged) > limit or any(len(part) == limit for part in parts)
    return json_response({"entries": page,
                          "next_cursor": page[-1]["cursor"] if more and page else None})


async def _require_admin(ctx: Ctx) -> None:
    """For what no service owns (the log archive's reader knows nobody; live figures)."""
    if not await ctx.rpc("auth", "is_admin", ctx.user_id):
        raise Forbidden("Only administrators may do this.")


async def admin_logs(ctx: Ctx):
    await _require_admin(ctx)
    q = ctx.query
    filters = {"service": q["service"], "level": q["level"], "min_level": q["min_level"],
               "since": q["since"], "until": q["until"], "event": q["q"], "limit": q["limit"]}
    records = await ctx.rpc("logger", "query_logs",
                            {key: value for key, value in filters.items() if value is not None})
    return json_response({"records": records})


async def admin_stats(ctx: Ctx):
    await _require_admin(ctx)
    app = ctx.app
    try:
        queues = await queue_depths(app[SETTINGS].amqp_uri)
    except Exception as exc:  # the broker away: the charts still show the gateways
        log.warning("queue_depths_failed", error=repr(exc))
        queues = {}
    return json_response({"gateways": await gateway_samples(app[REDIS], app[CACHE_KEYS]),
                          "queues": queues, "sample_seconds": SAMPLE_SECONDS})


def setup(app: web.Application) -> None:
    """Every gateway samples its figures for the console's live charts (console_stats.py)."""
    sampler = StatsSampler(app[REDIS], app[CACHE_KEYS], app[SETTINGS].instance_id, app[METRICS])

    async def sampling(_app: web.Application) -> AsyncIterator[None]:
        sampler.start()
        yield
        await sampler.stop()

    app.cleanup_ctx.append(sampling)


def _ok(name: str, schema: dict) -> dict:
    return {200: s.obj(**{name: schema})}


ENDPOINTS = [
    Endpoint("GET", "/api/v1/admin/users", admin_list_users,
             "Every account, with filters (administrators).", TAG, query=USERS_QUERY,
             responses={200: s.obj(users={"type": "array", "items": ADMIN_USER},
                                   next_cursor={"type": ["string", "null"]})},
             errors=READ_ERRORS),
    Endpoint("POST", "/api/v1/admin/users/{user_id}/deactivate", admin_deactivate_user,
             "Deactivate an account (administrators).", TAG,
             responses=_ok("user", ADMIN_USER), errors=ACTION_ERRORS,
             description="Every session of the account ends at once (its sockets close with "
                         "4001); logging in is refused with 403 `account_deactivated`; its "
                         "messages stay. Not your own account (409). Repeating it changes "
                         "nothing."),
    Endpoint("POST", "/api/v1/admin/users/{user_id}/reactivate", admin_reactivate_user,
             "Reactivate an account (administrators).", TAG,
             responses=_ok("user", ADMIN_USER), errors=ACTION_ERRORS),
    Endpoint("PUT", "/api/v1/admin/users/{user_id}/role", admin_set_role,
             "Grant or take back the administrator role (administrators).", TAG,
             body=SET_ROLE, responses=_ok("user", ADMIN_USER),
             errors=(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
             description="`{\"admin\": true|false}`. Taking it back from the last "
                         "administrator, or from an account PARLEY_ADMINS names, is 409."),
    Endpoint("GET", "/api/v1/admin/rooms", admin_list_rooms,
             "Every room (private and direct ones too), with filters (administrators).", TAG,
             query=ROOMS_QUERY,
             responses={200: s.obj(rooms={"type": "array", "items": ADMIN_ROOM},
                                   next_cursor={"type": ["string", "null"]})},
             errors=READ_ERRORS),
    Endpoint("DELETE", "/api/v1/admin/rooms/{room_id}", admin_delete_room,
             "Delete any room with its messages (administrators).", TAG,
             responses={204: None}, errors=ACTION_ERRORS,
             description="Members receive room_deleted. Repeating it answers 204 again."),
    Endpoint("POST", "/api/v1/admin/rooms/{room_id}/archive", admin_archive_room,
             "Archive a room: readable, not writable (administrators).", TAG,
             responses=_ok("room", ADMIN_ROOM), errors=ACTION_ERRORS,
             description="Posting, editing, deleting messages and renaming are then refused "
                         "with 403 `forbidden` (details: `{\"room_id\": \"archived\"}`). "
                         "Members receive room_updated with `archived_at` set."),
    Endpoint("POST", "/api/v1/admin/rooms/{room_id}/unarchive", admin_unarchive_room,
             "Make an archived room writable again (administrators).", TAG,
             responses=_ok("room", ADMIN_ROOM), errors=ACTION_ERRORS),
    Endpoint("GET", "/api/v1/admin/rooms/{room_id}/messages", admin_list_messages,
             "Any room's history, newest page first (administrators).", TAG,
             query={"before_seq": {**s.SEQ, "minimum": 1}, "limit": s.LIMIT},
             responses={200: s.obj(room=ADMIN_ROOM,
                                   messages={"type": "array", "items": s.ref("Message")},
                                   has_more={"type": "boolean"})},
             errors=(401, 403, 404, 422, 503),
             description="Messages in ascending seq; `before_seq` pages back. Reading needs "
                         "no membership and is not audited."),
    Endpoint("DELETE", "/api/v1/admin/rooms/{room_id}/messages/{message_id}",
             admin_delete_message, "Delete any message (administrators).", TAG,
             responses={204: None}, errors=ACTION_ERRORS,
             description="The message becomes a tombstone (text \"\", deleted true) in "
                         "everyone's history; members receive message_deleted."),
    Endpoint("GET", "/api/v1/admin/audit", admin_audit,
             "The audit log: every administrator action, newest first (administrators).", TAG,
             query={"limit": s.LIMIT, "cursor": s.CURSOR},
             responses={200: s.obj(entries={"type": "array", "items": AUDIT_ENTRY},
                                   next_cursor={"type": ["string", "null"]})},
             errors=READ_ERRORS),
    Endpoint("GET", "/api/v1/admin/logs", admin_logs,
             "Search the log archive (administrators).", TAG, query=LOGS_QUERY,
             responses={200: s.obj(records={"type": "array", "items": LOG_RECORD})},
             errors=READ_ERRORS,
             description="The query of `python -m parley_logger.query` (newest first), "
                         "answered by the logger."),
    Endpoint("GET", "/api/v1/admin/stats", admin_stats,
             "Live figures of every gateway and the broker's queues (administrators).", TAG,
             responses={200: s.obj(
                 gateways={"type": "object", "additionalProperties": {
                     "type": "array", "items": STATS_SAMPLE},
                     "description": "Instance id -> its samples (oldest first, every "
                                    "sample_seconds, the last five minutes)."},
                 queues={"type": "object", "additionalProperties": {"type": ["integer", "null"]},
                         "description": "Messages waiting per queue (null: no such queue)."},
                 sample_seconds={"type": "number"})},
             errors=(401, 403, 503)),
]
