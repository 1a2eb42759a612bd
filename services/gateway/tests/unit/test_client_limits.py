"""The web client's form fields carry the server's size limits as minlength/maxlength (so the
browser stops a user before the API would refuse). index.html cannot import Python, so this
test is what keeps each of those numbers equal to its one definition in parley_common.limits."""
from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from parley_common import limits

INDEX = Path(__file__).resolve().parents[2] / "parley_gateway" / "static" / "index.html"

# field id -> (minlength, maxlength) as the API's limits say; None: no minlength on the field.
EXPECTED = {
    "reg-username": (limits.MIN_USERNAME, limits.MAX_USERNAME),
    "reg-email": (None, limits.MAX_EMAIL),
    "reg-display": (None, limits.MAX_DISPLAY_NAME),
    "reg-password": (limits.MIN_PASSWORD, limits.MAX_PASSWORD),
    "composer-input": (None, limits.MAX_TEXT),
    "create-name": (None, limits.MAX_ROOM_NAME),
    "create-topic": (None, limits.MAX_TOPIC),
    "edit-room-name": (None, limits.MAX_ROOM_NAME),
    "edit-room-topic": (None, limits.MAX_TOPIC),
    "profile-display": (None, limits.MAX_DISPLAY_NAME),
    "new-password": (limits.MIN_PASSWORD, limits.MAX_PASSWORD),
    "msg-search": (None, limits.MAX_SEARCH_QUERY),
    "search-q": (None, limits.MAX_SEARCH_QUERY),
}


class _SizedFields(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, tuple[int | None, int | None]] = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "maxlength" in attributes or "minlength" in attributes:
            def number(name):
                return int(attributes[name]) if name in attributes else None
            self.fields[attributes.get("id", f"<{tag} without id>")] = (
                number("minlength"), number("maxlength"))


def test_every_sized_field_of_the_web_client_uses_the_api_limit():
    parser = _SizedFields()
    parser.feed(INDEX.read_text(encoding="utf-8"))
    assert parser.fields == EXPECTED


def test_the_avatar_picker_takes_what_the_api_takes():
    avatar_js = (INDEX.parent / "js" / "avatar.js").read_text(encoding="utf-8")
    assert f"MAX_BYTES = {limits.MAX_AVATAR_BYTES // 1024} * 1024;" in avatar_js
    assert "ACCEPTED = [" + ", ".join(f"'{t}'" for t in limits.AVATAR_MEDIA_TYPES) + "]" \
        in avatar_js
    assert f'accept="{",".join(limits.AVATAR_MEDIA_TYPES)}"' in INDEX.read_text(encoding="utf-8")
