"""Working leads (issue #19): `lead_deadlines`, each lead's running timers as the decisions
activity last planned them (`store.deadlines`, docs/working-leads.md).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lead_deadlines",
        sa.Column("lead_id", sa.String(length=36), nullable=False),
        sa.Column("timer_id", sa.String(length=200), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("ruleset_version", sa.Integer(), nullable=True),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id", "timer_id", name="pk_lead_deadlines"),
    )
    op.create_index("ix_lead_deadlines_due_at", "lead_deadlines", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_lead_deadlines_due_at", table_name="lead_deadlines")
    op.drop_table("lead_deadlines")
