"""rooms: archived_at (readable, not writable); the audit log of administrators' actions

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

from parley_common.audit import create_audit_table, drop_audit_table

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    create_audit_table(op)


def downgrade() -> None:
    drop_audit_table(op)
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("archived_at")
