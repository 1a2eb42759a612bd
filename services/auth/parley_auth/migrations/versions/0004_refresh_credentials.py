"""sessions: a rotating refresh credential (hash and generation) and when it was last used

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("refresh_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("refresh_generation", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("refresh_previous", sa.Text(), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("refresh_previous")
        batch.drop_column("refresh_generation")
        batch.drop_column("refresh_hash")
