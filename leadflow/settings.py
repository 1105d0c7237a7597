"""Settings, read once from the environment (prefix LEADFLOW_) by the composition root."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from domain.tracking import unsubscribe_mailbox
from store.partitions import MAX_PARTITIONS

SEARCH_ATTRIBUTES = {
    "LeadStage": "Keyword",
    "LeadOwner": "Keyword",
    "LeadSource": "Keyword",
    "LeadRegion": "Keyword",
    "LeadInPool": "Bool",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", extra="ignore")

    data_dir: Path = Path(".leadflow")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite in the data dir"
    )
    temporal_address: str | None = Field(
        default=None, description="host:port of an existing Temporal; `dev` starts one if unset"
    )
    # Every process upgrades the database's schema as it starts (under a lock); off, a process
    # refuses to start on a database behind head and `leadflow migrate` upgrades it.
    auto_migrate: bool = True
    temporal_namespace: str = "default"
    task_queue: str = "leadflow"
    # A Temporal cluster beyond the dev server (README, "Temporal beyond the dev server"):
    # TLS with the system's roots or `temporal_tls_ca_file`, a client certificate and key
    # for mTLS, and Temporal Cloud's API key (which implies TLS).
    temporal_tls: bool = False
    temporal_tls_ca_file: Path | None = None
    temporal_tls_cert_file: Path | None = None
    temporal_tls_key_file: Path | None = None
    temporal_tls_server_name: str | None = None
    temporal_api_key: SecretStr | None = None
    bootstrap_admin_key: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    phone_region: str = "CN"
    # The language people and messages get when nothing says otherwise (docs/languages.md),
    # and the time zone dates are shown and report days counted in (issue #19).
    locale: Literal["zh-CN", "en"] = "zh-CN"
    time_zone: str = "Asia/Shanghai"
    smtp_url: str | None = None
    mail_from: str = "leadflow@localhost"
    # The mailto of nurture emails' List-Unsubscribe header (docs/consent.md: a mailbox
    # rule must act on what arrives there). Unset: the address of `mail_from`; empty: none.
    unsubscribe_mailto: str | None = Field(
        default=None, pattern=r"^([^@\s<>,;?\"]+@[^@\s<>,;?\"]+)?$"
    )
    # Where recipients reach the API: the base of tracking links in nurture emails.
    public_url: str = "http://127.0.0.1:8000"
    # Where operators reach the Temporal UI: the console links each lead's workflow there.
    temporal_ui_url: str = "http://127.0.0.1:8233"
    # Where operators read traces (with traces on, `leadflow.tracing`): the console links
    # each event of a lead's timeline there, `{trace_id}` replaced by its trace id, e.g.
    # http://127.0.0.1:16686/trace/{trace_id} (Jaeger). Unset: trace ids without links.
    trace_url: str | None = Field(default=None, pattern=r"^https?://.*\{trace_id\}")
    # A lead's workflow continues as new once its history holds this many events.
    workflow_history_limit: int = 2000
    # The worker's sticky cache: how many LeadWorkflows it keeps in memory between their
    # tasks (Temporal's default). Open leads beyond it cost the worker nothing; an evicted
    # one replays its history at its next event or timer (docs/scaling.md).
    max_cached_workflows: int = Field(default=1000, ge=0)
    # The log's followers (projector, dispatcher) read it as soon as it grows (SQLite: checked
    # every `log_watch_seconds`; PostgreSQL: LISTEN/NOTIFY) and at the latest every
    # `log_poll_seconds`, so a missed signal only delays an event.
    log_poll_seconds: float = 1.0
    log_watch_seconds: float = 0.005
    dispatcher_concurrency: int = 32
    # PostgreSQL: the projector processes share the log's followers by leases
    # (`store.leases`); a killed one's are taken over within this long.
    follower_lease_seconds: float = Field(default=5.0, gt=0)
    # PostgreSQL: how many partitions of the log (by lead) those processes share; each
    # partition is followed by one of them. Fixed once followers ran (1 may grow, with every
    # projector stopped: docs/scaling.md, "Several projector processes").
    follower_partitions: int = Field(default=1, ge=1, le=MAX_PARTITIONS)
    # How long one decision's rules may run before the lead is parked (docs/decisions.md,
    # "Quarantine"); the worker decides one lead at a time.
    decision_time_limit_seconds: float = Field(default=2.0, gt=0)
    # Set by `leadflow dev` for each child it supervises: the file its event loop touches
    # every HEARTBEAT_SECONDS, and how old the supervisor lets it get before it kills the
    # child as frozen and starts it again.
    heartbeat_file: Path | None = None
    dev_heartbeat_timeout_seconds: float = Field(default=30.0, gt=0)
    # How long a write waits for another SQLite writer before it is answered 503
    # `database_busy` (docs/decisions.md, "Faults").
    sqlite_busy_timeout_seconds: float = Field(default=30.0, gt=0)
    # A replay over HTTP that runs longer than this fails, naming how to narrow it.
    replay_time_limit_seconds: float = Field(default=600, gt=0)
    # Prometheus: the API serves /metrics on its own port; the worker and the projector
    # each serve theirs on these ports (unset: none), the worker's Temporal SDK metrics on
    # `temporal_metrics_port` (the SDK's own exporter). `leadflow dev` sets all three.
    metrics_host: str = "127.0.0.1"
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    projector_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    temporal_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # How the processes write their logs on stderr (leadflow/logs.py): JSON lines, or lines
    # for a person; unset, `leadflow dev` and its children write `human`, the others `json`.
    log_format: Literal["json", "human"] | None = None
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # Hosted forms (docs/forms.md): the key that signs their fill tokens (unset: derived from
    # the bootstrap admin key, else generated into `data_dir/form-secret`; every API replica
    # must sign with the same one), how many
    # submissions one address may send per minute (each API process counts alone), and an
    # optional captcha provider in the Turnstile/hCaptcha siteverify shape.
    form_secret: SecretStr | None = None
    form_submissions_per_minute: int = Field(default=20, ge=1)
    captcha_verify_url: str | None = Field(default=None, pattern=r"^https?://")
    captcha_secret: SecretStr | None = None
    captcha_site_key: str | None = None
    captcha_script_url: str | None = Field(default=None, pattern=r"^https://")

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone, e.g. Asia/Shanghai") from exc
        return value

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def sqlalchemy_url(self) -> str:
        """The store's URL with the driver leadflow installs (psycopg 3 for PostgreSQL)."""
        if self.database_url is None:
            path = (self.data_dir / "leadflow.db").resolve()
            return f"sqlite:///{path}?timeout={self.sqlite_busy_timeout_seconds}"
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                url = "postgresql+psycopg://" + url.removeprefix(prefix)
        parsed = make_url(url)
        if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
            # A database host that drops packets would otherwise hold each connection
            # attempt for the operating system's timeout (minutes), not answer 503.
            url = parsed.update_query_dict({"connect_timeout": "5"}).render_as_string(
                hide_password=False
            )
        return url

    @property
    def uses_follower_leases(self) -> bool:
        """PostgreSQL: projector processes share the followers by leases (any number may
        run). SQLite keeps to one projector process (one machine), which follows alone."""
        return make_url(self.sqlalchemy_url).get_backend_name() == "postgresql"

    @property
    def unsubscribe_mailbox(self) -> str | None:
        """The mailto address of List-Unsubscribe, or None for no mailto."""
        if self.unsubscribe_mailto is None:
            return unsubscribe_mailbox(self.mail_from)
        return self.unsubscribe_mailto or None

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or "127.0.0.1:7233"

    @property
    def temporal_uses_tls(self) -> bool:
        return (
            self.temporal_tls
            or self.temporal_api_key is not None
            or any(
                (
                    self.temporal_tls_ca_file,
                    self.temporal_tls_cert_file,
                    self.temporal_tls_server_name,
                )
            )
        )

    @model_validator(mode="after")
    def _partitions_need_postgres(self) -> Settings:
        if self.follower_partitions > 1 and not self.uses_follower_leases:
            raise ValueError(
                "LEADFLOW_FOLLOWER_PARTITIONS above 1 needs PostgreSQL: on SQLite one "
                "projector process follows the whole log"
            )
        return self

    @model_validator(mode="after")
    def _client_certificate_whole(self) -> Settings:
        if (self.temporal_tls_cert_file is None) != (self.temporal_tls_key_file is None):
            raise ValueError(
                "LEADFLOW_TEMPORAL_TLS_CERT_FILE and LEADFLOW_TEMPORAL_TLS_KEY_FILE go together "
                "(a client certificate and its private key)"
            )
        return self
