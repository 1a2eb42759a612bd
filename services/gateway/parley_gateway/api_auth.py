"""POST /api/v1/auth/register, /login, /refresh, /logout, /password; GET and DELETE
/api/v1/auth/sessions[/{session_id}].

The access token (15 minutes) is never a refresh credential. Login also issues a separate
refresh credential, rotated on every use; presenting an already used one ends the session
(auth.rotate_refresh). Browsers get it as an HttpOnly, Secure, SameSite=Strict cookie scoped to
the refresh path (script can never read it); terminal clients ask for it in the body
(``refresh_delivery: "body"``) and keep it in a 0600 file.
"""
from __future__ import annotations

import uuid
from typing import Any, Awaitable

from aiohttp import web

from parley_common.errors import (InvalidCredentials, ParleyError, Unauthenticated,
                                  ValidationFailed)
from parley_common.limits import MAX_LOGIN, MAX_USER_AGENT
from parley_common.logs import get_logger

from . import schemas as s
from .appkeys import HUB, RATELIMIT, SETTINGS, TOKENS
from .http import Ctx, Endpoint, error_response, json_response, no_content
from .ratelimit import client_address, login_key

log = get_logger("parley_gateway.auth")
REFRESH_PATH = "/api/v1/auth/refresh"
REFRESH_COOKIE = "parley_refresh"
TOKEN_REPLY = s.obj(access_token={"type": "string"},
                    token_type={"type": "string", "enum": ["Bearer"]},
                    expires_in={"type": "integer"}, user=s.ref("SelfUser"))
TOKEN_REPLY_WITH_REFRESH = {**TOKEN_REPLY, "properties": {
    **TOKEN_REPLY["properties"],
    "refresh_token": {"type": "string", "description": "Only with refresh_delivery \"body\"."},
    "refresh_expires_in": {"type": "integer"}}}


def token_reply(result: dict, delivery: str) -> web.Response:
    """auth's answer as the API shows it: the session id stays inside the token, the refresh
    credential goes into the cookie or (terminal clients) the body."""
    body = {key: result[key] for key in ("access_token", "token_type", "expires_in", "user")}
    if delivery == "body":
        body["refresh_token"] = result["refresh_token"]
        body["refresh_expires_in"] = result["refresh_expires_in"]
    response = json_response(body)
    if delivery == "cookie":
        set_refresh_cookie(response, result["refresh_token"], result["refresh_expires_in"])
    response.headers["Cache-Control"] = "no-store"
    return response


def set_refresh_cookie(response: web.Response, value: str, max_age: int) -> None:
    # Secure cookies are kept over plain http://localhost too (browsers treat localhost as a
    # secure context); anywhere else Parley is served over HTTPS by the load balancer.
    response.set_cookie(REFRESH_COOKIE, value, max_age=max(0, max_age), path=REFRESH_PATH,
                        httponly=True, secure=True, samesite="Strict")


async def register(ctx: Ctx):
    body = ctx.body
    await ctx.app[RATELIMIT].reserve_registration(
        client_address(ctx.request, ctx.app[SETTINGS]))
    # One request id per HTTP request: a redelivered RPC answers with the user it already made.
    # Every RPC request is transient (parley_common.rpc): the password never reaches disk.
    user = await ctx.rpc("auth", "register", body["username"], body["email"], body["password"],
                         body.get("display_name"), request_id=uuid.uuid4().hex)
    return json_response({"user": user}, 201)


async def password_checked(ctx: Ctx, account: str, call: Awaitable[Any]) -> Any:
    """Run an auth call that checks a password under the login throttle: the attempt is
    reserved (per account, per address) before auth hashes anything, stays counted when the
    password was wrong, and is given back when it was right or never judged."""
    limiter = ctx.app[RATELIMIT]
    address = client_address(ctx.request, ctx.app[SETTINGS])
    try:
        await limiter.reserve_login(account, address)
    except ParleyError:
        call.close()  # never awaited: no RPC goes out
        raise
    try:
        result = await call
    except InvalidCredentials:
        raise
    except ValidationFailed as exc:
        if not {"password", "old_password"} & set(exc.details):
            await limiter.login_not_evaluated(account, address)
        raise
    except ParleyError:
        await limiter.login_not_evaluated(account, address)
        raise
    await limiter.login_succeeded(account, address)
    return result


async def login(ctx: Ctx):
    login_name, password = ctx.body["username"], ctx.body["password"]
    # Attempts count per account as auth resolves the login (username and e-mail of one
    # account share a counter), or per normalised login when it names nobody.
    account = (await ctx.rpc("auth", "login_account", login_name)
               or login_key(login_name)[:MAX_LOGIN])
    user_agent = ctx.request.headers.get("User-Agent", "")[:MAX_USER_AGENT] or None
    result = await password_checked(ctx, account, ctx.rpc(
        "auth", "login", login_name, password, user_agent))
    return token_reply(result, ctx.body.get("refresh_delivery") or "cookie")


async def refresh(ctx: Ctx):
    token, delivery = ctx.request.cookies.get(REFRESH_COOKIE), "cookie"
    if ctx.body.get("refresh_token"):
        token, delivery = ctx.body["refresh_token"], "body"
    if not token:
        raise Unauthenticated("Send the refresh credential (cookie, or refresh_token in the "
                              "body).")
    try:
        result = await ctx.rpc("auth", "rotate_refresh", token)
    except ParleyError as exc:
        if exc.code == "unauthenticated" and delivery == "cookie":
            response = error_response(exc)
            set_refresh_cookie(response, "", 0)  # a dead credential is forgotten
            return response
        raise
    return token_reply(result, delivery)


async def logout(ctx: Ctx):
    principal = ctx.principal
    # The shared cache first: every gateway refuses the token from this moment on.
    await ctx.app[TOKENS].revoke_local(principal.session_id, principal.expires_at)
    await ctx.rpc("auth", "logout", principal.user_id, principal.session_id)
    # this instance's sockets at once; others follow session_revoked
    await ctx.app[HUB].close_session(principal.session_id)
    response = no_content()
    set_refresh_cookie(response, "", 0)
    return response


async def change_password(ctx: Ctx):
    principal = ctx.principal
    await password_checked(ctx, principal.user_id, ctx.rpc(
        "auth", "change_password", principal.user_id, principal.session_id,
        ctx.body["old_password"], ctx.body["new_password"]))
    return no_content()


async def list_sessions(ctx: Ctx):
    sessions = await ctx.rpc("auth", "list_sessions", ctx.user_id, ctx.principal.session_id)
    return json_response({"sessions": sessions})


async def revoke_session(ctx: Ctx):
    session_id = ctx.path("session_id")
    if session_id == ctx.principal.session_id:
        return await logout(ctx)
    await ctx.rpc("auth", "revoke_session", ctx.user_id, session_id)
    return no_content()


async def revoke_other_sessions(ctx: Ctx):
    revoked = await ctx.rpc("auth", "revoke_other_sessions", ctx.user_id,
                            ctx.principal.session_id)
    return json_response({"revoked": revoked})


ENDPOINTS = [
    Endpoint("POST", "/api/v1/auth/register", register, "Create an account.", "auth",
             auth=False, body=s.REGISTER, responses={201: s.obj(user=s.ref("SelfUser"))},
             errors=(400, 409, 413, 415, 422, 429, 503),
             description="Limited per client address (REGISTRATIONS_PER_ADDRESS per "
                         "REGISTRATION_WINDOW_SECONDS): past it, 429 with Retry-After."),
    Endpoint("POST", "/api/v1/auth/login", login, "Log in with username or email.", "auth",
             auth=False, body=s.LOGIN, responses={200: TOKEN_REPLY_WITH_REFRESH},
             errors=(400, 401, 413, 415, 422, 429, 503),
             description="Attempts are reserved per account (however the login is spelled: "
                         "username or e-mail, any case) and per client address before any "
                         "password is checked; past the limit the gateway answers 429 with "
                         "Retry-After without asking auth, and so does auth when it is busy "
                         "hashing. A wrong name and a wrong password give the same 401. Also "
                         "issues the refresh credential: the `parley_refresh` cookie "
                         "(HttpOnly, Secure, SameSite=Strict, Path=/api/v1/auth/refresh), or "
                         "with `refresh_delivery: \"body\"` the `refresh_token` field."),
    Endpoint("POST", REFRESH_PATH, refresh, "A new access token for this session.", "auth",
             auth=False, body=s.REFRESH, body_optional=True,
             responses={200: TOKEN_REPLY_WITH_REFRESH},
             errors=(400, 401, 413, 415, 422, 429, 503),
             description="Takes the refresh credential, from the `parley_refresh` cookie or "
                         "as `{\"refresh_token\": ...}` (no access token needed), and answers "
                         "a new access token and a NEW refresh credential (the same way it "
                         "came); the old one is used up. Presenting a used one again ends the "
                         "whole session (401): someone holds a copy. A session unused for "
                         "REFRESH_TTL_SECONDS (14 days) or older than SESSION_MAX_SECONDS (30 "
                         "days) ends. A WebSocket takes the new access token as a second "
                         "`auth` frame."),
    Endpoint("POST", "/api/v1/auth/logout", logout, "End this session.", "auth",
             responses={204: None}, errors=(401, 503),
             description="The token, the refresh credential and every socket of the session "
                         "stop working at once; the cookie is cleared."),
    Endpoint("POST", "/api/v1/auth/password", change_password, "Change your password.", "auth",
             body=s.CHANGE_PASSWORD, responses={204: None},
             errors=(400, 401, 413, 415, 422, 429, 503),
             description="Needs the current password (a wrong one: 422 naming old_password, "
                         "and counted like a failed login). Every OTHER session of the account "
                         "ends; this one stays."),
    Endpoint("GET", "/api/v1/auth/sessions", list_sessions, "Your active sessions.", "auth",
             responses={200: s.obj(sessions={"type": "array", "items": s.ref("Session")})},
             errors=(401, 503),
             description="Newest first, with the device (user agent), when each was created "
                         "and last refreshed; `current` marks the one making this request."),
    Endpoint("DELETE", "/api/v1/auth/sessions", revoke_other_sessions,
             "End all your other sessions.", "auth",
             responses={200: s.obj(revoked={"type": "integer"})}, errors=(401, 429, 503)),
    Endpoint("DELETE", "/api/v1/auth/sessions/{session_id}", revoke_session,
             "End one of your sessions.", "auth", responses={204: None},
             errors=(401, 404, 429, 503),
             description="Its tokens, refresh credential and sockets stop working at once. "
                         "Ending the current session is a logout."),
]
