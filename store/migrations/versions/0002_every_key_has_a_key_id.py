"""Every API key has a key_id: an `api_keys` table of a release before key ids (four
columns) gets the columns it lacks, each old key the key_id `key_` + the first 12 hex digits
of its hash (so it keeps working and can be listed, revoked and rotated), and key_id
becomes NOT NULL.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The columns added to `api_keys` after its first release, as 0001 creates them.
ADDED_COLUMNS = (
    ("key_id", sa.String(length=40)),
    ("prefix", sa.String(length=8)),
    ("last_used_at", sa.DateTime(timezone=True)),
    ("revoked_at", sa.DateTime(timezone=True)),
    ("expires_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present = {column["name"] for column in inspector.get_columns("api_keys")}
    for name, kind in ADDED_COLUMNS:
        if name not in present:
            op.add_column("api_keys", sa.Column(name, kind, nullable=True))
    if "ix_api_keys_key_id" not in {index["name"] for index in inspector.get_indexes("api_keys")}:
        op.create_index("ix_api_keys_key_id", "api_keys", ["key_id"])
    api_keys = sa.table(
        "api_keys", sa.column("key_hash", sa.String), sa.column("key_id", sa.String)
    )
    op.execute(
        api_keys.update()
        .where(api_keys.c.key_id.is_(None))
        .values(key_id=sa.literal("key_") + sa.func.substr(api_keys.c.key_hash, 1, 12))
    )
    # SQLite cannot alter a column: batch mode copies the table into a new one.
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("key_id", existing_type=sa.String(length=40), nullable=False)


def downgrade() -> None:
    raise NotImplementedError("leadflow does not downgrade: restore the backup taken before")
