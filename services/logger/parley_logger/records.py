"""Turning one message of ``parley.logs`` into one ``log_records`` row. Never raises: a body
that is not a JSON object becomes a ``malformed_log_record`` row keeping the raw text."""
from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from typing import Any

from parley_common.timeutil import utcnow

MALFORMED_EVENT = "malformed_log_record"
MAX_RAW_CHARS = 4000
MAX_EVENT_CHARS = 8000
_TOP_LEVEL = ("ts", "service", "instance", "level", "event")


def dedupe_key(body: bytes) -> str:
    # Records carry ts (microseconds) and instance, so equal bodies are the same record.
    return hashlib.sha256(body).hexdigest()


def _clean(value: Any) -> Any:
    """PostgreSQL text and JSON cannot hold NUL characters (dropped), unpaired surrogates
    (replaced) nor NaN or infinite numbers (which Python's json writes and reads; kept as
    their text), recursively."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # an unpaired surrogate (a JSON escape like \ud800)
            value = value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {_clean(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _short(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


def _parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _from_routing_key(routing_key: str) -> tuple[str, str]:
    service, _, level = (routing_key or "").rpartition(".")
    return (service or "unknown"), (level or "info")


def to_row(body: bytes, routing_key: str = "") -> dict:
    """The row for one message body (``malformed`` is true for unreadable ones)."""
    key = dedupe_key(body)
    rk_service, rk_level = _from_routing_key(routing_key)
    text = body.decode("utf-8", errors="replace")
    try:
        record = json.loads(text)
        problem = None if isinstance(record, dict) else f"not an object: {type(record).__name__}"
    except ValueError as exc:
        record, problem = None, f"not JSON: {exc.msg}"
    if problem is not None:
        return {
            "ts": utcnow(), "service": _clean(rk_service)[:64], "instance": "unknown",
            "level": "error", "event": MALFORMED_EVENT,
            "fields": {"reason": problem, "routing_key": _clean(routing_key),
                       "raw": _clean(_short(text, MAX_RAW_CHARS))},
            "dedupe_key": key, "malformed": True,
        }
    record = _clean(record)
    fields = {k: v for k, v in record.items() if k not in _TOP_LEVEL}
    ts = _parse_ts(record.get("ts"))
    if ts is None:
        ts = utcnow()
        if "ts" in record:
            fields["ts_raw"] = record["ts"]
    level = str(record.get("level") or rk_level).lower()
    return {
        "ts": ts,
        "service": _short(record.get("service") or rk_service, 64)[:64],
        "instance": _short(record.get("instance") or "unknown", 128)[:128],
        "level": level[:16],
        "event": _short(record.get("event", ""), MAX_EVENT_CHARS),
        "fields": fields,
        "dedupe_key": key,
        "malformed": False,
    }


def refused_row(row: dict, reason: str) -> dict:
    """``row`` as the database will take it: a malformed record naming why the database
    refused the original, with that record's event and fields as text (same dedupe key, so a
    redelivery is still recognised)."""
    return {**row, "level": "error", "event": MALFORMED_EVENT,
            "fields": {"reason": f"refused by the database: {reason}",
                       "original_event": row["event"],
                       "raw": _short(json.dumps(row["fields"], default=str), MAX_RAW_CHARS)}}
