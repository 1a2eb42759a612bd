"""Avatars through auth's RPC: an upload is re-encoded to a 128 x 128 WebP without metadata,
versioned by its content (the same picture again: same version, no event), refused when it is
not a picture of its declared type or describes too many pixels, removed on request and with
the account; remote avatar addresses are refused."""
from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
from PIL import Image
from sqlalchemy import text

from parley_common.errors import (NotFound, TooLarge, UnsupportedMediaType,
                                  ValidationFailed)
from parley_common.limits import MAX_AVATAR_BYTES, MAX_AVATAR_PIXELS


def encoded(image: Image.Image, image_format: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, image_format, **options)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def photo(size=(640, 480)) -> Image.Image:
    """A picture with detail (a gradient per channel), so re-encoding has work to do."""
    red = Image.linear_gradient("L").resize(size)
    return Image.merge("RGB", (red, red.transpose(Image.Transpose.ROTATE_90).resize(size),
                               Image.new("L", size, 90)))


def stored(avatar: dict) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(avatar["image_base64"])))
    image.load()
    return image


def updates_of(auth_events, user_id: str) -> list:
    return auth_events.matching(
        lambda key, body: key == "user_updated" and body["user"]["id"] == user_id)


async def test_upload_is_reencoded_to_a_128px_webp_and_versioned(rpc, new_user, auth_events):
    user = await new_user()
    me = await rpc.call("auth", "set_avatar", user["id"], "image/jpeg",
                        b64(encoded(photo((900, 300)), "JPEG")))
    url = me["avatar_url"]
    assert url.startswith(f"/api/v1/users/{user['id']}/avatar?v=")
    version = url.rsplit("=", 1)[1]
    avatar = await rpc.call("auth", "get_avatar", user["id"])
    assert avatar["version"] == version and avatar["media_type"] == "image/webp"
    image = stored(avatar)
    assert image.format == "WEBP" and image.size == (128, 128)
    # Everyone sees the new address: the profile, and the event to the replicas and gateways.
    _, body = await auth_events.wait_for(
        lambda key, body: key == "user_updated" and body["user"]["id"] == user["id"])
    assert body["user"]["avatar_url"] == url
    assert (await rpc.call("auth", "get_user", user["id"], user["id"]))["avatar_url"] == url

    # PNG with transparency and WebP are taken too; a new picture is a new version.
    clear = Image.new("RGBA", (64, 200), (10, 200, 30, 0))
    png = await rpc.call("auth", "set_avatar", user["id"], "image/png",
                         b64(encoded(clear, "PNG")))
    assert png["avatar_url"] != url
    image = stored(await rpc.call("auth", "get_avatar", user["id"]))
    assert image.size == (128, 128) and image.mode == "RGBA"  # small ones are scaled up
    webp = await rpc.call("auth", "set_avatar", user["id"], "image/webp",
                          b64(encoded(photo(), "WEBP")))
    assert webp["avatar_url"] not in (url, png["avatar_url"])


async def test_the_same_picture_again_is_the_same_version_and_no_event(rpc, new_user,
                                                                       auth_events):
    user = await new_user()
    picture = b64(encoded(photo(), "PNG"))
    first = await rpc.call("auth", "set_avatar", user["id"], "image/png", picture)
    await auth_events.wait_for(
        lambda key, body: key == "user_updated" and body["user"]["id"] == user["id"])
    again = await rpc.call("auth", "set_avatar", user["id"], "image/png", picture)
    assert again == first
    # A later change is seen after both: had the repeat emitted, it would be there too.
    await rpc.call("auth", "update_me", user["id"], display_name="Later")
    await auth_events.wait_for(lambda key, body: key == "user_updated"
                               and body["user"]["display_name"] == "Later"
                               and body["user"]["id"] == user["id"])
    assert len(updates_of(auth_events, user["id"])) == 2


async def test_metadata_is_stripped_and_orientation_applied(rpc, new_user):
    user = await new_user()
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"       # Make
    exif[0x0131] = "where-i-live"    # Software, any text
    exif[0x0112] = 6                 # Orientation: rotate 90° clockwise to view
    tall = Image.new("RGB", (400, 100), (200, 0, 0))
    tall.paste((0, 0, 200), (0, 0, 200, 100))  # left half blue, right half red
    data = encoded(tall, "JPEG", exif=exif, icc_profile=b"\0" * 128, quality=95)
    assert b"SecretCam" in data
    await rpc.call("auth", "set_avatar", user["id"], "image/jpeg", b64(data))
    avatar = await rpc.call("auth", "get_avatar", user["id"])
    raw = base64.b64decode(avatar["image_base64"])
    assert b"SecretCam" not in raw and b"where-i-live" not in raw
    assert b"EXIF" not in raw and b"ICCP" not in raw and b"XMP " not in raw
    image = stored(avatar)
    assert not image.getexif() and "icc_profile" not in image.info
    # Upright: the blue half (left) is now on top.
    top, bottom = image.getpixel((64, 10)), image.getpixel((64, 118))
    assert top[2] > 150 > top[0] and bottom[0] > 150 > bottom[2], (top, bottom)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` with almost no data (a decompression bomb's
    header): refused from the header, before anything is decoded."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + \
            struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + \
        chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("media_type,data", [
    ("image/png", b"not a picture at all"),
    ("image/png", encoded(photo(), "JPEG")),            # a JPEG declared as PNG
    ("image/jpeg", encoded(photo(), "PNG")),
    ("image/webp", encoded(photo(), "PNG")),
    ("image/png", encoded(photo(), "PNG")[:400]),       # truncated
    ("image/png", _png_header_only(20000, 20000)),      # too many pixels
    ("image/png", _png_header_only(100000, 100000)),    # beyond Pillow's own bomb limit
    ("image/png", b""),
])
async def test_bad_pictures_are_refused_naming_image(rpc, new_user, media_type, data):
    user = await new_user()
    with pytest.raises(ValidationFailed) as caught:
        await rpc.call("auth", "set_avatar", user["id"], media_type, b64(data))
    assert set(caught.value.details) == {"image"}
    assert (await rpc.call("auth", "get_me", user["id"]))["avatar_url"] is None
    with pytest.raises(NotFound):
        await rpc.call("auth", "get_avatar", user["id"])


async def test_pixel_limit_message_and_other_refusals(rpc, new_user):
    user = await new_user()
    side = int(MAX_AVATAR_PIXELS ** 0.5) + 1
    with pytest.raises(ValidationFailed) as caught:
        await rpc.call("auth", "set_avatar", user["id"], "image/png",
                       b64(_png_header_only(side, side)))
    assert "too many pixels" in caught.value.details["image"]
    with pytest.raises(UnsupportedMediaType):
        await rpc.call("auth", "set_avatar", user["id"], "image/gif", b64(b"GIF89a"))
    with pytest.raises(TooLarge):
        await rpc.call("auth", "set_avatar", user["id"], "image/png",
                       b64(b"\0" * (MAX_AVATAR_BYTES + 1)))
    with pytest.raises(ValidationFailed) as caught:
        await rpc.call("auth", "set_avatar", user["id"], "image/png", "not base64!")
    assert set(caught.value.details) == {"image"}


async def test_remove_avatar_and_remote_urls_refused(rpc, new_user, auth_events):
    user = await new_user()
    me = await rpc.call("auth", "set_avatar", user["id"], "image/png",
                        b64(encoded(photo(), "PNG")))
    # Sending the current address back (a client echoing the profile) changes nothing.
    assert await rpc.call("auth", "update_me", user["id"], avatar_url=me["avatar_url"]) == me
    for remote in ("https://example.com/a.png", "//example.com/a.png",
                   f"/api/v1/users/{user['id']}/avatar?v=0000000000000000"):
        with pytest.raises(ValidationFailed) as caught:
            await rpc.call("auth", "update_me", user["id"], avatar_url=remote)
        assert set(caught.value.details) == {"avatar_url"}

    removed = await rpc.call("auth", "delete_avatar", user["id"])
    assert removed["avatar_url"] is None
    with pytest.raises(NotFound):
        await rpc.call("auth", "get_avatar", user["id"])
    await auth_events.wait_for(lambda key, body: key == "user_updated"
                               and body["user"]["id"] == user["id"]
                               and body["user"]["avatar_url"] is None)
    count = len(updates_of(auth_events, user["id"]))
    assert await rpc.call("auth", "delete_avatar", user["id"]) == removed  # a repeat: nothing
    # update_me(avatar_url="") removes it too.
    await rpc.call("auth", "set_avatar", user["id"], "image/png", b64(encoded(photo(), "PNG")))
    cleared = await rpc.call("auth", "update_me", user["id"], avatar_url="")
    assert cleared["avatar_url"] is None
    with pytest.raises(NotFound):
        await rpc.call("auth", "get_avatar", user["id"])
    await auth_events.wait_for(lambda key, body: key == "user_updated"
                               and body["user"]["id"] == user["id"]
                               and len(updates_of(auth_events, user["id"])) == count + 2)


async def test_account_deletion_removes_the_avatar(rpc, new_user, password, auth_db):
    user = await new_user()
    await rpc.call("auth", "set_avatar", user["id"], "image/png", b64(encoded(photo(), "PNG")))
    await rpc.call("auth", "delete_me", user["id"], password)
    with pytest.raises(NotFound):
        await rpc.call("auth", "get_avatar", user["id"])
    with auth_db.connect() as connection:
        left = connection.execute(text("SELECT count(*) FROM avatars WHERE user_id = :id"),
                                  {"id": user["id"]}).scalar()
    assert left == 0
    with pytest.raises(NotFound):
        await rpc.call("auth", "get_avatar", "no-such-user")
