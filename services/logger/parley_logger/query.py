"""Ops query of the log archive, newest first.

    python -m parley_logger.query --service rooms --min-level error --since 10m
    python -m parley_logger.query --service gateway,auth --level warning --since 2h --json
    python -m parley_logger.query --event login --since 2026-11-22T10:00:00Z --until 1h

``--level`` matches exactly the given level(s) (comma-separated); ``--min-level`` matches
that level and every more severe one (debug < info < warning < error < critical).
``--since``/``--until`` take a duration back from now (``30s``, ``10m``, ``2h``, ``1d``,
``1w``) or an ISO 8601 time (UTC unless it says otherwise).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timedelta

from parley_common import config, db
from parley_common.timeutil import iso, parse_iso, utcnow
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import LEVELS, LogRecord

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(value: str, now: datetime | None = None) -> datetime:
    """``10m`` / ``2h`` / ``1d`` back from now, or an ISO 8601 time."""
    now = now or utcnow()
    match = _DURATION.match(value)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])
    parsed = parse_iso(value)
    if parsed is None:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither a duration like 10m, 2h, 1d nor an ISO time")
    return parsed


def _names(value: str) -> list[str]:
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected at least one name")
    return names


def _levels(value: str) -> list[str]:
    levels = [name.lower() for name in _names(value)]
    unknown = [name for name in levels if name not in LEVELS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown level {', '.join(unknown)}; choose from {', '.join(LEVELS)}")
    return levels


def _min_level(value: str) -> list[str]:
    levels = _levels(value)
    if len(levels) != 1:
        raise argparse.ArgumentTypeError("--min-level takes a single level")
    return list(LEVELS[LEVELS.index(levels[0]):])


def _limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 1 <= number <= 100_000:
        raise argparse.ArgumentTypeError("limit must be between 1 and 100000")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m parley_logger.query", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--service", type=_names, help="service name(s), comma-separated")
    parser.add_argument("--instance", type=_names, help="instance id(s), comma-separated")
    levels = parser.add_mutually_exclusive_group()
    levels.add_argument("--level", type=_levels, help="exactly these level(s), comma-separated")
    levels.add_argument("--min-level", type=_min_level, dest="min_level",
                        help="this level and more severe ones")
    parser.add_argument("--since", type=parse_time, help="10m, 2h, 1d, ... or an ISO time")
    parser.add_argument("--until", type=parse_time, help="10m, 2h, 1d, ... or an ISO time")
    parser.add_argument("--event", help="case-insensitive substring of the event")
    parser.add_argument("--limit", type=_limit, default=100, help="at most this many (default 100)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--database-url", help="default: DATABASE_URL, else var/logger.db")
    return parser


def build_query(args: argparse.Namespace):
    query = select(LogRecord)
    if args.service:
        query = query.where(LogRecord.service.in_(args.service))
    if args.instance:
        query = query.where(LogRecord.instance.in_(args.instance))
    levels = args.level or args.min_level
    if levels:
        query = query.where(LogRecord.level.in_(levels))
    if args.since:
        query = query.where(LogRecord.ts >= args.since)
    if args.until:
        query = query.where(LogRecord.ts <= args.until)
    if args.event:
        query = query.where(func.lower(LogRecord.event).contains(args.event.lower(), autoescape=True))
    return query.order_by(LogRecord.ts.desc(), LogRecord.id.desc()).limit(args.limit)


def as_dict(record: LogRecord) -> dict:
    return {"id": record.id, "ts": iso(record.ts), "service": record.service,
            "instance": record.instance, "level": record.level, "event": record.event,
            "fields": record.fields}


def print_table(records: list[LogRecord], out) -> None:
    for record in records:
        fields = json.dumps(record.fields, ensure_ascii=False, default=str, separators=(",", ":"))
        if len(fields) > 200:
            fields = fields[:199] + "…"
        out.write(f"{iso(record.ts)}  {record.service:<10} {record.instance:<20} "
                  f"{record.level.upper():<8} {record.event}  {fields if record.fields else ''}\n")
    print(f"({len(records)} record{'s' if len(records) != 1 else ''})", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.since and args.until and args.since > args.until:
        build_parser().error("--since is after --until")
    engine = db.make_engine(args.database_url or config.database_url("logger"), pool_size=1)
    try:
        with Session(engine) as session:
            records = list(session.scalars(build_query(args)))
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        print(f"cannot read the log archive: {type(exc).__name__}: {str(exc).splitlines()[0]}",
              file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if args.json:
        for record in records:
            sys.stdout.write(json.dumps(as_dict(record), ensure_ascii=False, default=str) + "\n")
    else:
        print_table(records, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
