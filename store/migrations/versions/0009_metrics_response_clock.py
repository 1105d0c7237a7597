"""Response times on leadflow's clock (docs/analytics.md, "Definitions"): `assignments`
gains `received_at`, when leadflow received the lead or the hand-over, where a response
time starts. Rows from before it keep it null (their response times were measured from
`assigned_at`; `leadflow projections rebuild assignments` refolds them), and any negative
response time they hold (a follow-up back-filled before the assignment, measured before
the clamp) becomes 0, as the projection counts it now.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("assignments", sa.Column("received_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE assignments SET first_response_seconds = 0 WHERE first_response_seconds < 0")
    op.execute(
        "UPDATE follow_ups SET seconds_since_assignment = 0 WHERE seconds_since_assignment < 0"
    )


def downgrade() -> None:
    with op.batch_alter_table("assignments") as assignments:
        assignments.drop_column("received_at")
