"""outbox: events committed with their change, relayed if their publisher died

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""
from alembic import op

from parley_common.outbox import create_outbox_table, drop_outbox_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_table(op)


def downgrade() -> None:
    drop_outbox_table(op)
