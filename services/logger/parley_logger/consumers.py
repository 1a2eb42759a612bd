"""The logger's two queue workers (one class per queue, plumbing in parley_common.worker).

Neither logs per consumed record: the logger's own records are shipped to ``parley.logs``
too, so a log line per archived record would feed itself.
"""
from __future__ import annotations

import json
import sys

from parley_common import bus, config
from parley_common.timeutil import iso, utcnow
from parley_common.worker import Delivery, QueueConsumer
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, StatementError
from sqlalchemy.orm import sessionmaker

from .models import LogRecord
from .records import refused_row, to_row


def _insert_ignoring_duplicates(dialect_name: str):
    """INSERT ... ON CONFLICT (dedupe_key) DO NOTHING in the engine's dialect."""
    module = {"postgresql": postgresql, "sqlite": sqlite}.get(dialect_name)
    if module is None:
        raise RuntimeError(f"the logger supports PostgreSQL and SQLite, not {dialect_name}")
    return module.insert(LogRecord).on_conflict_do_nothing(index_elements=["dedupe_key"])


def _refused_data(exc: StatementError) -> bool:
    """The statement failed for what it carried, not because the database is unreachable."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return False
    return not (isinstance(exc, DBAPIError) and exc.connection_invalidated)


class ArchiveConsumer(QueueConsumer):
    """``logs.archive``: every record, stored in batches, acked after the commit."""

    queue = bus.LOG_ARCHIVE_QUEUE

    def __init__(self, sessions: sessionmaker) -> None:
        self.sessions = sessions
        self.batch_size = config.env_int("LOGGER_BATCH_SIZE", 200)
        self.batch_ms = config.env_int("LOGGER_BATCH_MS", 500)
        # Enough to fill the next batch while one is being written, and no more.
        self.prefetch = max(config.env_int("LOGGER_PREFETCH", 2 * self.batch_size), self.batch_size)
        self.counts = {"stored": 0, "duplicates": 0, "malformed": 0}

    def handle_batch(self, deliveries: list[Delivery]) -> None:
        rows: dict[str, dict] = {}
        for delivery in deliveries:
            row = to_row(delivery.body, delivery.routing_key)
            rows.setdefault(row["dedupe_key"], row)  # the same body twice in one batch
        malformed = sum(1 for row in rows.values() if row.pop("malformed"))
        try:
            inserted = self._store(list(rows.values()))
        except StatementError as exc:
            if not _refused_data(exc):
                raise  # the database is away: the worker retries the whole batch later
            # A record the database refuses must not stall the archive (the batch would be
            # retried for ever, and every record behind it wait): row by row, and a refused
            # one is kept as a malformed record holding its content as text.
            inserted = 0
            for row in rows.values():
                try:
                    inserted += self._store([row])
                except StatementError as refused:
                    if not _refused_data(refused):
                        raise
                    inserted += self._store([refused_row(row, str(refused.orig)[:200])])
                    malformed += 1
        self.counts["stored"] += inserted
        self.counts["duplicates"] += len(deliveries) - inserted
        self.counts["malformed"] += malformed

    def _store(self, rows: list[dict]) -> int:
        """Insert in one transaction; how many rows were new."""
        with self.sessions() as session, session.begin():
            statement = _insert_ignoring_duplicates(session.get_bind().dialect.name)
            return len(session.execute(statement.returning(LogRecord.id), rows).all())

    def stats(self) -> dict:
        return dict(self.counts)


class ErrorAlertConsumer(QueueConsumer):
    """``logs.errors``: one concise ``log_alert`` JSON line per error/critical record.

    The line goes straight to stdout, not through structlog: shipped, it would be archived
    again (a second copy of every error). Operators scrape stdout (``docker logs``, a log
    driver) for ``"alert":"log_alert"``; the count is in the periodic ``worker_stats`` line.
    """

    queue = bus.LOG_ERRORS_QUEUE
    prefetch = 50
    batch_size = 50
    batch_ms = 200

    def __init__(self, out=None) -> None:
        self.out = out or sys.stdout
        self.counts = {"alerts": 0}

    def handle_batch(self, deliveries: list[Delivery]) -> None:
        lines = []
        for delivery in deliveries:
            row = to_row(delivery.body, delivery.routing_key)
            alert = {"alert": "log_alert", "ts": iso(row["ts"]), "service": row["service"],
                     "instance": row["instance"], "level": row["level"],
                     "event": row["event"][:300], "redelivered": delivery.redelivered,
                     "seen_at": iso(utcnow())}
            error = row["fields"].get("error") or row["fields"].get("exception")
            if error:
                alert["error"] = json.dumps(error, default=str)[:300] if not isinstance(error, str) else error[:300]
            lines.append(json.dumps(alert, ensure_ascii=False))
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()
        self.counts["alerts"] += len(deliveries)

    def stats(self) -> dict:
        return dict(self.counts)
