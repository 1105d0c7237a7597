"""Fixtures for the end-to-end tests: `leadflow dev` (and, where a test needs to stop it on
its own, a Temporal dev server) run as real subprocesses on free ports, and a real SMTP
server for them to send to.

Every process is started in a session of its own, so killing its process group takes its
children with it; a finalizer always does that, whatever the test's outcome. When a test
fails, the tail of each of its processes' logs is attached to the failure report.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from support import all_up, free_ports, group_members

from leadflow.dev import temporal_dev_server_args

ADMIN_KEY = "lf_e2e_admin_key_not_secret"
READY_SECONDS = 90.0
# The processes of `leadflow dev` that serve metrics on a port of their own (its flags).
METRICS_PROCESSES = ("worker", "projector", "temporal")
LOG_TAIL_LINES = 80


def child_env(**extra: str) -> dict[str, str]:
    """This environment without any LEADFLOW_* setting of the caller's, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["LEADFLOW_BOOTSTRAP_ADMIN_KEY"] = ADMIN_KEY
    env.update(extra)
    return env


@dataclass
class ProcessGroup:
    """A command run as the leader of its own process group, its output appended to a log."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path
    popen: subprocess.Popen[bytes] | None = None

    @property
    def pgid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid  # a session leader's pgid is its pid

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"\n===== starting {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill_group(self) -> None:
        """SIGKILL the whole group and wait until none of it is alive (ports are free)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        self.popen.wait()
        deadline = time.monotonic() + 15
        while group_members(self.pgid) and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the leader and wait for it; SIGKILL the group if it does not go in time."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()

    def members(self) -> list[int]:
        """The group's live processes: the leader and whatever it started."""
        return group_members(self.pgid)

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_text(self, since: int = 0) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last `lines` lines of the log, without the API's access lines (a test
        polling /readyz fills the tail with them and hides why a process exited)."""
        kept = [line for line in self.log_text().splitlines() if " api.access: " not in line]
        return "\n".join(kept[-lines:])


@dataclass
class LeadflowDev:
    """`leadflow dev` on its own ports and data dir; restartable on the same ones."""

    group: ProcessGroup
    api_url: str
    temporal_target: str
    data_dir: Path
    # Where each process serves its Prometheus metrics: api, worker, projector, temporal sdk.
    metrics_urls: dict[str, str]
    admin_key: str = ADMIN_KEY

    def start(self) -> None:
        self.group.start()

    def kill_9(self) -> None:
        self.group.kill_group()

    def child_pid(self, role: str) -> int | None:
        """The pid of the supervised child playing `role` (`temporal`, `worker`,
        `projector` or `api`), or None while there is none (e.g. being restarted)."""
        for pid in self.group.members():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue  # it exited while we looked
            if role == "temporal":
                if Path(os.fsdecode(argv[0])).name == "temporal" and b"start-dev" in argv:
                    return pid
            elif argv[1:4] == [b"-m", b"leadflow", role.encode()]:
                return pid
        return None

    def wait_ready(self, seconds: float = READY_SECONDS) -> None:
        """Wait for GET /readyz to answer 200 with every check up (log DB, Temporal and a
        worker)."""
        deadline = time.monotonic() + seconds
        last = "no answer yet"
        with httpx.Client(base_url=self.api_url, timeout=5) as http:
            while time.monotonic() < deadline:
                if not self.group.running():
                    raise AssertionError(
                        "leadflow dev exited before it was ready; log:\n" + self.group.log_tail()
                    )
                try:
                    response = http.get("/readyz")
                    if response.status_code == 200 and all_up(response.json()):
                        return
                    last = f"{response.status_code} {response.text}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                time.sleep(0.3)
        raise AssertionError(
            f"leadflow dev not ready within {seconds:.0f}s (last /readyz: {last}); log:\n"
            f"{self.group.log_tail()}"
        )


@dataclass
class TemporalServer:
    """A Temporal dev server the test stops and starts itself (same port, same database)."""

    group: ProcessGroup
    address: str

    def start(self) -> None:
        self.group.start()

    def stop(self) -> None:
        self.group.stop()


@dataclass
class Processes:
    """Starts the processes a test needs and kills every one of them afterwards."""

    workdir: Path
    started: list[ProcessGroup] = field(default_factory=list)

    def _group(self, name: str, argv: list[str], env: dict[str, str]) -> ProcessGroup:
        group = ProcessGroup(name, argv, env, self.workdir / f"{name}.log", self.workdir)
        self.started.append(group)
        return group

    def leadflow_dev(
        self,
        data_dir: Path,
        *,
        temporal_address: str | None = None,
        env: dict[str, str] | None = None,
    ) -> LeadflowDev:
        """A started `leadflow dev` (not yet waited for) on free ports, Temporal UI off.

        With `temporal_address` it uses that Temporal instead of starting its own; `env`
        adds settings (e.g. LEADFLOW_SMTP_URL).
        """
        api_port, temporal_port, *metrics_ports = free_ports(5)
        leadflow = Path(sys.executable).parent / "leadflow"
        if not leadflow.exists():
            pytest.fail(f"{leadflow} is missing: run `make install`")
        argv = [
            str(leadflow),
            "dev",
            "--data-dir",
            str(data_dir),
            "--port",
            str(api_port),
            "--temporal-port",
            str(temporal_port),
            "--no-ui",
            *(
                f"--{process}-metrics-port={port}"
                for process, port in zip(METRICS_PROCESSES, metrics_ports, strict=True)
            ),
        ]
        extra = {"LEADFLOW_TEMPORAL_ADDRESS": temporal_address} if temporal_address else {}
        extra.update(env or {})
        dev = LeadflowDev(
            group=self._group(f"leadflow-dev-{len(self.started)}", argv, child_env(**extra)),
            api_url=f"http://127.0.0.1:{api_port}",
            temporal_target=temporal_address or f"127.0.0.1:{temporal_port}",
            data_dir=data_dir,
            metrics_urls={
                "api": f"http://127.0.0.1:{api_port}/metrics",
                **{
                    process: f"http://127.0.0.1:{port}/metrics"
                    for process, port in zip(METRICS_PROCESSES, metrics_ports, strict=True)
                },
            },
        )
        dev.start()
        return dev

    def temporal_server(self, db_file: Path) -> TemporalServer:
        """A started Temporal dev server (headless) configured exactly as `leadflow dev` does."""
        [port] = free_ports(1)
        group = self._group(
            f"temporal-{len(self.started)}",
            temporal_dev_server_args(db_file, port, ui_port=None),
            child_env(),
        )
        group.start()
        return TemporalServer(group, f"127.0.0.1:{port}")

    def leadflow(self, name: str, *args: str, env: dict[str, str]) -> ProcessGroup:
        """A started `leadflow <args>` (api, worker, projector) with the settings `env`."""
        leadflow = Path(sys.executable).parent / "leadflow"
        group = self._group(name, [str(leadflow), *args], child_env(**env))
        group.start()
        return group

    def kill_all(self) -> None:
        for group in self.started:
            group.kill_group()


@dataclass(frozen=True)
class Mail:
    """One message the SMTP sink accepted."""

    recipients: tuple[str, ...]
    message_id: str


class MailSink:
    """A real SMTP server (aiosmtpd) on a free port that keeps every message it accepts."""

    def __init__(self) -> None:
        [self.port] = free_ports(1)
        self._lock = threading.Lock()
        self._messages: list[Mail] = []
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Mail]:
        with self._lock:
            return list(self._messages)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        parsed = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        mail = Mail(
            recipients=tuple(str(to) for to in envelope.rcpt_tos),
            message_id=str(parsed.get("Message-ID", "")),
        )
        with self._lock:
            self._messages.append(mail)
        return "250 OK"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


@pytest.fixture
def mail_sink() -> Iterator[MailSink]:
    """A started SMTP sink, for `LEADFLOW_SMTP_URL`."""
    sink = MailSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.kill_all()


@pytest.fixture(scope="module")
def shared_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LeadflowDev]:
    """One `leadflow dev` for the tests of a module that neither stop nor break it."""
    workdir = tmp_path_factory.mktemp("shared-dev")
    procs = Processes(workdir)
    try:
        dev = procs.leadflow_dev(workdir / "data")
        dev.wait_ready()
        yield dev
    finally:
        procs.kill_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, attach the log tail of every process the test was using."""
    report = yield
    if report.failed:
        groups: list[ProcessGroup] = []
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, Processes):
                groups += value.started
            elif isinstance(value, LeadflowDev | TemporalServer):
                groups.append(value.group)
        for group in groups:
            report.sections.append((f"{group.name} log (tail)", group.log_tail()))
    return report
