"""users.registration_key: register is idempotent per request id

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
    op.add_column("users", sa.Column("registration_key", sa.String(64)))
    op.create_index("ix_users_registration_key", "users", ["registration_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_users_registration_key", table_name="users")
    op.drop_column("users", "registration_key")
