"""The long-running production processes: worker, projector (read models + dispatcher), api.

Each one builds its services from Settings through the composition root, runs until it is
told to stop (SIGINT/SIGTERM), and shuts down cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import httpx
import uvicorn
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer
from prometheus_client import start_http_server
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.decisions import DecisionActivities
from activities.notifications import NotificationActivities
from activities.senders import NotificationSender
from api.app import create_app
from delivery.dispatcher import Dispatcher
from delivery.temporal import LeadWorkflows, is_outage
from leadflow.bootstrap import Store, connect_temporal, open_store, projections
from leadflow.heartbeat import beating
from leadflow.logs import ActivityLogContext
from leadflow.settings import Settings
from leadflow.tracing import tracer_of, tracer_provider_from_environment
from projections.projector import Projector
from store.faults import is_database_outage
from store.leases import PROJECTOR_GROUP, LeaseKeeper, LeaseStore
from store.log_watch import LogWatch, open_log_watch
from store.partitions import Partitions
from workflows.lead import LeadWorkflow, notifications_queue

log = logging.getLogger(__name__)

# The projector processes on one PostgreSQL form a group (`store.leases`) sharing the log's
# partitions (`settings.follower_partitions`); a lease is renewed LEASE_ROUNDS times per its
# length.
LEASE_ROUNDS = 5

# How long the API keeps an idle keep-alive connection open (see run_api).
KEEP_ALIVE_SECONDS = 75


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


@contextlib.asynccontextmanager
async def lead_workers(
    client: Client,
    store: Store,
    settings: Settings,
    threads: WorkerThreads,
    sender: NotificationSender,
    workflow_runner: WorkflowRunner | None = None,
) -> AsyncIterator[None]:
    """The workers of LeadWorkflow, running while the context is open (also used by the
    tests, which keep the full sandbox: the default `workflow_runner`).

    Two workers with threads of their own, so that a slow receiver of notifications can
    never hold up a decision: one polls `settings.task_queue` for the workflows and their
    decisions (local activities), the other polls the notifications queue
    (`workflows.lead.notifications_queue`) for deliveries."""
    decisions = DecisionActivities(
        store.event_log,
        store.rulebook,
        store.quarantine,
        is_database_outage,
        settings.decision_time_limit_seconds,
    )
    notifications = NotificationActivities(
        store.event_log,
        store.rulebook,
        sender,
        settings.public_url,
        unsubscribe_mailbox=settings.unsubscribe_mailbox,
        locale=settings.locale,
        time_zone=settings.time_zone,
    )
    leads = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[LeadWorkflow],
        activities=[
            decisions.decide,
            decisions.fire_timer,
            decisions.plan_deliveries,
            decisions.park,
            decisions.close_parked,
            # Deliveries scheduled here by runs that started before they had a queue.
            notifications.send,
        ],
        activity_executor=threads.decisions,
        workflow_runner=workflow_runner or SandboxedWorkflowRunner(),
        max_cached_workflows=settings.max_cached_workflows,
        interceptors=[ActivityLogContext()],
    )
    deliveries = Worker(
        client,
        task_queue=notifications_queue(settings.task_queue),
        activities=[notifications.send],
        activity_executor=threads.notifications,
        max_concurrent_activities=threads.notification_slots,
        interceptors=[ActivityLogContext()],
    )
    async with leads, deliveries:
        yield


@dataclass(frozen=True)
class WorkerThreads:
    """The worker's thread pools: decisions and deliveries never wait for each other."""

    decisions: Executor
    notifications: Executor
    notification_slots: int

    @classmethod
    @contextlib.contextmanager
    def started(cls, decisions: int = 8, notifications: int = 16) -> Iterator[WorkerThreads]:
        with (
            ThreadPoolExecutor(decisions, thread_name_prefix="decide") as deciding,
            ThreadPoolExecutor(notifications, thread_name_prefix="deliver") as delivering,
        ):
            yield cls(deciding, delivering, notifications)


def production_workflow_runner() -> WorkflowRunner:
    """Temporal's sandbox with `workflows.lead` imported once instead of re-run for every new
    workflow (a quarter of the worker's time, measured). The sandbox still runs each
    workflow in its own context; what it no longer checks is what `workflows.lead` itself
    calls, which the tests and the history replays (full sandbox) keep guarding.
    `workflows.contracts`, `domain` and `rules` (already imported passed through) are named
    too, so that the sandbox's `sys.modules` finds them when the payload converter
    resolves their types."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "workflows.lead", "workflows.contracts", "domain", "rules"
        )
    )


def notification_sender(settings: Settings, http: httpx.Client) -> NotificationSender:
    return NotificationSender(settings.smtp_url, settings.mail_from, http)


@contextlib.contextmanager
def serving_metrics(host: str, port: int | None, process: str) -> Iterator[None]:
    """This process's Prometheus metrics (the default registry: what its modules count) on
    http://host:port/metrics while open; with no port, none."""
    if port is None:
        yield
        return
    server, thread = start_http_server(port, addr=host)
    log.info("%s metrics on http://%s:%d/metrics", process, host, port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def tracing(process: str) -> Iterator[TracerProvider | None]:
    """The process's tracer provider as the `OTEL_*` variables ask (None: traces off, the
    default); what it holds is exported before the process ends."""
    provider = tracer_provider_from_environment(process)
    if provider is not None:
        log.info("%s exporting traces", process)
    try:
        yield provider
    finally:
        if provider is not None:
            provider.shutdown()


def temporal_runtime(settings: Settings) -> Runtime | None:
    """The Temporal SDK's runtime with its own metrics (pollers, task latencies, slots...)
    exported for Prometheus on `temporal_metrics_port`; None: the SDK's default runtime."""
    if settings.temporal_metrics_port is None:
        return None
    address = f"{settings.metrics_host}:{settings.temporal_metrics_port}"
    prometheus = PrometheusConfig(
        bind_address=address, counters_total_suffix=True, durations_as_seconds=True
    )
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


def _starting(process: str, settings: Settings, **more: object) -> None:
    """One line naming what the process is about to use (its passwords are redacted by
    the log's formatter, leadflow/logs.py, like any secret in any line)."""
    log.info(
        "%s starting",
        process,
        extra={
            "database": settings.sqlalchemy_url,
            "temporal": settings.temporal_target,
            "namespace": settings.temporal_namespace,
            "task_queue": settings.task_queue,
            **more,
        },
    )


async def run_worker(settings: Settings) -> None:
    _starting("worker", settings, smtp=settings.smtp_url or "(none: emails are recorded)")
    stop = _stop_on_signals()
    with tracing("worker") as provider:
        await _work(settings, stop, provider)


async def _work(settings: Settings, stop: asyncio.Event, provider: TracerProvider | None) -> None:
    store = await asyncio.to_thread(open_store, settings)
    client = await connect_temporal(
        settings, wait_seconds=120, runtime=temporal_runtime(settings), tracer=tracer_of(provider)
    )
    try:
        with (
            WorkerThreads.started() as threads,
            httpx.Client() as http,
            serving_metrics(settings.metrics_host, settings.worker_metrics_port, "worker"),
        ):
            sender = notification_sender(settings, http)
            async with (
                lead_workers(
                    client, store, settings, threads, sender, production_workflow_runner()
                ),
                beating(settings.heartbeat_file),
            ):
                log.info("worker polling task queue %s", settings.task_queue)
                await stop.wait()
    finally:
        store.close()


async def run_projector(settings: Settings) -> None:
    """The projector (read models) and the dispatcher (workflows), both following the log.
    The projector needs no Temporal: it runs while the dispatcher waits for it."""
    _starting("projector", settings)
    stop = _stop_on_signals()
    store = await asyncio.to_thread(open_store, settings)
    try:
        # One watch wakes both followers when the API or the worker appends.
        watch = open_log_watch(
            store.event_log,
            store.engine.url,
            poll_seconds=settings.log_poll_seconds,
            check_seconds=settings.log_watch_seconds,
        )

        async def follow(partitions: Partitions, until: asyncio.Event) -> None:
            log.info("projector following %s", partitions)
            projector = Projector(
                store.event_log,
                store.engine,
                projections(),
                poll_seconds=settings.log_poll_seconds,
                partitions=partitions,
            )
            async with asyncio.TaskGroup() as tasks:
                # Read models may trail the log by 0.1 s; the dispatcher does not wait.
                tasks.create_task(projector.run_forever(until, watch, batch_seconds=0.1))
                tasks.create_task(
                    _dispatch(settings, store, partitions, until, watch, tracer_of(provider))
                )

        # One tracer provider for the process's life, however often it gains the lease.
        with (
            tracing("projector") as provider,
            serving_metrics(settings.metrics_host, settings.projector_metrics_port, "projector"),
        ):
            async with watch, beating(settings.heartbeat_file):
                if not settings.uses_follower_leases:
                    await follow(Partitions.whole(), stop)
                    return
                # Any number of projector processes: each follows the partitions it leases.
                keeper = follower_lease(store, settings)
                await asyncio.to_thread(keeper.join)
                log.info("projector %s waiting for the followers' leases", keeper.me)
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(keeper.run(stop))
                    tasks.create_task(
                        keeper.while_holding(
                            stop,
                            lambda held, until: follow(
                                Partitions(settings.follower_partitions, held), until
                            ),
                        )
                    )
    finally:
        store.close()


def follower_lease(store: Store, settings: Settings) -> LeaseKeeper:
    """This projector process's membership of the followers' group (`store.leases`): it
    runs the dispatcher and every read model on the partitions it leases, and takes a
    dead member's over."""
    lease = timedelta(seconds=settings.follower_lease_seconds)
    return LeaseKeeper(
        LeaseStore(store.engine),
        PROJECTOR_GROUP,
        settings.follower_partitions,
        f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}",
        ttl=lease,
        every=lease / LEASE_ROUNDS,
    )


async def _dispatch(
    settings: Settings,
    store: Store,
    partitions: Partitions,
    stop: asyncio.Event,
    watch: LogWatch,
    tracer: Tracer | None,
) -> None:
    connecting = asyncio.create_task(
        connect_temporal(settings, wait_seconds=float("inf"), tracer=tracer)
    )
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not connecting.done():
        connecting.cancel()
        return
    client = connecting.result()
    workflows = LeadWorkflows(client, settings.task_queue, settings.workflow_history_limit, tracer)
    dispatcher = Dispatcher(
        store.event_log,
        store.positions,
        workflows.deliver,
        store.quarantine,
        is_outage=is_outage,
        concurrency=settings.dispatcher_concurrency,
        poll_seconds=settings.log_poll_seconds,
        partitions=partitions,
    )
    log.info("dispatcher following %s", partitions)
    await dispatcher.run_forever(stop, watch)


def run_api(settings: Settings) -> None:
    _starting("api", settings, listen=f"{settings.api_host}:{settings.api_port}")
    with tracing("api") as provider:
        _serve_api(settings, tracer_of(provider))


def _serve_api(settings: Settings, tracer: Tracer | None) -> None:
    uvicorn.run(
        create_app(settings, tracer),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        # uvicorn's lines go through leadflow's handler (leadflow/logs.py), and the access
        # log is leadflow's own (api/request_log.py), which knows the request id.
        log_config=None,
        access_log=False,
        # The C HTTP parser and event loop: half the server's CPU per request of h11 on
        # asyncio's loop (BENCHMARKS.md, Ingest).
        http="httptools",
        # Idle keep-alive connections are closed by the client (or the proxy in front)
        # first: with uvicorn's 5 s, a client reusing a connection as the server closes it
        # gets "server disconnected" (seen in the kill -9 test; behind a load balancer,
        # 502s). Above the usual proxies' 60 s.
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        loop="uvloop",
    )
