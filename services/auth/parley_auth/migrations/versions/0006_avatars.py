"""avatars: uploaded pictures kept by auth; remote avatar addresses dropped

Profiles used to carry any http(s) avatar URL, which the web client loaded from wherever it
pointed. Avatars are now pictures auth keeps (table avatars) and the gateway serves from its
own origin; the old remote addresses are cleared (no event: the replicas and clients drop
remote addresses when they render a profile, parley_common.users.local_avatar_url).

Revision ID: 0006_avatars
Revises: 0005
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_avatars"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "avatars",
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("media_type", sa.String(32), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute("UPDATE users SET avatar_url = NULL "
               "WHERE avatar_url IS NOT NULL AND avatar_url NOT LIKE '/api/v1/users/%'")


def downgrade() -> None:
    op.execute("UPDATE users SET avatar_url = NULL WHERE avatar_url LIKE '/api/v1/users/%'")
    op.drop_table("avatars")
