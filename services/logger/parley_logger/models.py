"""The log archive: one row per structlog record."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Severity order, for "this level and above" queries.
LEVELS = ("debug", "info", "warning", "error", "critical")


class Base(DeclarativeBase):
    pass


class LogRecord(Base):
    __tablename__ = "log_records"

    # A bigint sequence rather than a string id: rows are never exposed through the API and
    # the id doubles as a cheap, insertion-ordered tie-breaker for records with equal ts.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    service: Mapped[str] = mapped_column(String(64), nullable=False)
    instance: Mapped[str] = mapped_column(String(128), nullable=False)
    level: Mapped[str] = mapped_column(String(16), nullable=False)
    event: Mapped[str] = mapped_column(Text, nullable=False)
    fields: Mapped[dict] = mapped_column(JSON, nullable=False)
    # sha256 of the raw message body: a redelivered message inserts nothing.
    dedupe_key: Mapped[str] = mapped_column(String(64), nullable=False)

    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_log_records_dedupe_key"),
        Index("ix_log_records_service_level_ts", "service", "level", "ts"),
        Index("ix_log_records_ts", "ts"),
    )
