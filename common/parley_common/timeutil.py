"""UTC times and the ISO 8601 form of the public API (millisecond precision, 'Z')."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = aware(value).astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; we only ever store UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def parse_iso(value: Any) -> datetime | None:
    """An ISO 8601 string ('Z' or an offset; none means UTC) as an aware UTC datetime; None
    when ``value`` is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return aware(parsed).astimezone(timezone.utc)
