"""Strings a database can store: JSON allows "\\u0000" and unpaired surrogates ("\\ud800"),
but PostgreSQL rejects NUL in text and UTF-8 cannot encode a lone surrogate, so both are
refused at the door (gateway) and again by every service's validation."""
from __future__ import annotations

import json
import re
import unicodedata
from typing import Any, Iterator

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
PROBLEM = "must not contain NUL characters or invalid Unicode"
CONTROL_PROBLEM = "must not contain control or formatting characters"
# Deeper JSON than this is refused as invalid: no request of the API nests more than 3 levels,
# and Python's recursion (json, validation) must never be the limit.
MAX_JSON_DEPTH = 32


def storable(value: str) -> bool:
    return _UNSTORABLE.search(value) is None


def unstorable_fields(data: Any, path: str = "") -> Iterator[str]:
    """The dotted names of every string (keys included) in ``data`` that is not storable."""
    if isinstance(data, str):
        if not storable(data):
            yield path or "body"
    elif isinstance(data, dict):
        for key, value in data.items():
            name = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and not storable(key):
                yield path or "body"
            else:
                yield from unstorable_fields(value, name)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from unstorable_fields(value, f"{path}[{index}]" if path else f"[{index}]")


def unstorable_details(data: Any) -> dict[str, str]:
    """ValidationFailed details naming every unstorable string in ``data`` (empty if none)."""
    return {name: f"{name} {PROBLEM}." for name in unstorable_fields(data)}


def has_control_chars(value: str) -> bool:
    """Unicode Cc (controls, newlines included), Cf (formatting: zero-width characters, bidi
    overrides) and Cs (unpaired surrogates): not wanted in a name a user shows to others."""
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in value)


def loads_bounded(raw: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that raises ValueError for JSON nested deeper than ``max_depth`` (and for
    nesting so deep the parser itself would overflow the stack) instead of RecursionError."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > max_depth:
                raise ValueError("JSON nested too deeply")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children
                         if isinstance(child, (dict, list)))
    return value
