"""rooms: mentions (who each message mentions, for mention counts and the Mentions view)

Revision ID: 0007_mentions
Revises: 0006_reactions_and_replies
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_mentions"
down_revision = "0006_reactions_and_replies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mentions",
        sa.Column("message_id", sa.String(64), sa.ForeignKey(
            "messages.id", ondelete="CASCADE", name="fk_mentions_message_id_messages"),
            nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("room_id", sa.String(64), sa.ForeignKey(
            "rooms.id", ondelete="CASCADE", name="fk_mentions_room_id_rooms"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", "user_id", name="pk_mentions"),
    )
    op.create_index("ix_mentions_user_id_room_id_seq", "mentions", ["user_id", "room_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_mentions_user_id_room_id_seq", table_name="mentions")
    op.drop_table("mentions")
