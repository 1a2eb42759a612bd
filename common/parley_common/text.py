"""Strings a database can store: JSON allows "\\u0000" and unpaired surrogates ("\\ud800"),
but PostgreSQL rejects NUL in text and UTF-8 cannot encode a lone surrogate, so both are
refused at the door (gateway) and again by every service's validation."""
from __future__ import annotations

import re
from typing import Any, Iterator

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
PROBLEM = "must not contain NUL characters or invalid Unicode"


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
