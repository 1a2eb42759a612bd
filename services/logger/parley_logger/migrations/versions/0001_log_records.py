"""log_records: the archive, indexed for "this service, this level, since then"

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("instance", sa.String(128), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("dedupe_key", sa.String(64), nullable=False),
        sa.UniqueConstraint("dedupe_key", name="uq_log_records_dedupe_key"),
    )
    op.create_index("ix_log_records_service_level_ts", "log_records", ["service", "level", "ts"])
    op.create_index("ix_log_records_ts", "log_records", ["ts"])


def downgrade() -> None:
    op.drop_table("log_records")
