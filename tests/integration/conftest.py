"""Fixtures for integration tests: a real SMTP server (aiosmtpd), a real webhook receiver,
and the in-process pipeline for tests on a real Temporal dev server: the event
log, the dispatcher and a worker running `LeadWorkflow` with its activities.

Every workflow history a test produces is replayed with `temporalio.worker.Replayer` when
the pipeline stops, so a non-deterministic change to the workflow fails CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from opentelemetry.trace import Tracer
from support import free_port, until
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Replayer, WorkflowRunner

from activities.senders import NotificationSender
from delivery.converter import LEAD_DATA_CONVERTER
from delivery.dispatcher import Dispatcher
from delivery.temporal import LeadWorkflows, connect, is_outage
from domain.events import parse_event
from domain.state import LeadState
from leadflow.bootstrap import Store, open_store
from leadflow.processes import WorkerThreads, lead_workers, notification_sender
from leadflow.settings import Settings
from leadflow.tracing import temporal_interceptors
from store.log_watch import open_log_watch
from workflows.lead import LeadWorkflow, workflow_id_for

# Where a history that fails to replay is written (ignored by git; CI keeps the checkout).
FAILED_HISTORIES = Path(__file__).parents[2] / "artifacts" / "failed-histories"


@dataclasses.dataclass
class Pipeline:
    store: Store
    client: Client
    settings: Settings

    def post(self, body: dict[str, Any]) -> Any:
        event = parse_event(body, now=datetime.now(UTC), phone_region="CN")
        return self.store.append([event], [event.event_id])[0]

    def capture(self, email: str, **data: Any) -> UUID:
        result = self.post(
            {"type": "lead.captured", "data": {"email": email, "source": "website", **data}}
        )
        lead_id: UUID = result.lead_id
        return lead_id

    def handle(self, lead_id: UUID) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(workflow_id_for(str(lead_id)))

    async def state(self, lead_id: UUID) -> LeadState:
        state: LeadState = await self.handle(lead_id).query(LeadWorkflow.state)
        return state

    @staticmethod
    async def until(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
        """Poll `check` until it holds; fail naming `what` after `seconds`."""
        await until(check, what, seconds)

    async def eventually(self, lead_id: UUID, check: Callable[[LeadState], bool]) -> LeadState:
        """The workflow's state once `check` holds (polls; fails after 30 s)."""
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            with contextlib.suppress(Exception):
                state = await self.state(lead_id)
                if check(state):
                    return state
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"lead {lead_id}: workflow never reached the expected state")
            await asyncio.sleep(0.1)


async def settle(client: Client, task_queue: str) -> None:
    """Wait until no workflow of this test has a workflow task in flight, so the histories
    replayed afterwards are complete (the replayer cannot run a missing local activity)."""
    deadline = asyncio.get_running_loop().time() + 20
    while asyncio.get_running_loop().time() < deadline:
        busy = [
            wf.id
            async for wf in client.list_workflows(f"TaskQueue = '{task_queue}'")
            if (
                await client.get_workflow_handle(wf.id, run_id=wf.run_id).describe()
            ).raw_description.HasField("pending_workflow_task")
        ]
        if not busy:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"workflows still busy after 20 s: {busy}")


async def replay_histories(client: Client, task_queue: str) -> int:
    """Replay every workflow run this test made; raises on any non-determinism."""
    histories = [
        history
        async for history in client.list_workflows(f"TaskQueue = '{task_queue}'").map_histories()
        # A run that continued-as-new an instant ago has no workflow task yet: nothing to
        # replay, and the replayer waits forever on such a history.
        if any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in history.events)
    ]
    # One at a time: replay_workflows() over the live listing hung here once (temporalio 1.35).
    replayer = Replayer(workflows=[LeadWorkflow], data_converter=LEAD_DATA_CONVERTER)
    for history in histories:
        try:
            await asyncio.wait_for(replayer.replay_workflow(history), 20)
        except Exception as exc:
            # Kept so a rare non-determinism can be replayed at will (`Replayer` on the file).
            FAILED_HISTORIES.mkdir(parents=True, exist_ok=True)
            saved = FAILED_HISTORIES / f"{history.workflow_id}-{history.run_id()}.json"
            saved.write_text(history.to_json())
            raise AssertionError(f"{history.workflow_id} did not replay: {saved}") from exc
    save_to = os.environ.get("LEADFLOW_SAVE_HISTORIES")
    if save_to:
        # How tests/histories/ is refreshed: see README, "Changing LeadWorkflow safely".
        for index, history in enumerate(histories):
            (Path(save_to) / f"{history.workflow_id}-{index}.json").write_text(history.to_json())
    return len(histories)


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    workflow_runner: WorkflowRunner | None = None,
    sender: NotificationSender | None = None,
    tracer: Tracer | None = None,
) -> AsyncIterator[Pipeline]:
    store = open_store(settings)
    # As the worker and the dispatcher connect: with leadflow's payload converter (and,
    # given a tracer, Temporal's tracing interceptor).
    client = await connect(
        settings.temporal_target,
        settings.temporal_namespace,
        interceptors=temporal_interceptors(tracer),
    )
    workflows = LeadWorkflows(client, settings.task_queue, settings.workflow_history_limit, tracer)
    dispatcher = Dispatcher(
        store.event_log, store.positions, workflows.deliver, store.quarantine, is_outage=is_outage
    )
    watch = open_log_watch(
        store.event_log,
        store.engine.url,
        poll_seconds=settings.log_poll_seconds,
        check_seconds=settings.log_watch_seconds,
    )
    stop = asyncio.Event()
    try:
        with WorkerThreads.started(4, 8) as threads, httpx.Client() as http:
            delivering = sender or notification_sender(settings, http)
            async with (
                watch,
                lead_workers(client, store, settings, threads, delivering, workflow_runner),
            ):
                following = asyncio.create_task(dispatcher.run_forever(stop, watch))
                yield Pipeline(store, client, settings)
                stop.set()
                await following
                await settle(client, settings.task_queue)
        await replay_histories(client, settings.task_queue)
    finally:
        store.close()


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """The store on the test's database (SQLite, or a fresh PostgreSQL database)."""
    opened = open_store(settings)
    yield opened
    opened.close()


@pytest.fixture
def temporal_settings(settings: Settings, temporal_address: str) -> Settings:
    return settings.model_copy(update={"temporal_address": temporal_address})


# (settings, workflow_runner=None, sender=None, tracer=None): the worker keeps Temporal's
# full sandbox unless given a runner, sends with the settings' sender unless given one, and
# traces with the tracer given one.
RunPipeline = Callable[..., contextlib.AbstractAsyncContextManager[Pipeline]]


@pytest.fixture
def run_pipeline() -> RunPipeline:
    """`async with run_pipeline(settings) as pipeline:` runs log → dispatcher → workflows."""
    return running


# --- a real SMTP server -------------------------------------------------------------------


@dataclass
class MailHandler:
    """Collects accepted envelopes; refuses recipients listed in `refuse` with that reply.
    With `hold` set, each message waits after its DATA command until `release` is set."""

    envelopes: list[Envelope] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    logins: list[tuple[str, str]] = field(default_factory=list)
    hold: bool = False
    held: int = 0
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.hold:
            self.held += 1
            await asyncio.to_thread(self.release.wait, 10)
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=True)

    def message(self, index: int = 0) -> EmailMessage:
        content = self.envelopes[index].original_content
        assert content is not None
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class MailServer:
    handler: MailHandler
    url: str


@pytest.fixture
def smtp() -> Iterator[MailServer]:
    handler = MailHandler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=handler.authenticate,
        auth_require_tls=False,  # a test server without certificates still checks login
    )
    controller.start()
    try:
        yield MailServer(handler, f"smtp://127.0.0.1:{port}")
    finally:
        handler.release.set()
        controller.stop()


# --- a real webhook receiver --------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records every POST; answers each path as told (default 200 with a robot's
    `{"errcode": 0}`), and holds `/slow` until the test ends."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answers: dict[str, tuple[int, bytes, dict[str, str]]] = {}
        self.failures: dict[str, int] = {}  # path → how many 500s to answer first
        self.release = threading.Event()
        self.held = 0  # requests to /slow held right now
        self.most_held = 0  # the most held at once
        self.answered_slow = 0  # requests to /slow answered (after `release`, or 30 s)
        receiver = self
        counting = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                receiver.requests.append(
                    Received(self.path, dict(self.headers.items()), self.rfile.read(length))
                )
                if self.path.startswith("/slow"):
                    with counting:
                        receiver.held += 1
                        receiver.most_held = max(receiver.most_held, receiver.held)
                    receiver.release.wait(30)
                    with counting:
                        receiver.held -= 1
                        receiver.answered_slow += 1
                path = self.path.split("?")[0]
                status, body, headers = receiver.answers.get(
                    path, (200, b'{"errcode": 0, "errmsg": "ok"}', {})
                )
                if receiver.failures.get(path, 0) > 0:
                    receiver.failures[path] -= 1
                    status, body, headers = 500, b"down for a moment", {}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str, status: int, body: Any, **headers: str) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answers[path] = (status, raw, headers)


@contextlib.contextmanager
def serving() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(
        target=receiver.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving() as receiver:
        yield receiver


@pytest.fixture
def other_receiver() -> Iterator[Receiver]:
    """A second receiver, on a port (so a destination) of its own."""
    with serving() as receiver:
        yield receiver
