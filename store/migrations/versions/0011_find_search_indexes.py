"""Finding leads (docs/leads-search.md): the `leads` read model's search and sort columns
and their indexes, and the `saved_views` table.

`search_text` holds one line each of the lower-cased name, company, email and the phone's
digits; `name_key`, `company_key`, `owner_key` and `stage_rank` are what the list sorts by
(never null, so a keyset compares them plainly). Rows already there are filled here, by the
same rules the projector writes them with (copied, as a migration must not change when the
code does). PostgreSQL gets a `pg_trgm` GIN index on `search_text`, SQLite a plain one (the
extension ships with PostgreSQL; creating it needs the CREATE privilege on the database),
and both a narrow
`(search_text, lead_id)` index a search scans instead of the wide rows where no index
serves it (projections.leads._few_found).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

STAGES = ("new", "MQL", "SQL", "opportunity", "won", "lost")
SORT_COLUMNS = ("name_key", "company_key", "stage_rank", "score", "last_activity_at", "owner_key")
NEW_FILTERS = ("region", "channel")
BATCH = 1000


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.add_column("leads", sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    for name in ("name_key", "company_key", "owner_key"):
        op.add_column("leads", sa.Column(name, sa.String(), nullable=False, server_default=""))
    op.add_column(
        "leads", sa.Column("stage_rank", sa.Integer(), nullable=False, server_default="0")
    )
    _fill_existing_rows()
    for column in NEW_FILTERS:
        op.create_index(f"ix_leads_{column}", "leads", [column, "created_at", "lead_id"])
    for column in SORT_COLUMNS:
        sort = column.removesuffix("_key").removesuffix("_rank")
        op.create_index(f"ix_leads_by_{sort}", "leads", [column, "lead_id"])
    op.create_index("ix_leads_search_scan", "leads", ["search_text", "lead_id"])
    op.create_index(
        "ix_leads_search",
        "leads",
        ["search_text"],
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.create_table(
        "saved_views",
        sa.Column("view_id", sa.String(length=36), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("view_id"),
        sa.UniqueConstraint("owner", "name", name="uq_saved_views_owner_name"),
    )


def _fill_existing_rows() -> None:
    conn = op.get_bind()
    leads = sa.table(
        "leads",
        *(
            sa.column(name)
            for name in ("lead_id", "name", "company", "email", "phone", "owner", "stage")
        ),
        sa.column("search_text"),
        sa.column("name_key"),
        sa.column("company_key"),
        sa.column("owner_key"),
        sa.column("stage_rank"),
    )
    fill = (
        sa.update(leads)
        .where(leads.c.lead_id == sa.bindparam("key"))
        .values(
            search_text=sa.bindparam("search_text"),
            name_key=sa.bindparam("name_key"),
            company_key=sa.bindparam("company_key"),
            owner_key=sa.bindparam("owner_key"),
            stage_rank=sa.bindparam("stage_rank"),
        )
    )
    after = ""
    while True:
        rows = conn.execute(
            sa.select(
                leads.c.lead_id,
                leads.c.name,
                leads.c.company,
                leads.c.email,
                leads.c.phone,
                leads.c.owner,
                leads.c.stage,
            )
            .where(leads.c.lead_id > after)
            .order_by(leads.c.lead_id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        conn.execute(fill, [_keys(*row) for row in rows])
        after = rows[-1].lead_id


def _keys(
    lead_id: str,
    name: str | None,
    company: str | None,
    email: str | None,
    phone: str | None,
    owner: str | None,
    stage: str,
) -> dict[str, object]:
    name_key, company_key = (name or "").lower(), (company or "").lower()
    digits = "".join(c for c in phone or "" if c.isascii() and c.isdigit())
    lines = (name_key, company_key, (email or "").lower(), digits)
    return {
        "key": lead_id,
        "search_text": "\n".join(lines) if any(lines) else "",
        "name_key": name_key,
        "company_key": company_key,
        "owner_key": owner or "",
        "stage_rank": STAGES.index(stage) if stage in STAGES else len(STAGES),
    }


def downgrade() -> None:
    op.drop_table("saved_views")
    names = ("ix_leads_search", "ix_leads_search_scan", *(f"ix_leads_{c}" for c in NEW_FILTERS))
    for name in names:
        op.drop_index(name, table_name="leads")
    for column in SORT_COLUMNS:
        sort = column.removesuffix("_key").removesuffix("_rank")
        op.drop_index(f"ix_leads_by_{sort}", table_name="leads")
    with op.batch_alter_table("leads") as leads:
        for name in ("stage_rank", "owner_key", "company_key", "name_key", "search_text"):
            leads.drop_column(name)
