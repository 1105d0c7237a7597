"""leadflow's tables as `create_all` made them before leadflow had migrations: API keys,
follower positions, replays, the quarantine and the read models.

A table that already exists is kept as it is: a database leadflow set up before migrations
is adopted by this revision (its missing tables created, nothing of it changed), and 0002
brings an `api_keys` table of an older release up to date.

Revision ID: 0001
Revises: none
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _api_keys() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=True),
        sa.Column("prefix", sa.String(length=8), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    op.create_index("ix_api_keys_key_id", "api_keys", ["key_id"])


def _api_key_generation() -> None:
    op.create_table(
        "api_key_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def _log_positions() -> None:
    op.create_table(
        "log_positions",
        sa.Column("follower", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("follower"),
    )


def _replays() -> None:
    op.create_table(
        "replays",
        sa.Column("replay_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("runner", sa.String(length=64), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("replay_id"),
    )


def _quarantine() -> None:
    op.create_table(
        "quarantine",
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("stage", sa.String(length=120), nullable=False),
        sa.Column("stream_id", sa.String(length=36), nullable=False),
        sa.Column("lead_id", sa.String(length=36), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=True),
        sa.Column("event_id", sa.String(length=200), nullable=True),
        sa.Column("event_type", sa.String(length=100), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("item_id"),
    )
    op.create_index("ix_quarantine_stage_status", "quarantine", ["stage", "status"])
    op.create_index("ix_quarantine_lead", "quarantine", ["lead_id"])


def _leads() -> None:
    op.create_table(
        "leads",
        sa.Column("lead_id", sa.String(length=36), nullable=False),
        sa.Column("stage", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=True),
        sa.Column("team", sa.String(), nullable=True),
        sa.Column("in_pool", sa.Boolean(), nullable=False),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("phone", sa.String(), nullable=True),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("company", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("region", sa.String(), nullable=True),
        sa.Column("industry", sa.String(), nullable=True),
        sa.Column("company_size", sa.String(), nullable=True),
        sa.Column("campaign_id", sa.String(), nullable=True),
        sa.Column("form_id", sa.String(), nullable=True),
        sa.Column("intent", sa.String(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("tags", _JSON, nullable=False),
        sa.Column("attributes", _JSON, nullable=False),
        sa.Column("touch_count", sa.Integer(), nullable=False),
        sa.Column("followups_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("won_amount", sa.Numeric(asdecimal=False), nullable=True),
        sa.Column("unsubscribed", sa.Boolean(), nullable=False),
        sa.Column("ruleset_version", sa.Integer(), nullable=True),
        sa.Column("variants", _JSON, nullable=False),
        sa.Column("open_tasks", _JSON, nullable=False),
        sa.Column("placed_by_rule", sa.String(), nullable=True),
        sa.Column("placed_by_ruleset_version", sa.Integer(), nullable=True),
        sa.Column("pool_reason", sa.String(), nullable=True),
        sa.Column("sequences", _JSON, nullable=False),
        sa.Column("last_sequence", sa.Integer(), nullable=False),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id", name="pk_leads"),
    )
    op.create_index("ix_leads_created_at", "leads", ["created_at", "lead_id"])
    for column in ("owner", "team", "stage", "in_pool", "source"):
        op.create_index(f"ix_leads_{column}", "leads", [column, "created_at", "lead_id"])


def _lead_stages() -> None:
    op.create_table(
        "lead_stages",
        sa.Column("lead_id", sa.String(length=36), nullable=False),
        sa.Column("stage", sa.String(), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_stage", sa.String(), nullable=True),
        sa.Column("amount", sa.Numeric(asdecimal=False), nullable=True),
        sa.Column("currency", sa.String(), nullable=True),
        sa.Column("rule_id", sa.String(), nullable=True),
        sa.Column("ruleset_version", sa.Integer(), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id", "stage", name="pk_lead_stages"),
    )
    op.create_index(
        "ix_lead_stages_stage_entered_at", "lead_stages", ["stage", "entered_at", "lead_id"]
    )


def _assignments() -> None:
    op.create_table(
        "assignments",
        sa.Column("lead_id", sa.String(length=36), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("team", sa.String(), nullable=True),
        sa.Column("how", sa.String(), nullable=False),
        sa.Column("strategy", sa.String(), nullable=True),
        sa.Column("rule_id", sa.String(), nullable=True),
        sa.Column("ruleset_version", sa.Integer(), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_how", sa.String(), nullable=True),
        sa.Column("end_reason", sa.String(), nullable=True),
        sa.Column("ended_by_rule", sa.String(), nullable=True),
        sa.Column("first_follow_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_response_seconds", sa.Numeric(asdecimal=False), nullable=True),
        sa.Column("followups_count", sa.Integer(), nullable=False),
        sa.Column("sla_missed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("won_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("won_amount", sa.Numeric(asdecimal=False), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id", "sequence", name="pk_assignments"),
    )
    op.create_index("ix_assignments_owner_assigned_at", "assignments", ["owner", "assigned_at"])
    op.create_index("ix_assignments_team_assigned_at", "assignments", ["team", "assigned_at"])
    op.create_index("ix_assignments_won_at", "assignments", ["won_at"])


def _follow_ups() -> None:
    op.create_table(
        "follow_ups",
        sa.Column("lead_id", sa.String(length=36), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("rep_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=True),
        sa.Column("followed_up_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_first", sa.Boolean(), nullable=False),
        sa.Column("assignment_sequence", sa.Integer(), nullable=True),
        sa.Column("seconds_since_assignment", sa.Numeric(asdecimal=False), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id", "sequence", name="pk_follow_ups"),
    )
    op.create_index(
        "ix_follow_ups_rep_id_followed_up_at", "follow_ups", ["rep_id", "followed_up_at"]
    )
    op.create_index("ix_follow_ups_followed_up_at", "follow_ups", ["followed_up_at"])


def _notifications() -> None:
    op.create_table(
        "notifications",
        sa.Column("notification_id", sa.String(length=200), nullable=False),
        sa.Column("lead_id", sa.String(length=36), nullable=False),
        sa.Column("to", sa.String(), nullable=True),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("template", sa.String(), nullable=True),
        sa.Column("nurture_sequence", sa.String(), nullable=True),
        sa.Column("rule_id", sa.String(), nullable=True),
        sa.Column("ruleset_version", sa.Integer(), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("recipient", sa.String(), nullable=True),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("notification_id", name="pk_notifications"),
    )
    for name, columns in (
        ("lead_id_queued_at", ["lead_id", "queued_at"]),
        ("template_queued_at", ["template", "queued_at"]),
        ("status_queued_at", ["status", "queued_at"]),
    ):
        op.create_index(f"ix_notifications_{name}", "notifications", columns)


def _campaign_spend() -> None:
    op.create_table(
        "campaign_spend",
        sa.Column("campaign_id", sa.String(length=100), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.Numeric(asdecimal=False), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "sequence", name="pk_campaign_spend"),
    )
    op.create_index(
        "ix_campaign_spend_period_start", "campaign_spend", ["period_start", "period_end"]
    )


def _nurture_messages() -> None:
    op.create_table(
        "nurture_messages",
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("lead_id", sa.String(length=36), nullable=False),
        sa.Column("nurture_sequence", sa.String(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("template", sa.String(), nullable=True),
        sa.Column("variant", sa.String(), nullable=True),
        sa.Column("rule_id", sa.String(), nullable=True),
        sa.Column("ruleset_version", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("clicked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("bounced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_nurture_messages"),
    )
    for name, columns in (
        ("lead_id", ["lead_id", "sent_at"]),
        ("sent_at", ["sent_at"]),
        ("template_variant", ["template", "variant", "sent_at"]),
    ):
        op.create_index(f"ix_nurture_messages_{name}", "nurture_messages", columns)


def _experiment_assignments() -> None:
    op.create_table(
        "experiment_assignments",
        sa.Column("lead_id", sa.String(length=36), nullable=False),
        sa.Column("experiment", sa.String(), nullable=False),
        sa.Column("variant", sa.String(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rule_id", sa.String(), nullable=True),
        sa.Column("ruleset_version", sa.Integer(), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id", "experiment", name="pk_experiment_assignments"),
    )
    op.create_index(
        "ix_experiment_assignments_experiment_variant",
        "experiment_assignments",
        ["experiment", "variant", "lead_id"],
    )


TABLES: dict[str, Callable[[], None]] = {
    "api_keys": _api_keys,
    "api_key_generation": _api_key_generation,
    "log_positions": _log_positions,
    "replays": _replays,
    "quarantine": _quarantine,
    "leads": _leads,
    "lead_stages": _lead_stages,
    "assignments": _assignments,
    "follow_ups": _follow_ups,
    "notifications": _notifications,
    "campaign_spend": _campaign_spend,
    "nurture_messages": _nurture_messages,
    "experiment_assignments": _experiment_assignments,
}


def upgrade() -> None:
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    for name, create in TABLES.items():
        if name not in present:
            create()
    # The key generation's one row (store.keys), which every key change moves on.
    generation = sa.table("api_key_generation", sa.column("id"), sa.column("generation"))
    if bind.execute(sa.select(generation.c.id)).first() is None:
        op.execute(generation.insert().values(id=1, generation=0))


def downgrade() -> None:
    raise NotImplementedError("leadflow does not downgrade: restore the backup taken before")
