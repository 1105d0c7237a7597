"""Follower leases: `follower_leases` (one row per partition of a follower group: who
holds it, until when) and `follower_members` (each member's last heartbeat), so that
several projector processes on one PostgreSQL follow the log once between them
(`store.leases`).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "follower_leases",
        sa.Column("follower_group", sa.String(length=100), nullable=False),
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("follower_group", "partition"),
    )
    op.create_table(
        "follower_members",
        sa.Column("follower_group", sa.String(length=100), nullable=False),
        sa.Column("member", sa.String(length=200), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("follower_group", "member"),
    )


def downgrade() -> None:
    op.drop_table("follower_members")
    op.drop_table("follower_leases")
