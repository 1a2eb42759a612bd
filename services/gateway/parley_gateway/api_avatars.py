"""Avatars: upload (PUT /api/v1/users/me/avatar, the picture's bytes as the body), removal
(DELETE), and serving (GET /api/v1/users/{user_id}/avatar?v=<version>) from this origin, so
the web client's Content-Security-Policy can keep `img-src 'self'`.

auth re-encodes and keeps the pictures (parley_auth/avatars.py); this side checks the type
and size while reading, and keeps the pictures it served in a bounded in-process cache. A
version names one picture for ever (a hash of its bytes): served under its own version, it
is cached by browsers for a year (immutable). The cache forgets a user's picture when auth
says their profile changed or they left (EventConsumer.profile_listeners), so a removed
avatar stops being served here at once; it also remembers who has no picture (404 without
asking auth again until their profile changes).
"""
from __future__ import annotations

import base64

from aiohttp import web

from parley_common.errors import NotFound, TooLarge, UnsupportedMediaType, ValidationFailed
from parley_common.limits import AVATAR_MEDIA_TYPES, MAX_AVATAR_BYTES
from parley_common.users import AVATAR_PATH

from . import schemas as s
from .appkeys import AVATARS, EVENTS
from .avatar_cache import CACHE_BYTES, AvatarCache, Picture
from .http import Ctx, Endpoint, json_response

# auth decodes and re-encodes the picture: more work than a usual call (but bounded by the
# size and pixel limits), so more time than the default RPC timeout.
UPLOAD_RPC_SECONDS = 15.0
IMMUTABLE = "public, max-age=31536000, immutable"
READ_CHUNK = 64 * 1024
VERSION = {"title": "v", "type": "string", "maxLength": 64, "pattern": "^[0-9a-f]+$",
           "x-message": "{name} must be an avatar version (hex digits)."}


async def read_picture(request: web.Request) -> tuple[str, bytes]:
    """The body's media type and bytes: 415 for a type other than PNG, JPEG or WebP, 413 as
    soon as more than MAX_AVATAR_BYTES arrived (or were announced), 422 for an empty body."""
    media_type = request.content_type
    if media_type not in AVATAR_MEDIA_TYPES:
        raise UnsupportedMediaType(
            "Send the picture's bytes with Content-Type image/png, image/jpeg or image/webp.",
            {"accepted": list(AVATAR_MEDIA_TYPES)})
    too_large = TooLarge(f"The picture must be at most {MAX_AVATAR_BYTES} bytes.",
                         {"max_bytes": MAX_AVATAR_BYTES})
    if request.content_length is not None and request.content_length > MAX_AVATAR_BYTES:
        raise too_large
    chunks, size = [], 0
    # Not request.read(): that stops at the JSON bodies' limit. Counted while reading, so a
    # body without (or lying about) its length is cut off right after the limit.
    async for chunk in request.content.iter_chunked(READ_CHUNK):
        size += len(chunk)
        if size > MAX_AVATAR_BYTES:
            raise too_large
        chunks.append(chunk)
    if not size:
        raise ValidationFailed(details={"image": "The body is empty: send the picture's bytes."})
    return media_type, b"".join(chunks)


async def put_avatar(ctx: Ctx):
    media_type, data = await read_picture(ctx.request)
    user = await _own_avatar_call(ctx, "set_avatar", media_type,
                                  base64.b64encode(data).decode("ascii"))
    return json_response({"user": user})


async def delete_avatar(ctx: Ctx):
    user = await _own_avatar_call(ctx, "delete_avatar")
    return json_response({"user": user})


async def _own_avatar_call(ctx: Ctx, method: str, *args):
    """auth.<method>(caller, *args), then forget the caller's cached picture here at once
    (other gateways forget it when user_updated reaches them)."""
    try:
        return await ctx.rpc("auth", method, ctx.user_id, *args, timeout=UPLOAD_RPC_SECONDS)
    finally:
        ctx.app[AVATARS].forget(ctx.user_id)


async def get_avatar(ctx: Ctx):
    user_id, wanted = ctx.path("user_id"), ctx.query["v"]
    cache = ctx.app[AVATARS]
    picture = cache.get(user_id, wanted) if wanted else None
    if picture is None:
        if cache.is_missing(user_id):
            raise NotFound("No such avatar.")
        ticket = cache.ticket()
        try:
            reply = await ctx.rpc("auth", "get_avatar", user_id)
        except NotFound:
            cache.put_missing(user_id, ticket)
            raise
        picture = Picture(reply["version"], reply["media_type"],
                          base64.b64decode(reply["image_base64"]))
        cache.put(user_id, picture, ticket)
    # An address without the current version (none, or an older one) may show another
    # picture tomorrow: browsers ask again each time (and get 304 while it is the same).
    headers = {"ETag": f'"{picture.version}"',
               "Cache-Control": IMMUTABLE if wanted == picture.version else "no-cache"}
    if _matches(ctx.request.headers.get("If-None-Match", ""), headers["ETag"]):
        return web.Response(status=304, headers=headers)
    return web.Response(body=picture.data, content_type=picture.media_type, headers=headers)


def _matches(if_none_match: str, etag: str) -> bool:
    tags = {part.strip().removeprefix("W/") for part in if_none_match.split(",")}
    return etag in tags or "*" in tags


def setup(app: web.Application) -> None:
    """The cache, and its link to auth's events (after realtime.setup_realtime)."""
    cache = AvatarCache(CACHE_BYTES)
    app[AVATARS] = cache
    app[EVENTS].profile_listeners.append(cache.forget)


_PICTURE = {"type": "string", "format": "binary"}
ENDPOINTS = [
    Endpoint("PUT", "/api/v1/users/me/avatar", put_avatar, "Upload your avatar.", "users",
             body_media={media_type: _PICTURE for media_type in AVATAR_MEDIA_TYPES},
             responses={200: s.obj(user=s.ref("SelfUser"))},
             errors=(401, 413, 415, 422, 429, 503),
             description=f"The body is the picture's bytes (not JSON), with its Content-Type: "
                         f"image/png, image/jpeg or image/webp, at most {MAX_AVATAR_BYTES} "
                         "bytes (413 `too_large` beyond, counted while reading; 415 for "
                         "another type). auth decodes it with the decoder of that type only "
                         "(422 naming `image` when it is not such a picture, or has more than "
                         "3072x3072 pixels), turns it upright, crops its centre square and "
                         "re-encodes it to a 128x128 WebP without any metadata. Your "
                         "`avatar_url` becomes `/api/v1/users/{id}/avatar?v=<version>`, the "
                         "version a hash of the stored picture; everyone who shows you gets "
                         "`user_updated`. The same picture again changes nothing."),
    Endpoint("DELETE", "/api/v1/users/me/avatar", delete_avatar, "Remove your avatar.",
             "users", responses={200: s.obj(user=s.ref("SelfUser"))},
             errors=(401, 429, 503),
             description="Your `avatar_url` becomes null (clients show your initials). "
                         "Removing none is fine. Deleting your account removes it too."),
    Endpoint("GET", AVATAR_PATH, get_avatar, "A user's avatar picture.", "users",
             auth=False, query={"v": VERSION}, content_type="image/webp",
             responses={200: _PICTURE, 304: None}, errors=(404, 422, 503),
             description="No token needed (an `<img>` cannot send one; avatars are public "
                         "profile data). Use the user's `avatar_url`: with the current "
                         "version `v` the answer is `Cache-Control: public, max-age=31536000, "
                         "immutable`; without it (or with an older one) the current picture "
                         "with `Cache-Control: no-cache`. `ETag` is the version: "
                         "`If-None-Match` with it answers 304. 404 when the user has no "
                         "avatar (or does not exist)."),
]
