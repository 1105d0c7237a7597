"""Ruleset trials: `shadow_decisions` (one row per trigger and version on trial: what it
decided beside the version that decided; `store.shadow_decisions`, docs/trials.md).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shadow_decisions",
        sa.Column("cause_id", sa.String(length=200), nullable=False),
        sa.Column("other_version", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.String(length=36), nullable=False),
        sa.Column("trigger", sa.String(length=120), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("version_used", sa.Integer(), nullable=True),
        sa.Column("agrees", sa.Boolean(), nullable=False),
        sa.Column("used_decisions", sa.Text(), nullable=False),
        sa.Column("other_decisions", sa.Text(), nullable=False),
        sa.Column("used_rules", sa.Text(), nullable=False),
        sa.Column("other_rules", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("cause_id", "other_version"),
    )
    op.create_index(
        "ix_shadow_decisions_version", "shadow_decisions", ["other_version", "decided_at"]
    )
    op.create_index("ix_shadow_decisions_used", "shadow_decisions", ["version_used", "decided_at"])


def downgrade() -> None:
    op.drop_index("ix_shadow_decisions_used", table_name="shadow_decisions")
    op.drop_index("ix_shadow_decisions_version", table_name="shadow_decisions")
    op.drop_table("shadow_decisions")
