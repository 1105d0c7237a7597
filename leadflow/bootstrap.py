"""The composition root: the one place that builds the store, the key store and the
Temporal gateway from Settings. Every process (api, worker, projector, CLI) starts here."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from eventsourcing.persistence import IntegrityError as PersistenceIntegrityError
from opentelemetry.trace import Tracer
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError as SQLAlchemyIntegrityError
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from delivery.temporal import connect
from domain.errors import DomainError
from domain.events import IncomingEvent
from intake.abuse import Captcha, FormGuard, SubmissionRateLimit
from intake.form_book import FormBook
from leadflow.settings import Settings
from leadflow.tracing import temporal_interceptors
from projections.assignments import AssignmentsProjection
from projections.base import Projection
from projections.campaigns import CampaignSpendProjection
from projections.experiments import ExperimentAssignmentsProjection
from projections.leads import LeadsProjection
from projections.notifications import NotificationsProjection
from projections.nurture import NurtureMessagesProjection
from projections.stages import LeadStagesProjection
from store.ingest import Appended, PendingAppend
from store.keys import KeyStore
from store.log import EventLog, open_event_log
from store.positions import PositionStore
from store.quarantine import Quarantine
from store.rulebook import Rulebook
from store.schema import schema_ready
from store.users import UserStore

log = logging.getLogger(__name__)


@dataclass
class Store:
    """Everything that lives in the database: the log and leadflow's own tables."""

    event_log: EventLog
    engine: Engine
    keys: KeyStore
    positions: PositionStore
    rulebook: Rulebook
    quarantine: Quarantine
    forms: FormBook
    users: UserStore

    def append(
        self, events: list[IncomingEvent], keys: list[str | None], scope: str | None = None
    ) -> list[Appended]:
        """Append posted events, all or nothing (raises ItemRejected as `EventLog.append`),
        `keys` being `scope`'s idempotency keys; claims are checked against the current
        directory."""
        [answer] = self.append_many([PendingAppend(events, keys, scope)])
        if isinstance(answer, DomainError):
            raise answer
        return answer

    def append_many(self, appends: Sequence[PendingAppend]) -> list[list[Appended] | DomainError]:
        """Independent appends committed together (`EventLog.append_many`); claims among
        them are checked against the current directory."""
        if not any(e.type == "lead.claimed" for pending in appends for e in pending.events):
            return self.event_log.append_many(appends)
        pool = self.rulebook.active().ruleset.pool
        return self.event_log.append_many(appends, self.rulebook.directory(), pool)

    def close(self) -> None:
        self.event_log.close()
        self.keys.close()
        self.engine.dispose()


def projections(suffix: str = "") -> list[Projection]:
    """Every read model the projector keeps; with `suffix`, copies of them under tables
    named `<table><suffix>` (what a rebuild builds into)."""
    return [
        LeadsProjection(suffix),
        LeadStagesProjection(suffix),
        AssignmentsProjection(suffix),
        NotificationsProjection(suffix),
        CampaignSpendProjection(suffix),
        NurtureMessagesProjection(suffix),
        ExperimentAssignmentsProjection(suffix),
    ]


def open_store(settings: Settings) -> Store:
    """The store on the database of `settings`, its schema at head: upgraded first if it is
    behind (store.schema), or SchemaNotCurrent when `auto_migrate` is off."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.sqlalchemy_url
    engine = create_engine(url, pool_pre_ping=True)
    try:
        with schema_ready(engine, upgrade=settings.auto_migrate):
            # The log's tables are the library's: created by its recorder, inside the schema
            # lock when this process upgrades.
            event_log = _open_event_log(url)
    except BaseException:
        engine.dispose()
        raise
    keys = KeyStore(engine)
    if settings.bootstrap_admin_key:
        keys.ensure_bootstrap(settings.bootstrap_admin_key)
    users = UserStore(engine, event_log)
    if settings.bootstrap_admin_password is not None:
        users.ensure_bootstrap_admin(
            settings.bootstrap_admin_password.get_secret_value(), datetime.now(UTC)
        )
    return Store(
        event_log=event_log,
        engine=engine,
        keys=keys,
        positions=PositionStore(engine),
        rulebook=Rulebook(event_log),
        quarantine=Quarantine(engine),
        forms=FormBook(event_log),
        users=users,
    )


# Creating the log's tables races another process creating them outside the schema lock
# (one found the schema at head while the other upgrades): PostgreSQL's `CREATE TABLE IF
# NOT EXISTS` then refuses the loser's catalogue row. Its next try finds them.
OPEN_LOG_ATTEMPTS = 3


def _open_event_log(url: str) -> EventLog:
    for attempt in range(OPEN_LOG_ATTEMPTS):
        try:
            return open_event_log(url)
        except (SQLAlchemyIntegrityError, PersistenceIntegrityError):
            if attempt == OPEN_LOG_ATTEMPTS - 1:
                raise
            log.info("the log's tables were being created by another process; looking again")
    raise AssertionError("unreachable")


def temporal_tls(settings: Settings) -> TLSConfig | bool:
    """TLS to Temporal as the settings ask: off, on with the system's roots, or with a CA,
    a server name and a client certificate (mTLS) read from their files."""
    if not settings.temporal_uses_tls:
        return False

    def read(path: Path | None) -> bytes | None:
        return None if path is None else path.read_bytes()

    return TLSConfig(
        server_root_ca_cert=read(settings.temporal_tls_ca_file),
        client_cert=read(settings.temporal_tls_cert_file),
        client_private_key=read(settings.temporal_tls_key_file),
        domain=settings.temporal_tls_server_name,
    )


async def connect_temporal(
    settings: Settings,
    *,
    wait_seconds: float | None = None,
    runtime: Runtime | None = None,
    tracer: Tracer | None = None,
) -> Client:
    """The one way leadflow's processes connect to Temporal (see `delivery.temporal.connect`);
    with a tracer, Temporal's OpenTelemetry interceptor on the client and its workers."""
    api_key = settings.temporal_api_key
    return await connect(
        settings.temporal_target,
        settings.temporal_namespace,
        wait_seconds=wait_seconds,
        runtime=runtime,
        tls=temporal_tls(settings),
        api_key=None if api_key is None else api_key.get_secret_value(),
        interceptors=temporal_interceptors(tracer),
    )


def form_guard(settings: Settings) -> FormGuard:
    """The hosted forms' abuse controls: the token secret from the settings, else derived
    from the bootstrap admin key (which every replica of a deployment shares), else
    generated once into the data dir (readable by its owner only); the rate limit; the
    captcha."""
    if settings.form_secret is not None:
        secret = settings.form_secret.get_secret_value().encode()
    elif settings.bootstrap_admin_key:
        # A one-way derivation: a leaked token secret does not reveal the admin key.
        secret = hmac.new(
            settings.bootstrap_admin_key.encode(), b"leadflow form tokens", hashlib.sha256
        ).digest()
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = settings.data_dir / "form-secret"
        if not path.exists():
            # Written whole under another name, then linked: a process starting at the same
            # moment reads either no file or the whole secret, and one secret wins.
            draft = path.with_name(f"form-secret.{os.getpid()}.{secrets.token_hex(4)}")
            with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
                f.write(secrets.token_hex(32))
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
            draft.unlink()
        secret = path.read_text().strip().encode()
    captcha = None
    if settings.captcha_verify_url is not None:
        captcha = Captcha(
            verify_url=settings.captcha_verify_url,
            secret=settings.captcha_secret.get_secret_value() if settings.captcha_secret else "",
            site_key=settings.captcha_site_key,
            script_url=settings.captcha_script_url,
        )
    return FormGuard(
        secret=secret,
        rate_limit=SubmissionRateLimit(settings.form_submissions_per_minute),
        captcha=captcha,
    )
