"""create_app: the FastAPI application, wired from Settings in its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from opentelemetry.trace import Tracer
from prometheus_client import CollectorRegistry

from api import console, docs
from api.auth_failures import FailedAuthentications
from api.deps import safe_parameters
from api.errors import install_error_handlers
from api.flow_status import read_flow_status
from api.ingest_writer import GroupCommitter
from api.metrics import FlowCollector
from api.openapi_bodies import describe_api
from api.request_log import RequestLog
from api.routes import (
    consent,
    directory,
    erasure,
    events,
    forms,
    health,
    hosted_forms,
    imports,
    keys,
    leads,
    metrics,
    notifications,
    oauth,
    projections,
    quarantine,
    replays,
    reports,
    rulesets,
    session,
    status,
    template_preview,
    tracking,
    trials,
    users,
    views,
    words,
    work,
)
from delivery.temporal import LeadWorkflows
from intake.jobs import ImportJobs, ImportRunner
from leadflow.bootstrap import connect_temporal, form_guard, open_store
from leadflow.bootstrap import projections as read_models
from leadflow.heartbeat import beating
from leadflow.settings import Settings
from replay.jobs import ReplayRunner, ReplayRuns

log = logging.getLogger(__name__)

DESCRIPTION = """Self-hosted lead-management automation: post lead events, read leads and
reports, manage rulesets, the directory, replays, the quarantine and API keys.

Every operation but the health checks and the tracking links needs an API key,
`Authorization: Bearer <key>`, holding the scope the operation lists (`read`, `ingest` or
`admin`; an admin key holds every scope). Every error is
`{"error": {"code", "message", "details"}}`. This description is also in the repository,
`docs/openapi.json`."""


def create_app(settings: Settings, tracer: Tracer | None = None) -> FastAPI:
    """The API on `settings`; with `tracer`, every request, append and Temporal call is
    traced (`leadflow.tracing`)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.store = store = await asyncio.to_thread(open_store, settings)
        app.state.failed_authentications = FailedAuthentications()
        app.state.form_guard = form_guard(settings)
        # Read at each scrape; auto_describe off: registering reads nothing.
        app.state.flow_metrics = CollectorRegistry(auto_describe=False)
        app.state.flow_metrics.register(
            FlowCollector(lambda: read_flow_status(store, read_models(), datetime.now(UTC)))
        )
        # Until it listens (PostgreSQL), every request looks its key up: never a stale answer.
        watching_keys = asyncio.create_task(store.keys.watch_changes())
        await asyncio.to_thread(store.rulebook.install_defaults, datetime.now(UTC))
        app.state.workflows = None

        async def connect_in_background() -> None:
            # Ingest never waits on Temporal: the API serves while it connects.
            client = await connect_temporal(settings, wait_seconds=float("inf"), tracer=tracer)
            app.state.workflows = LeadWorkflows(
                client, settings.task_queue, settings.workflow_history_limit, tracer
            )

        app.state.writer = writer = GroupCommitter(store.append_many)
        writer.start()
        app.state.replays = ReplayRunner(
            ReplayRuns(store.engine),
            store.event_log,
            store.rulebook,
            time_limit_seconds=settings.replay_time_limit_seconds,
        )
        await asyncio.to_thread(app.state.replays.start)
        app.state.imports = ImportRunner(
            ImportJobs(store.engine), writer.append_from_thread, settings.phone_region
        )
        await asyncio.to_thread(app.state.imports.start)
        connecting = asyncio.create_task(connect_in_background())
        # Start-up is done, and what it built (~150,000 objects of FastAPI, pydantic,
        # SQLAlchemy, the store) lives as long as the app. Frozen, the cyclic collector no
        # longer walks it on every generation-2 collection, which a batch of 1000 events
        # triggers: that was 60-80 ms of a batch's ~250 ms. Collected first, so no garbage is
        # frozen; unfrozen at shutdown, so a process that starts apps again (the tests)
        # can still free this one.
        gc.collect()
        gc.freeze()
        try:
            async with beating(settings.heartbeat_file):
                yield
        finally:
            gc.unfreeze()
            connecting.cancel()
            watching_keys.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching_keys
            await asyncio.to_thread(app.state.replays.stop)
            await asyncio.to_thread(app.state.imports.stop)
            await asyncio.to_thread(writer.stop)
            app.state.store.close()

    app = FastAPI(
        title="leadflow",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(safe_parameters)],
        # Served by `api.docs` from leadflow's own files: FastAPI's pages load a CDN.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(RequestLog, tracer=tracer)
    # Routes are matched in this order, one by one: the busiest (posted events) first.
    app.include_router(events.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(status.router)
    app.include_router(work.router)  # before `/v1/leads/{lead_id}`
    app.include_router(leads.router)
    app.include_router(views.router)  # issue #19: saved views of the lead list
    app.include_router(consent.router)
    app.include_router(erasure.router)
    app.include_router(trials.router)  # before `/v1/rulesets/{version}`
    app.include_router(rulesets.router)
    app.include_router(template_preview.router)
    app.include_router(words.router)
    app.include_router(forms.router)
    app.include_router(directory.router)
    app.include_router(notifications.router)
    app.include_router(projections.router)
    app.include_router(reports.router)
    app.include_router(tracking.router)
    app.include_router(hosted_forms.router)
    app.include_router(replays.router)
    app.include_router(imports.router)
    app.include_router(quarantine.router)
    app.include_router(keys.router)
    app.include_router(session.router)
    app.include_router(oauth.router)
    app.include_router(users.router)
    app.include_router(console.router)
    app.include_router(docs.router)
    app.mount(console.STATIC_URL, StaticFiles(directory=console.STATIC_DIR), name="console")
    describe_api(app)
    return app
