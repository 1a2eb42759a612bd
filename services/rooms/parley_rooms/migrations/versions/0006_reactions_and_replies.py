"""rooms: replies (messages.reply_to_id) and emoji reactions (message_reactions)

Revision ID: 0006_reactions_and_replies
Revises: 0005_message_search
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_reactions_and_replies"
down_revision = "0005_message_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("reply_to_id", sa.String(64), nullable=True))
    op.create_table(
        "message_reactions",
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("emoji", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE",
                                name="fk_message_reactions_message_id_messages"),
        sa.PrimaryKeyConstraint("message_id", "emoji", "user_id", name="pk_message_reactions"),
    )


def downgrade() -> None:
    op.drop_table("message_reactions")
    # In place, not Alembic's batch mode: recreating messages on SQLite would drop the search
    # triggers of 0005_message_search (SQLite drops a column in place since 3.35).
    op.drop_column("messages", "reply_to_id")
