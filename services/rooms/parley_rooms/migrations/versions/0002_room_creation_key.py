"""rooms.creation_key: create_room is idempotent per (creator, request id)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rooms", sa.Column("creation_key", sa.String(160)))
    op.create_index("ix_rooms_creation_key", "rooms", ["creation_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_rooms_creation_key", table_name="rooms")
    op.drop_column("rooms", "creation_key")
