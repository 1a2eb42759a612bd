"""The transactional outbox of the services that publish domain events (auth, rooms).

An event is written to the service's ``outbox`` table in the transaction of the change it
announces. After the commit the worker publishes it (broker-confirmed) and deletes the row. A
process that dies in between, or a publish the broker refuses, leaves the row behind; every
replica runs a relay that publishes rows older than a grace period and deletes them, taking
them ``FOR UPDATE SKIP LOCKED`` so two replicas never relay the same row. Delivery is
at-least-once: a publish that went out but whose row survived goes out again, so consumers
must tolerate a repeat (they have to anyway: the broker redelivers too).

With an autocommit engine (``fast_delete``: rooms on PostgreSQL) a release does not delete
right away: the confirmed rows join the process's pending releases, which the next write that
wants them deletes in its own statement (rooms' post batch: no statement, transaction or round
trip of its own per batch) or, at the latest, the next relay tick does in one bulk delete
(every RELAY_SECONDS, well inside the grace period, so the relay never re-sends a confirmed
event because its row was still waiting). A process that dies with releases pending leaves
rows whose events went out; the relay sends them again: a repeat, as above, never a loss.
"""
from __future__ import annotations

import json
import weakref
from datetime import timedelta
from typing import Any, Callable, Iterable

from sqlalchemy import (Column, DateTime, Index, Integer, MetaData, String, Table, Text, delete,
                        insert, select)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from . import config
from .ids import new_id
from .timeutil import utcnow

Event = tuple[str, dict]
Publish = Callable[[list[Event]], None]

# How often each replica's relay looks, and how old a row must be before the relay takes it:
# a younger row is still being published by the call that wrote it.
RELAY_SECONDS = config.env_float("OUTBOX_RELAY_SECONDS", 2.0)
GRACE_SECONDS = config.env_float("OUTBOX_GRACE_SECONDS", 10.0)
RELAY_BATCH = 500


# Confirmed rows not yet deleted, per autocommit engine (one per process and database): shared
# by every worker of the process, taken whole by whoever deletes them.
_pending_releases: "weakref.WeakKeyDictionary[Engine, list[str]]" = weakref.WeakKeyDictionary()


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox", metadata,
        Column("id", String(64), primary_key=True),
        Column("event_type", String(64), nullable=False),
        # The event as JSON. NULL when the service rebuilds the event from its own rows at
        # relay time (rooms: a post statement writes these rows before any payload exists).
        Column("payload", Text),
        Column("position", Integer, nullable=False, default=0),  # order within one transaction
        Column("created_at", DateTime(timezone=True), nullable=False),
        Index("ix_outbox_created_at", "created_at"),
    )


class Outbox:
    """One worker's view of the outbox: what it staged in its transactions and has not yet
    released. ``rebuild(row)`` turns a payload-less row into its event (None: nothing to say
    any more). ``fast_delete`` is an autocommit engine: a release is then one round trip."""

    def __init__(self, table: Table, session: Session,
                 rebuild: Callable[[Any], Event | None] | None = None,
                 fast_delete: Engine | None = None):
        self.table, self.session = table, session
        self.rebuild, self.fast_delete = rebuild, fast_delete
        self.staged: list[str] = []

    def stage(self, events: list[Event]) -> None:
        """Add ``events`` to the session's transaction; the caller commits."""
        if not events:
            return
        now = utcnow()
        rows = [{"id": new_id(), "event_type": event_type,
                 "payload": json.dumps(payload), "position": position, "created_at": now}
                for position, (event_type, payload) in enumerate(events)]
        self.session.execute(insert(self.table), rows)
        self.adopt(row["id"] for row in rows)

    def commit(self, events: list[Event]) -> None:
        """Commit the session's transaction with ``events`` in it."""
        self.stage(events)
        self.session.commit()

    def adopt(self, ids: Iterable[str]) -> None:
        """Rows the caller wrote itself (in a statement of its own) that this worker publishes."""
        self.staged.extend(ids)

    def release(self) -> None:
        """The broker confirmed the staged events: their rows can go. (Rows of a transaction
        that rolled back were never there; deleting them is a no-op.) With ``fast_delete`` the
        rows join the pending releases (see the module's doc) instead of a delete of their own."""
        ids, self.staged = self.staged, []
        if not ids:
            return
        if self.fast_delete is not None:
            _pending_releases.setdefault(self.fast_delete, []).extend(ids)
            return
        self.session.execute(delete(self.table).where(self.table.c.id.in_(ids)))
        self.session.commit()

    def take_released(self) -> list[str]:
        """The pending releases, for a statement of the caller's that deletes them; give them
        back with :meth:`restore_released` if that statement did not commit."""
        if self.fast_delete is None:
            return []
        return _pending_releases.pop(self.fast_delete, [])

    def restore_released(self, ids: list[str]) -> None:
        if ids and self.fast_delete is not None:
            _pending_releases.setdefault(self.fast_delete, []).extend(ids)

    def flush_released(self) -> int:
        """Delete the pending releases now, in one statement; how many ids that was."""
        ids = self.take_released()
        if not ids:
            return 0
        try:
            with self.fast_delete.connect() as connection:
                connection.execute(delete(self.table).where(self.table.c.id.in_(ids)))
        except BaseException:
            self.restore_released(ids)
            raise
        return len(ids)

    def relay(self, older_than: float, limit: int, publish: Publish) -> int:
        """Publish, then delete, rows older than ``older_than`` seconds; rows another replica
        is relaying right now are skipped. Returns how many events went out."""
        table, session = self.table, self.session
        cutoff = utcnow() - timedelta(seconds=older_than)
        try:
            rows = session.execute(
                select(table).where(table.c.created_at < cutoff)
                .order_by(table.c.created_at, table.c.position, table.c.id).limit(limit)
                .with_for_update(skip_locked=True)).all()
            events = [event for event in map(self._event, rows) if event is not None]
            if events:
                publish(events)
            if rows:
                session.execute(delete(table).where(table.c.id.in_([row.id for row in rows])))
            session.commit()
        except BaseException:
            session.rollback()
            raise
        return len(events)

    def _event(self, row) -> Event | None:
        if row.payload is None:
            return self.rebuild(row) if self.rebuild is not None else None
        try:
            return row.event_type, json.loads(row.payload)
        except ValueError:  # not written by us; relaying it would fail on every tick
            return None


def publish_committed(outbox: Outbox, events: list[Event], publish: Publish, log) -> None:
    """After the commit: publish ``events``, then release their rows. A broker hiccup must not
    turn a committed write into an error reply (the caller would retry a write that already
    happened): the rows stay, and the relay publishes them."""
    if not events:
        return
    try:
        publish(events)
    except Exception as exc:
        log.error("event_dispatch_failed", count=len(events), relayed_later=True,
                  event_types=sorted({event_type for event_type, _ in events}),
                  error=str(exc)[:200])
        return
    try:
        outbox.release()
    except Exception as exc:  # the relay will publish them again: a repeat, not a loss
        log.warning("outbox_release_failed", count=len(events), error=str(exc)[:200])


def relay_tick(outbox: Outbox, publish: Publish, log) -> None:
    """One run of a replica's relay (a nameko timer calls it every RELAY_SECONDS): first the
    pending releases, so no confirmed row is old enough for the relay to send again."""
    try:
        outbox.flush_released()
    except Exception as exc:  # kept for the next tick (or the next post batch)
        log.error("outbox_release_failed", error=str(exc)[:200])
    try:
        relayed = outbox.relay(GRACE_SECONDS, RELAY_BATCH, publish)
    except Exception as exc:  # database or broker away: the rows wait for the next tick
        log.error("outbox_relay_failed", error=str(exc)[:200])
        return
    if relayed:
        log.warning("outbox_relayed", count=relayed)


def create_outbox_table(op) -> None:
    """The Alembic step that adds ``outbox_table`` to a service's database (each service's own
    history calls it). Frozen: a later change of the table is a new migration in each service,
    not an edit here."""
    import sqlalchemy as sa

    op.create_table(
        "outbox",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text()),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])


def drop_outbox_table(op) -> None:
    op.drop_index("ix_outbox_created_at", table_name="outbox")
    op.drop_table("outbox")
