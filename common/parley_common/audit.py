"""The audit log of administrators' actions, kept by the service that performs each action
(auth: accounts and roles; rooms: rooms and messages) in its own database, in the transaction
of the change itself. The gateway merges the services' pages (newest first, by
``(created_at, id)``) for ``GET /api/v1/admin/audit``.

Only a change is recorded: an action that finds its work already done (a redelivered or
repeated request) writes nothing, so the log holds one entry per real change.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Text, and_, insert, or_, select
from sqlalchemy.orm import Session

from .errors import ValidationFailed
from .timeutil import iso, utcnow

MAX_PAGE = 100


def audit_table(metadata: MetaData) -> Table:
    return Table(
        "audit_log", metadata,
        Column("id", String(32), primary_key=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("actor_id", String(64), nullable=False),
        Column("actor_username", String(64)),   # as it was then (the account may go later)
        Column("action", String(64), nullable=False),
        Column("target_type", String(16), nullable=False),   # user | room | message
        Column("target_id", String(64), nullable=False),
        Column("target_label", String(256)),    # the username / room name at the time
        Column("details", Text),                # JSON object, e.g. {"room_id": ...}
        Index("ix_audit_log_created_at", "created_at", "id"),
        Index("ix_audit_log_target", "target_type", "target_id"),
    )


def create_audit_table(op) -> None:
    """The Alembic step that adds ``audit_table`` (each service's own history calls it).
    Frozen like outbox.create_outbox_table: a later change is a new migration per service."""
    import sqlalchemy as sa

    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("actor_username", sa.String(64)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(16), nullable=False),
        sa.Column("target_id", sa.String(64), nullable=False),
        sa.Column("target_label", sa.String(256)),
        sa.Column("details", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at", "id"])
    op.create_index("ix_audit_log_target", "audit_log", ["target_type", "target_id"])


def drop_audit_table(op) -> None:
    op.drop_index("ix_audit_log_target", table_name="audit_log")
    op.drop_index("ix_audit_log_created_at", table_name="audit_log")
    op.drop_table("audit_log")


def record(session: Session, table: Table, *, actor_id: str, actor_username: str | None,
           action: str, target_type: str, target_id: str, target_label: str | None = None,
           details: dict | None = None) -> None:
    """Stage one entry in the session's transaction (committed with the change it records)."""
    session.execute(insert(table).values(
        id=uuid.uuid4().hex, created_at=utcnow(), actor_id=actor_id,
        actor_username=(actor_username or None) and actor_username[:64], action=action,
        target_type=target_type, target_id=target_id,
        target_label=(target_label or None) and target_label[:256],
        details=json.dumps(details, separators=(",", ":")) if details else None))


def was_recorded(session: Session, table: Table, action: str, target_type: str,
                 target_id: str) -> bool:
    """Whether this action already happened to this target (a repeat is then not an error)."""
    return session.execute(select(table.c.id).where(
        table.c.action == action, table.c.target_type == target_type,
        table.c.target_id == target_id).limit(1)).first() is not None


def parse_before(before: Any) -> tuple[datetime, str] | None:
    """``before`` is the ``cursor`` of an entry (``"<created_at ISO>|<id>"``): entries older
    than it come next. None: from the newest."""
    if before is None:
        return None
    if not isinstance(before, str) or len(before) > 120 or "|" not in before:
        raise ValidationFailed(details={"cursor": "is not a cursor this listing handed out"})
    moment, _, entry_id = before.partition("|")
    try:
        when = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(details={"cursor": "is not a cursor this listing handed out"}) \
            from None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)), entry_id


def check_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed(details={"limit": f"must be a whole number from 1 to {MAX_PAGE}"})
    return limit


def entries(session: Session, table: Table, before: Any = None, limit: Any = 50) -> list[dict]:
    """One page of entries, newest first, strictly older than ``before`` (an entry's cursor).
    Stored times keep microseconds, so the cursor carries them in full (not the API's ms)."""
    limit = check_limit(limit)
    after = parse_before(before)
    statement = select(table)
    if after is not None:
        when, entry_id = after
        statement = statement.where(or_(table.c.created_at < when,
                                        and_(table.c.created_at == when, table.c.id < entry_id)))
    rows = session.execute(statement.order_by(table.c.created_at.desc(), table.c.id.desc())
                           .limit(limit)).all()
    session.rollback()
    return [entry_dict(row) for row in rows]


def entry_dict(row) -> dict:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=timezone.utc)
    try:
        details = json.loads(row.details) if row.details else {}
    except ValueError:
        details = {}
    return {"id": row.id, "created_at": iso(created),
            "actor": {"id": row.actor_id, "username": row.actor_username},
            "action": row.action,
            "target": {"type": row.target_type, "id": row.target_id, "label": row.target_label},
            "details": details,
            # Fixed width, so the gateway can merge the services' pages by this string.
            "cursor": created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                      + "|" + row.id}
