"""Public REST contract, avatars: upload (PUT /api/v1/users/me/avatar, the picture's bytes),
serving from the gateway's origin with caching headers (immutable under its version, ETag,
304), the size/type/content refusals (413, 415, 422), removal, others seeing it (profiles,
members through rooms' replica, user_updated on the socket), remote avatar URLs refused."""
from __future__ import annotations

import asyncio
import io

import aiohttp
from PIL import Image

from helpers import auth_headers, new_user, next_frame, unique, ws_url
from parley_common.limits import MAX_AVATAR_BYTES

ME = "/api/v1/users/me/avatar"


def picture(image_format: str = "PNG", size=(300, 200), colour=(200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, image_format)
    return out.getvalue()


async def upload(client, data: bytes, media_type: str = "image/png", **headers):
    return await client.put(ME, data=data, headers={"Content-Type": media_type, **headers})


async def fetch(http: aiohttp.ClientSession, url: str, **headers):
    async with http.get(url, headers=headers) as response:
        return response.status, response.headers, await response.read()


async def test_upload_serve_with_caching_headers_and_304(suite, http):
    alice = await new_user(http, suite.url)
    reply = await upload(alice, picture("JPEG", (640, 480)), "image/jpeg")
    assert reply.status == 200, reply
    url = reply.body["user"]["avatar_url"]
    assert url.startswith(f"/api/v1/users/{alice.id}/avatar?v="), url
    version = url.split("v=", 1)[1]

    # No token needed: an <img> cannot send one.
    status, headers, body = await fetch(http, suite.url + url)
    assert status == 200
    assert headers["Content-Type"] == "image/webp"
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert headers["ETag"] == f'"{version}"'
    assert headers["X-Content-Type-Options"] == "nosniff"
    image = Image.open(io.BytesIO(body))
    assert image.format == "WEBP" and image.size == (128, 128)
    # Served again from the gateway's cache, and revalidated by its ETag.
    again = await fetch(http, suite.url + url)
    assert again[0] == 200 and again[2] == body
    not_modified = await fetch(http, suite.url + url, **{"If-None-Match": f'"{version}"'})
    assert not_modified[0] == 304 and not_modified[2] == b""
    # Without its version (or an old one): the current picture, to be revalidated each time.
    status, headers, unversioned = await fetch(http, f"{suite.url}/api/v1/users/{alice.id}/avatar")
    assert status == 200 and unversioned == body and headers["Cache-Control"] == "no-cache"
    status, headers, _ = await fetch(http, suite.url + url.replace(version, "0" * len(version)))
    assert status == 200 and headers["Cache-Control"] == "no-cache"

    # Every gateway serves it, and the profile and self user carry the address.
    for base in suite.gateway_urls:
        assert (await fetch(http, base + url))[2] == body
    me = await alice.get("/api/v1/users/me")
    assert me.body["user"]["avatar_url"] == url

    # The same picture again: same address. Another: a new one.
    same = await upload(alice, picture("JPEG", (640, 480)), "image/jpeg")
    assert same.status == 200 and same.body["user"]["avatar_url"] == url
    other = await upload(alice, picture("WEBP", colour=(0, 0, 255)), "image/webp")
    assert other.status == 200 and other.body["user"]["avatar_url"] != url


async def test_refusals_413_415_422(suite, http):
    alice = await new_user(http, suite.url)
    too_big = b"\x89PNG\r\n\x1a\n" + b"\0" * MAX_AVATAR_BYTES
    reply = await upload(alice, too_big)
    assert reply.status == 413 and reply.error["code"] == "too_large", reply

    async def chunks():  # no Content-Length: counted while reading
        for _ in range(MAX_AVATAR_BYTES // 65536 + 2):
            yield b"\0" * 65536
    streamed = await alice.put(ME, data=chunks(), headers={"Content-Type": "image/png"})
    assert streamed.status == 413 and streamed.error["code"] == "too_large", streamed

    for media_type in ("image/gif", "application/json", "text/plain", "image/svg+xml"):
        reply = await upload(alice, picture(), media_type)
        assert reply.status == 415 and reply.error["code"] == "unsupported_media_type", reply
    for data, media_type in ((b"definitely not a picture", "image/png"),
                             (picture("PNG"), "image/jpeg"),     # a PNG declared as JPEG
                             (picture("PNG")[:300], "image/png"),  # cut short
                             (b"", "image/png")):
        reply = await upload(alice, data, media_type)
        assert reply.status == 422 and set(reply.error["details"]) == {"image"}, reply
    no_token = await http.put(suite.url + ME, data=picture(), headers={"Content-Type": "image/png"})
    assert no_token.status == 401
    assert (await alice.get("/api/v1/users/me")).body["user"]["avatar_url"] is None
    missing = await fetch(http, f"{suite.url}/api/v1/users/{alice.id}/avatar")
    assert missing[0] == 404
    bad_version = await fetch(http, f"{suite.url}/api/v1/users/{alice.id}/avatar?v=<script>")
    assert bad_version[0] == 422


async def test_others_see_it_and_removal(suite, http):
    alice = await new_user(http, suite.url)
    bob = await new_user(http, suite.url)
    room = await alice.post("/api/v1/rooms", {"name": unique("av"), "kind": "public"})
    room_id = room.body["room"]["id"]
    assert (await bob.post(f"/api/v1/rooms/{room_id}/join")).status == 200
    async with http.ws_connect(ws_url(suite.url), headers=auth_headers(bob.token)) as ws:
        await next_frame(ws, "ready")
        await ws.send_json({"type": "subscribe", "room_id": room_id})
        await next_frame(ws, "subscribed")
        url = (await upload(alice, picture())).body["user"]["avatar_url"]
        frame = await next_frame(ws, "user_updated")
        assert frame["user"] == {"id": alice.id, "username": alice.user["username"],
                                 "display_name": alice.user["display_name"], "avatar_url": url}

    seen = await bob.get(f"/api/v1/users/{alice.id}")
    assert seen.body["user"]["avatar_url"] == url
    status, _, body = await fetch(http, suite.url + url)
    assert status == 200 and body
    for _ in range(100):  # rooms' replica follows user_updated
        members = await bob.get(f"/api/v1/rooms/{room_id}/members")
        shown = {m["user"]["id"]: m["user"]["avatar_url"] for m in members.body["members"]}
        if shown[alice.id] == url:
            break
        await asyncio.sleep(0.1)
    assert shown[alice.id] == url

    removed = await alice.delete(ME)
    assert removed.status == 200 and removed.body["user"]["avatar_url"] is None
    assert (await alice.delete(ME)).status == 200  # nothing to remove: fine
    for base in suite.gateway_urls:  # the other gateways forget it through user_updated
        for _ in range(100):
            if (await fetch(http, base + url))[0] == 404:
                break
            await asyncio.sleep(0.1)
        assert (await fetch(http, base + url))[0] == 404, base

    # Deleting the account removes the picture.
    await upload(alice, picture(colour=(1, 2, 3)))
    assert (await alice.request("DELETE", "/api/v1/users/me",
                                {"password": alice.password})).status == 204
    assert (await fetch(http, f"{suite.url}/api/v1/users/{alice.id}/avatar"))[0] == 404


async def avatar_lookups(http, base: str) -> float:
    """How many auth.get_avatar calls this gateway has made (its RPC histogram, any outcome)."""
    async with http.get(base + "/metrics") as response:
        text = await response.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("parley_gateway_rpc_latency_seconds_count")
               and 'method="auth.get_avatar"' in line)


async def test_a_remembered_missing_avatar_does_not_hide_a_new_one(suite, http):
    """Each gateway remembers that a user has no picture (no auth call per miss); an upload
    through any gateway makes every gateway serve it."""
    alice = await new_user(http, suite.url)
    address = f"/api/v1/users/{alice.id}/avatar"
    for base in suite.gateway_urls:
        assert (await fetch(http, base + address))[0] == 404, base
        asked = await avatar_lookups(http, base)
        assert asked >= 1, base  # the first miss did ask auth
        for _ in range(3):  # answered from the gateway's memory: auth is not asked again
            assert (await fetch(http, base + address))[0] == 404, base
        assert await avatar_lookups(http, base) == asked, base
    url = (await upload(alice, picture())).body["user"]["avatar_url"]
    for base in suite.gateway_urls:
        for _ in range(100):
            if (await fetch(http, base + url))[0] == 200:
                break
            await asyncio.sleep(0.1)
        status, _, body = await fetch(http, base + url)
        assert status == 200 and body, base


async def test_remote_avatar_urls_are_refused(suite, http):
    alice = await new_user(http, suite.url)
    for remote in ("https://example.com/a.png", "http://example.com/a.png",
                   "//example.com/a.png", "javascript:alert(1)"):
        reply = await alice.patch("/api/v1/users/me", {"avatar_url": remote})
        assert reply.status == 422 and set(reply.error["details"]) == {"avatar_url"}, reply
    url = (await upload(alice, picture())).body["user"]["avatar_url"]
    # A client sending back the profile it got changes nothing; "" removes the picture.
    echoed = await alice.patch("/api/v1/users/me", {"display_name": "Al", "avatar_url": url})
    assert echoed.status == 200 and echoed.body["user"]["avatar_url"] == url
    cleared = await alice.patch("/api/v1/users/me", {"avatar_url": ""})
    assert cleared.status == 200 and cleared.body["user"]["avatar_url"] is None
    assert (await fetch(http, suite.url + url))[0] == 404


async def test_csp_allows_images_from_this_origin_only(suite, http):
    async with http.get(suite.url + "/") as response:
        csp = response.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["img-src"] == ["'self'"], csp
