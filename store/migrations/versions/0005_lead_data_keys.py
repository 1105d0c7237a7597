"""Leads' data keys: `lead_data_keys` (one AES-256-GCM key per lead, NULL once the lead was
erased), with which the personal fields of its events are sealed (`store.sealing`,
docs/erasure.md).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("lead_data_keys"):
        return  # made by a log opened before this database was migrated (store.sealing)
    op.create_table(
        "lead_data_keys",
        sa.Column("lead_id", sa.String(length=36), nullable=False),
        sa.Column("data_key", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("lead_id", name="pk_lead_data_keys"),
    )


def downgrade() -> None:
    op.drop_table("lead_data_keys")
