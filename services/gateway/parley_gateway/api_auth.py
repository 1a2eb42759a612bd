"""POST /api/v1/auth/register, /login, /logout."""
from __future__ import annotations

import uuid

from parley_common.errors import InvalidCredentials, ParleyError
from parley_common.logs import get_logger

from . import schemas as s
from .http import Ctx, Endpoint, json_response, no_content
from .ratelimit import client_address, login_key

log = get_logger("parley_gateway.auth")
MAX_USER_AGENT = 256
TOKEN_REPLY = s.obj(access_token={"type": "string"},
                    token_type={"type": "string", "enum": ["Bearer"]},
                    expires_in={"type": "integer"}, user=s.ref("SelfUser"))


def token_reply(result: dict):
    """auth's login/refresh answer as the API shows it (the session id stays inside the token)."""
    return json_response({key: result[key] for key in
                          ("access_token", "token_type", "expires_in", "user")})


async def register(ctx: Ctx):
    body = ctx.body
    await ctx.app["ratelimit"].reserve_registration(
        client_address(ctx.request, ctx.app["settings"]))
    # One request id per HTTP request: a redelivered RPC answers with the user it already made.
    # Transient: the password must never be written to the broker's disk.
    user = await ctx.rpc("auth", "register", body["username"], body["email"], body["password"],
                         body.get("display_name"), request_id=uuid.uuid4().hex,
                         persistent=False)
    return json_response({"user": user}, 201)


async def login(ctx: Ctx):
    login_name, password = ctx.body["username"], ctx.body["password"]
    limiter = ctx.app["ratelimit"]
    address = client_address(ctx.request, ctx.app["settings"])
    # The attempt is reserved before any password is hashed, per account as auth resolves
    # the login (username and e-mail of one account share a counter) and per address.
    account = await ctx.rpc("auth", "login_account", login_name) or login_key(login_name)[:254]
    await limiter.reserve_login(account, address)
    user_agent = ctx.request.headers.get("User-Agent", "")[:MAX_USER_AGENT] or None
    try:
        result = await ctx.rpc("auth", "login", login_name, password, user_agent,
                               persistent=False)
    except InvalidCredentials:
        raise  # the reserved attempt stays counted
    except ParleyError:
        await limiter.login_not_evaluated(account, address)
        raise
    await limiter.login_succeeded(account, address)
    return token_reply(result)


async def refresh(ctx: Ctx):
    principal = ctx.principal
    return token_reply(await ctx.rpc("auth", "refresh", principal.user_id, principal.session_id))


async def logout(ctx: Ctx):
    principal = ctx.principal
    # The shared cache first: every gateway refuses the token from this moment on.
    await ctx.app["tokens"].revoke_local(principal.session_id, principal.expires_at)
    await ctx.rpc("auth", "logout", principal.user_id, principal.session_id)
    hub = ctx.app.get("hub")
    if hub is not None:  # this instance's sockets at once; others follow session_revoked
        await hub.close_session(principal.session_id)
    return no_content()


ENDPOINTS = [
    Endpoint("POST", "/api/v1/auth/register", register, "Create an account.", "auth",
             auth=False, body=s.REGISTER, responses={201: s.obj(user=s.ref("SelfUser"))},
             errors=(400, 409, 413, 415, 422, 429, 503)),
    Endpoint("POST", "/api/v1/auth/login", login, "Log in with username or email.", "auth",
             auth=False, body=s.LOGIN, responses={200: TOKEN_REPLY},
             errors=(400, 401, 413, 415, 422, 429, 503),
             description="Failed logins are counted per account and per client address; past "
                         "the limit the gateway answers 429 with Retry-After without asking "
                         "auth. A wrong name and a wrong password give the same 401."),
    Endpoint("POST", "/api/v1/auth/refresh", refresh, "A new token for this session.", "auth",
             responses={200: TOKEN_REPLY},
             errors=(401, 429, 503),
             description="Call with the current, still valid token: the session's expiry "
                         "slides forward by one token lifetime, up to SESSION_MAX_SECONDS "
                         "(default 30 days) after the login; then, or once the token has "
                         "expired, log in again. Older tokens stay valid until their own "
                         "expiry. A WebSocket takes the new token as a second `auth` frame."),
    Endpoint("POST", "/api/v1/auth/logout", logout, "End this session.", "auth",
             responses={204: None}, errors=(401, 503),
             description="The token and every socket of the session stop working at once."),
]
