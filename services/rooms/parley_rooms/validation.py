"""Argument checks for every RPC: bad input becomes ValidationFailed naming each field."""
from __future__ import annotations

import base64
import json
from typing import Any

import emoji as emoji_data

from parley_common.errors import ValidationFailed
# The limits are parley_common.limits' (the gateway's schemas use the same); the service reads
# them from here (v.MAX_TEXT, ...).
from parley_common.limits import (DEFAULT_PAGE, MAX_CLIENT_ID, MAX_CURSOR, MAX_EMOJI, MAX_ID,
                                  MAX_MEMBER_IDS, MAX_PAGE, MAX_QUERY, MAX_TEXT, MAX_TOPIC,
                                  MIN_PAGE)
from parley_common.limits import MAX_POSTS_PER_CALL as MAX_POSTS
from parley_common.limits import MAX_ROOM_NAME as MAX_NAME
from parley_common.limits import DEFAULT_SEARCH_PAGE, MAX_SEARCH_QUERY, MAX_SEARCH_TERMS
from parley_common.text import CONTROL_PROBLEM, PROBLEM, has_control_chars, storable


class Checker:
    """Collects every problem first, so one reply names all bad fields."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def fail(self, field: str, reason: str) -> None:
        self.errors.setdefault(field, reason)

    def done(self) -> None:
        if self.errors:
            raise ValidationFailed(details=self.errors)

    def id(self, field: str, value: Any) -> str:
        if not isinstance(value, str) or not value or len(value) > MAX_ID or not storable(value):
            self.fail(field, f"must be an id (a non-empty string of at most {MAX_ID} characters)")
            return ""
        return value

    def int(self, field: str, value: Any, *, minimum: int = 0, maximum: int | None = None,
            optional: bool = False, default: int | None = None) -> int | None:
        if value is None and optional:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field, "must be an integer")
            return default
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            self.fail(field, f"must be {bound}")
            return default
        return value

    def limit(self, value: Any) -> int:
        return self.int("limit", value, minimum=MIN_PAGE, maximum=MAX_PAGE, optional=True,
                        default=DEFAULT_PAGE)

    def bool(self, field: str, value: Any) -> bool:
        if not isinstance(value, bool):
            self.fail(field, "must be true or false")
            return False
        return value

    def text(self, field: str, value: Any, *, maximum: int, required: bool = True,
             minimum: int = 1, plain: bool = False) -> str | None:
        """A string trimmed of surrounding whitespace, minimum..maximum characters; ``plain``
        (names, topics) also refuses control and formatting characters (Unicode Cc/Cf)."""
        if value is None and not required:
            return None
        if not isinstance(value, str):
            self.fail(field, "must be a string")
            return None
        if not storable(value):
            self.fail(field, PROBLEM)
            return None
        value = value.strip()
        if plain and has_control_chars(value):
            self.fail(field, CONTROL_PROBLEM)
            return None
        if len(value) < minimum or len(value) > maximum:
            if minimum > 0:
                self.fail(field, f"must be {minimum} to {maximum} characters after trimming")
            else:
                self.fail(field, f"must be at most {maximum} characters")
            return None
        return value

    def emoji(self, field: str, value: Any) -> str:
        """One emoji as Unicode defines them (a single code point or one sequence: skin tone,
        flag, keycap, ZWJ family), per the `emoji` package's table; not text, not two emoji."""
        if not isinstance(value, str) or not 0 < len(value) <= MAX_EMOJI \
                or not emoji_data.is_emoji(value):
            self.fail(field, "must be one emoji")
            return ""
        return value

    def client_id(self, value: Any) -> str:
        if not isinstance(value, str) or not value or len(value) > MAX_CLIENT_ID \
                or not storable(value):
            self.fail("client_id", f"must be a non-empty string of at most {MAX_CLIENT_ID} characters")
            return ""
        return value

    def id_list(self, field: str, value: Any, *, maximum: int) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(field, "must be a list of user ids")
            return []
        if any(not isinstance(item, str) or not item or len(item) > MAX_ID or not storable(item)
               for item in value):
            self.fail(field, "must contain only user ids")
            return []
        unique = list(dict.fromkeys(value))
        if len(unique) > maximum:
            self.fail(field, f"may name at most {maximum} users")
            return []
        return unique

    def choice(self, field: str, value: Any, choices: tuple[str, ...]) -> str:
        if value not in choices:
            self.fail(field, "must be one of " + ", ".join(choices))
            return ""
        return value


def encode_cursor(*key: Any) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(check: Checker, value: Any, shape: tuple[type, ...]) -> list | None:
    """The key list inside an opaque cursor, or None; a malformed cursor is a field error."""
    if value is None:
        return None
    try:
        if not isinstance(value, str) or not value or len(value) > MAX_CURSOR \
                or not storable(value):
            raise ValueError
        key = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        if not isinstance(key, list) or len(key) != len(shape):
            raise ValueError
        if any(not isinstance(part, kind) or isinstance(part, bool) for part, kind in zip(key, shape)):
            raise ValueError
        return key
    except (ValueError, TypeError):
        check.fail("cursor", "is not a cursor this listing handed out")
        return None
