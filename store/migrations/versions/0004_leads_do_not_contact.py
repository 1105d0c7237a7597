"""The `leads` read model's do-not-contact columns (docs/consent.md): `do_not_contact` and
`do_not_contact_reason`. Rows written before them take the flag from `unsubscribed`, the
only thing that set it then (a bounce without `kind` is soft).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (with a default for the rows there): SQLite can, no table copy.
    op.add_column(
        "leads",
        sa.Column("do_not_contact", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("leads", sa.Column("do_not_contact_reason", sa.String(), nullable=True))
    op.execute(
        "UPDATE leads SET do_not_contact = unsubscribed, "
        "do_not_contact_reason = CASE WHEN unsubscribed THEN 'unsubscribed' END"
    )


def downgrade() -> None:
    with op.batch_alter_table("leads") as leads:
        leads.drop_column("do_not_contact_reason")
        leads.drop_column("do_not_contact")
