"""/api/v1/users/me (GET, PATCH, DELETE), /api/v1/users?q=, /api/v1/users/{id}."""
from __future__ import annotations

from . import schemas as s
from .api_auth import password_checked
from .appkeys import HUB, TOKENS
from .http import Ctx, Endpoint, json_response, no_content


async def get_me(ctx: Ctx):
    return json_response({"user": await ctx.rpc("auth", "get_me", ctx.user_id)})


async def update_me(ctx: Ctx):
    changes = {key: ctx.body[key] for key in ("display_name", "avatar_url") if key in ctx.body}
    user = await ctx.rpc("auth", "update_me", ctx.user_id, **changes)
    return json_response({"user": user})


async def delete_me(ctx: Ctx):
    principal = ctx.principal
    await password_checked(ctx, principal.user_id, ctx.rpc(
        "auth", "delete_me", principal.user_id, ctx.body["password"]))
    # auth revokes every session (session_revoked per session); this one goes right now.
    await ctx.app[TOKENS].revoke_local(principal.session_id, principal.expires_at)
    await ctx.app[HUB].close_session(principal.session_id)
    return no_content()


async def search_users(ctx: Ctx):
    q = (ctx.query["q"] or "").strip()
    users = await ctx.rpc("auth", "search_users", ctx.user_id, q, ctx.query["limit"])
    return json_response({"users": users})


async def get_user(ctx: Ctx):
    user = await ctx.rpc("auth", "get_user", ctx.user_id, ctx.path("user_id"))
    return json_response({"user": user})


ENDPOINTS = [
    Endpoint("GET", "/api/v1/users/me", get_me, "Your own profile (with email).", "users",
             responses={200: s.obj(user=s.ref("SelfUser"))}, errors=(401, 503)),
    Endpoint("PATCH", "/api/v1/users/me", update_me, "Change your display name or avatar.",
             "users", body=s.UPDATE_ME, responses={200: s.obj(user=s.ref("SelfUser"))},
             errors=(400, 401, 413, 415, 422, 429, 503)),
    Endpoint("DELETE", "/api/v1/users/me", delete_me, "Delete your account.", "users",
             body=s.DELETE_ME, responses={204: None},
             errors=(400, 401, 413, 415, 422, 429, 503),
             description="Asks for the password again (`{\"password\"}`; a wrong one: 422 "
                         "naming password, counted like a failed login). Every session of "
                         "the account ends."),
    Endpoint("GET", "/api/v1/users", search_users,
             "Prefix search on username and display name (excludes you).", "users",
             query={"q": s.SEARCH, "limit": {**s.LIMIT, "default": 20}},
             responses={200: s.obj(users={"type": "array", "items": s.ref("User")})},
             errors=(401, 422, 503)),
    Endpoint("GET", "/api/v1/users/{user_id}", get_user, "A user's public profile.", "users",
             responses={200: s.obj(user=s.ref("User"))}, errors=(401, 404, 503)),
]
