"""Ingest throughput: the HTTP API against a bare eventsourcing save loop, same backend.

Run from the repository root (no Temporal needed: ingest must not wait on it):

    .venv/bin/python bench/ingest.py [--backend sqlite|postgres|both] [--n N] [--quick]

For each backend it starts `leadflow api` as a subprocess on a fresh data dir or fresh
PostgreSQL database, creates an ingest key with `leadflow keys create`, and measures

  a) single `lead.captured` posts/s over keep-alive HTTP: one client posting one at a time
     (latency-bound), N concurrent clients (throughput: what the API sustains), and
     re-posting the same addresses (repeat captures of known leads)
     vs a bare `Application.save` loop of single-event aggregates (eventsourcing_sqlalchemy).
     The clients are the standard library's `http.client` (`LightClient`): an httpx client
     costs more per request than the server's own handling of a post (reference row);
  b) batch-of-1000 events/s (POST /v1/events/batch) vs one bare `app.save(*1000 aggregates)`;
  c) references: raw sqlite3 / psycopg single-row INSERT transactions, GET /healthz (the HTTP
     floor), the bare loops through leadflow's own recorder (`LogRecorder`), and on
     PostgreSQL through the native `eventsourcing.postgres` module (needs psycopg-pool).

Repetitions are interleaved (every rep runs every measurement once), so drift from other
work on the machine hits leadflow and its baseline alike; the table shows medians.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/ingest.py`, this file's folder leads sys.path and bench/rules.py would
# shadow the `rules` package (imported with store.log): the repository root first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import contextlib
import http.client
import json
import os
import secrets
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from importlib.util import find_spec
from typing import Any, Protocol
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import httpx
import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from rich.console import Console
from rich.table import Table

from bench.environment import machine_info
from bench.otlp_sink import discarding_collector
from bench.postgres import default_admin_url, fresh_databases, with_driver
from domain.events import parse_event
from domain.lead import IdentityIndex, Lead
from tests.support import free_port

BATCH_SIZE = 1000
TARGET_RATIO = 0.5
OCCURRED_AT = "2026-11-30T09:00:00Z"
NATIVE_SKIPPED = "eventsourcing.postgres rows skipped: `pip install psycopg-pool` to measure them"

# Wide enough for the table when piped to a file (rich assumes 80 columns then).
console = Console(width=None if sys.stdout.isatty() else 132)

# Their versions are printed with the results.
MEASURED_PACKAGES = ("eventsourcing", "eventsourcing-sqlalchemy", "sqlalchemy", "psycopg")


# --- what is posted and what the baseline saves -------------------------------------------


def capture_body(email: str) -> dict[str, Any]:
    """A realistic web-form capture; every call site passes a distinct email (a new lead)."""
    return {
        "type": "lead.captured",
        "occurred_at": OCCURRED_AT,
        "data": {
            "email": email,
            "name": "Ada Lovelace",
            "company": "Analytical Engines Ltd",
            "source": "web-form",
            "channel": "organic",
            "region": "EU",
            "industry": "software",
            "company_size": "11-50",
            "intent": "high",
            "attributes": {"utm_campaign": "autumn-2026", "landing_page": "/pricing"},
        },
    }


class Emails:
    """Distinct addresses across the whole run, so every capture creates a new lead."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(4)
        self.next = 0

    def take(self, count: int) -> list[str]:
        start, self.next = self.next, self.next + count
        return [f"bench-{self.tag}-{i}@example.com" for i in range(start, start + count)]


class BenchLead(Aggregate):
    """The baseline: one stream per lead, one created event carrying the same data dict."""

    class Captured(Aggregate.Created):
        event_id: str
        occurred_at: datetime
        data: dict[str, Any]

    def __init__(self, event_id: str, occurred_at: datetime, data: dict[str, Any]) -> None:
        self.data = data


class BareLog(Application):
    name = "BenchBare"  # its own table (benchbare_events), fresh per run


class NativeLog(Application):
    name = "BenchNative"  # a different table: the two modules' schemas differ


class RecorderLog(Application):
    """The bare loops again through leadflow's own recorder (store.log.LogRecorder),
    to show how much of leadflow's speed is its recorder."""

    name = "BenchRecorder"


RECORDER_MODULE = "store.log:LogFactory"


def baseline_data(email: str) -> dict[str, Any]:
    """The data dict exactly as the API would store it (validated and normalised)."""
    return parse_event(capture_body(email), now=datetime.now(UTC), phone_region="CN").data


def new_bench_lead(email: str) -> BenchLead:
    occurred = datetime.fromisoformat(OCCURRED_AT.replace("Z", "+00:00"))
    return BenchLead(event_id=str(uuid4()), occurred_at=occurred, data=baseline_data(email))


def bare_single(app: Application, emails: Emails, n: int) -> float:
    """Saves/s of n single-event aggregates, one transaction each."""
    leads = [new_bench_lead(e) for e in emails.take(n)]
    start = time.perf_counter()
    for lead in leads:
        app.save(lead)
    return n / (time.perf_counter() - start)


def bare_batch(app: Application, emails: Emails, batches: int) -> float:
    """Events/s of `batches` saves of 1000 new aggregates each, one transaction per save."""
    # Built before the clock (as in bare_single): the baseline is the save alone, the
    # strictest comparison for the API, which also parses and builds inside its time.
    per_batch = [[new_bench_lead(e) for e in emails.take(BATCH_SIZE)] for _ in range(batches)]
    start = time.perf_counter()
    for leads in per_batch:
        app.save(*leads)
    return batches * BATCH_SIZE / (time.perf_counter() - start)


# --- raw driver references ------------------------------------------------------------------

RAW_TABLE = """CREATE TABLE IF NOT EXISTS raw_events (
    id {id_type},
    originator_id {uuid_type} NOT NULL,
    originator_version INTEGER NOT NULL,
    topic TEXT NOT NULL,
    state {blob_type},
    UNIQUE (originator_id, originator_version))"""
RAW_INSERT = (
    "INSERT INTO raw_events (originator_id, originator_version, topic, state) "
    "VALUES ({p}, {p}, {p}, {p})"
)


def raw_sqlite_single(path: Path, n: int, state: bytes) -> float:
    """Single-row INSERT transactions with the PRAGMAs eventsourcing_sqlalchemy uses."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")  # synchronous stays at its FULL default
        con.execute(
            RAW_TABLE.format(
                id_type="INTEGER PRIMARY KEY AUTOINCREMENT", uuid_type="TEXT", blob_type="BLOB"
            )
        )
        insert = RAW_INSERT.format(p="?")
        rows = [(uuid4().hex, 1, "bench:Captured", state) for _ in range(n)]
        start = time.perf_counter()
        for row in rows:
            con.execute("BEGIN")
            con.execute(insert, row)
            con.execute("COMMIT")
        return n / (time.perf_counter() - start)
    finally:
        con.close()


def raw_postgres_single(conninfo: str, n: int, state: bytes) -> float:
    """Single-row INSERT transactions over one psycopg connection (the PostgreSQL floor)."""
    with psycopg.connect(conninfo) as con:
        con.execute(
            RAW_TABLE.format(id_type="BIGSERIAL PRIMARY KEY", uuid_type="UUID", blob_type="BYTEA")
        )
        con.commit()
        insert = RAW_INSERT.format(p="%s")
        rows = [(uuid4(), 1, "bench:Captured", state) for _ in range(n)]
        start = time.perf_counter()
        for row in rows:
            con.execute(insert, row)
            con.commit()
        return n / (time.perf_counter() - start)


# --- the API under test -------------------------------------------------------------------


def leadflow_command() -> list[str]:
    script = Path(sys.executable).parent / "leadflow"
    return [str(script)] if script.exists() else [sys.executable, "-m", "leadflow"]


def api_env(database_url: str | None) -> dict[str, str]:
    """The subprocess environment: no inherited LEADFLOW_* setting can change what we measure."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    if database_url is not None:
        env["LEADFLOW_DATABASE_URL"] = database_url
    # A port nothing listens on: the API keeps connecting in the background (as it would
    # with Temporal down) and can't pick up a Temporal someone else runs on 7233.
    env["LEADFLOW_TEMPORAL_ADDRESS"] = f"127.0.0.1:{free_port()}"
    return env


def create_ingest_key(data_dir: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [*leadflow_command(), "keys", "create", "--scope", "ingest", "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


@dataclass
class RunningApi:
    base_url: str
    pid: int
    key: str


@contextlib.contextmanager
def running_api(data_dir: Path, env: dict[str, str], log_path: Path) -> Iterator[RunningApi]:
    """`leadflow api` on a free port, stopped (SIGTERM, then SIGKILL) however we leave."""
    key = create_ingest_key(data_dir, env)
    port = free_port()
    command = [*leadflow_command(), "api", "--data-dir", str(data_dir), "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"leadflow api exited:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"leadflow api not up in 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield RunningApi(base_url, process.pid, key)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Client(Protocol):
    """One keep-alive connection to the API."""

    def post(self, path: str, body: bytes) -> tuple[int, Any]:
        """POST a JSON body; the status and the decoded answer."""
        ...

    def get(self, path: str) -> int:
        """GET; the status."""
        ...

    def close(self) -> None: ...


# Below uvicorn's default keep-alive timeout (5 s).
IDLE_SECONDS = 3.0


class LightClient:
    """The load generator: the standard library's `http.client` on one keep-alive
    connection. It costs ~0.65 ms less per request than an `httpx.Client` here (measured
    against the same server: 1 client 843-925 vs 536-625 posts/s), so the round trip
    measures the server, not the client (`HttpxClient` is kept as a reference row)."""

    def __init__(self, api: RunningApi) -> None:
        url = urlsplit(api.base_url)
        self.connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=120)
        self.headers = {"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"}
        self.used = time.monotonic()

    def post(self, path: str, body: bytes) -> tuple[int, Any]:
        self._reopen_if_idle()
        self.connection.request("POST", path, body=body, headers=self.headers)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read())

    def get(self, path: str) -> int:
        self._reopen_if_idle()
        self.connection.request("GET", path, headers=self.headers)
        response = self.connection.getresponse()
        response.read()
        return response.status

    def _reopen_if_idle(self) -> None:
        """A connection idle for longer than a server may keep one (uvicorn's default: 5 s;
        leadflow's API: 75 s) is opened anew, as a browser would: the concurrent clients
        wait while the other rows are measured, and a post on a connection the server
        closed fails with a broken pipe (every run did against `97bbb4c`, which kept 5 s)."""
        now = time.monotonic()
        if now - self.used > IDLE_SECONDS:
            self.connection.close()  # http.client connects again on the next request
        self.used = now

    def close(self) -> None:
        self.connection.close()


class HttpxClient:
    """The same over `httpx.Client` (what the earlier runs measured with)."""

    def __init__(self, api: RunningApi) -> None:
        self.client = httpx.Client(
            base_url=api.base_url,
            headers={"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"},
            timeout=120,
        )

    def post(self, path: str, body: bytes) -> tuple[int, Any]:
        response = self.client.post(path, content=body)
        return response.status_code, response.json()

    def get(self, path: str) -> int:
        return self.client.get(path).status_code

    def close(self) -> None:
        self.client.close()


def encoded(bodies: list[Any]) -> list[bytes]:
    # Encoded before the clock starts: we time the server, not the client's json.dumps.
    return [json.dumps(b).encode() for b in bodies]


def post_all(client: Client, payloads: list[bytes], *, new_lead: bool = True) -> None:
    for payload in payloads:
        status, answer = client.post("/v1/events", payload)
        if status != 202 or answer["new_lead"] is not new_lead:
            raise RuntimeError(f"POST /v1/events: {status} {answer}")


def api_single(client: Client, addresses: list[str], *, new_lead: bool = True) -> float:
    """Posts/s of one capture per address; `new_lead=False`: addresses already captured (a
    repeat capture, which the API first tries as a new identity, then retries with reads)."""
    payloads = encoded([capture_body(e) for e in addresses])
    start = time.perf_counter()
    post_all(client, payloads, new_lead=new_lead)
    return len(payloads) / (time.perf_counter() - start)


def api_concurrent(clients: list[Client], emails: Emails, n: int) -> float:
    """n posts shared by len(clients) threads, each on its own keep-alive connection."""
    payloads = encoded([capture_body(e) for e in emails.take(n)])
    shares = [payloads[i :: len(clients)] for i in range(len(clients))]
    with ThreadPoolExecutor(len(clients)) as pool:
        start = time.perf_counter()
        for done in [pool.submit(post_all, c, s) for c, s in zip(clients, shares, strict=True)]:
            done.result()
        elapsed = time.perf_counter() - start
    return n / elapsed


def api_batch(client: Client, emails: Emails, batches: int) -> float:
    payloads = encoded(
        [{"events": [capture_body(e) for e in emails.take(BATCH_SIZE)]} for _ in range(batches)]
    )
    start = time.perf_counter()
    for payload in payloads:
        status, answer = client.post("/v1/events/batch", payload)
        if status != 202 or len(answer["results"]) != BATCH_SIZE:
            raise RuntimeError(f"POST /v1/events/batch: {status} {answer}")
    return batches * BATCH_SIZE / (time.perf_counter() - start)


def api_healthz(client: Client, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        if client.get("/healthz") != 200:
            raise RuntimeError("GET /healthz failed")
    return n / (time.perf_counter() - start)


# --- backends -------------------------------------------------------------------------------


@dataclass
class Backend:
    """Where one backend's run keeps its data: every store here is fresh."""

    name: str
    data_dir: Path
    api_database_url: str | None  # None: the API's default SQLite file in data_dir
    bare_env: dict[str, str]
    native_env: dict[str, str] | None = None  # PostgreSQL only
    raw: Callable[[int, bytes], float] | None = None
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def sqlite_backend(tmp: Path) -> Iterator[Backend]:
    # Same URL shape as Settings.sqlalchemy_url, on its own fresh file.
    bare_url = f"sqlite:///{tmp / 'bare.db'}?timeout=30"
    yield Backend(
        name="sqlite",
        data_dir=tmp / "api",
        api_database_url=None,
        bare_env={"PERSISTENCE_MODULE": "eventsourcing_sqlalchemy", "SQLALCHEMY_URL": bare_url},
        raw=lambda n, state: raw_sqlite_single(tmp / "raw.db", n, state),
    )


@contextlib.contextmanager
def postgres_backend(tmp: Path, admin_url: str) -> Iterator[Backend]:
    """Two fresh databases (API; baselines), dropped WITH (FORCE) on the way out."""
    with fresh_databases(admin_url, "api", "bare") as urls:
        bare = urls["bare"]
        native_env = None
        if find_spec("psycopg_pool") is not None:
            native_env = {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": bare.database or "",
                "POSTGRES_HOST": bare.host or "127.0.0.1",
                "POSTGRES_PORT": str(bare.port or 5432),
                "POSTGRES_USER": bare.username or "postgres",
                "POSTGRES_PASSWORD": bare.password or "",
            }
        bare_conninfo = with_driver(bare, "postgresql")
        yield Backend(
            name="postgres",
            data_dir=tmp / "api",
            api_database_url=with_driver(urls["api"], "postgresql"),
            bare_env={
                "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
                "SQLALCHEMY_URL": with_driver(bare, "postgresql+psycopg"),
            },
            native_env=native_env,
            raw=lambda n, state: raw_postgres_single(bare_conninfo, n, state),
            notes=[] if native_env else [NATIVE_SKIPPED],
        )


# --- the run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    n: int  # single posts (and bare saves) per rep
    reps: int
    batches: int  # batches of 1000 per rep
    threads: int
    warmup: int
    # Settings given to the API (`--api-env`), e.g. LEADFLOW_LOG_LEVEL=warning.
    api_settings: dict[str, str] = field(default_factory=dict)
    traces: bool = False  # the API exports every span over OTLP (`--traces`)


Samples = dict[str, list[float]]


def stored_sizes(app: Application) -> dict[str, int]:
    """Bytes of stored state per event: what one post writes vs what the baseline writes."""
    email = "size-probe@example.com"
    lead = Lead.capture(uuid4(), str(uuid4()), datetime.now(UTC), baseline_data(email))
    index = IdentityIndex.for_identity(UUID(int=1), lead.id)
    sizes: dict[str, int] = {}
    for label, aggregate in (
        ("lead.captured", lead),
        ("identity index", index),
        ("baseline", new_bench_lead(email)),
    ):
        [event] = aggregate.collect_events()
        sizes[label] = len(app.mapper.to_stored_event(event).state)
    return sizes


def measure_backend(backend: Backend, plan: Plan, tmp: Path) -> tuple[Samples, dict[str, int]]:
    emails = Emails()
    samples: Samples = {}

    def record(label: str, value: float) -> None:
        samples.setdefault(label, []).append(value)

    env = {**api_env(backend.api_database_url), **plan.api_settings}
    with contextlib.ExitStack() as stack:
        collector = stack.enter_context(discarding_collector()) if plan.traces else None
        if collector is not None:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.url
            stack.callback(lambda: console.log(f"{backend.name}: traces exported: {collector}"))
        bare = BareLog(env=backend.bare_env)
        stack.callback(bare.close)
        recorder = RecorderLog(env={**backend.bare_env, "PERSISTENCE_MODULE": RECORDER_MODULE})
        stack.callback(recorder.close)
        native: Application | None = None
        if backend.native_env is not None:
            native = NativeLog(env=backend.native_env)
            stack.callback(native.close)
        sizes = stored_sizes(bare)
        raw_state = b"x" * sizes["baseline"]
        api = stack.enter_context(running_api(backend.data_dir, env, tmp / "api.log"))
        client: Client = LightClient(api)
        stack.callback(client.close)
        reference: Client = HttpxClient(api)
        stack.callback(reference.close)
        clients: list[Client] = [LightClient(api) for _ in range(plan.threads)]
        for each in clients:
            stack.callback(each.close)

        # Warm-up: imports, connection pools, SQLite page cache, the server's first requests.
        warm = emails.take(plan.warmup)
        api_single(client, warm)
        api_single(client, warm, new_lead=False)
        api_single(reference, emails.take(plan.warmup))
        api_concurrent(clients, emails, plan.threads * 2)
        api_batch(client, emails, 1)
        bare_single(bare, emails, plan.warmup)
        bare_batch(bare, emails, 1)
        bare_single(recorder, emails, plan.warmup)
        bare_batch(recorder, emails, 1)
        if native is not None:
            bare_single(native, emails, plan.warmup)
            bare_batch(native, emails, 1)

        def on_server(label: str, count: int, measure: Callable[[], float]) -> None:
            # The API process's CPU per operation tells CPU-bound from waiting on the DB.
            before = process_cpu_seconds(api.pid)
            record(label, measure())
            record(f"{label}_cpu_ms", (process_cpu_seconds(api.pid) - before) / count * 1e3)

        for rep in range(plan.reps):
            console.log(f"{backend.name}: rep {rep + 1}/{plan.reps}")
            record("bare_single", bare_single(bare, emails, plan.n))
            fresh = emails.take(plan.n)
            on_server("api_single", plan.n, partial(api_single, client, fresh))
            record("api_repeat", api_single(client, fresh, new_lead=False))
            on_server("api_concurrent", plan.n, partial(api_concurrent, clients, emails, plan.n))
            record("api_single_httpx", api_single(reference, emails.take(plan.n)))
            record("bare_batch", bare_batch(bare, emails, plan.batches))
            on_server(
                "api_batch",
                plan.batches * BATCH_SIZE,
                lambda: api_batch(client, emails, plan.batches),
            )
            record("recorder_single", bare_single(recorder, emails, plan.n))
            record("recorder_batch", bare_batch(recorder, emails, plan.batches))
            if native is not None:
                record("native_single", bare_single(native, emails, plan.n))
                record("native_batch", bare_batch(native, emails, plan.batches))
            if backend.raw is not None:
                record("raw_single", backend.raw(plan.n, raw_state))
            on_server("healthz", plan.n, lambda: api_healthz(client, plan.n))
    return samples, sizes


# --- report ---------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """Half the range across reps over the median: how noisy this row was."""
    if len(values) < 2:
        return "-"
    return f"±{(max(values) - min(values)) / median(values) / 2:.0%}"


def report(results: dict[str, tuple[Samples, dict[str, int]]], plan: Plan) -> None:
    table = Table(title="Ingest throughput (median of reps; ratio = leadflow / baseline)")
    table.add_column("backend")
    table.add_column("measurement")
    for column in ("leadflow/s", "baseline/s", "ratio", "target"):
        table.add_column(column, justify="right")
    table.add_column("met", justify="center")
    table.add_column("spread", justify="right")
    table.add_column("API CPU/op", justify="right")

    def row(
        backend: str,
        label: str,
        ours: list[float],
        base: list[float] | None = None,
        target: float | None = None,
        cpu_ms: list[float] | None = None,
    ) -> None:
        ratio = median(ours) / median(base) if base else None
        met = "" if target is None or ratio is None else ("yes" if ratio >= target else "NO")
        table.add_row(
            backend,
            label,
            f"{median(ours):,.0f}",
            f"{median(base):,.0f}" if base else "",
            f"{ratio:.2f}x" if ratio is not None else "",
            f">= {target}x" if target is not None else "",
            met,
            spread(ours),
            f"{median(cpu_ms):.2f} ms" if cpu_ms else "",
        )

    for backend, (s, _) in results.items():
        single, batch = s["bare_single"], s["bare_batch"]
        row(
            backend,
            "a) single post, 1 client",
            s["api_single"],
            single,
            target=TARGET_RATIO,
            cpu_ms=s["api_single_cpu_ms"],
        )
        row(
            backend,
            f"a) single post, {plan.threads} clients",
            s["api_concurrent"],
            single,
            target=TARGET_RATIO,
            cpu_ms=s["api_concurrent_cpu_ms"],
        )
        row(backend, "ref: single post, 1 httpx client", s["api_single_httpx"], single)
        row(backend, "a) repeat capture (known email)", s["api_repeat"], single)
        row(
            backend,
            "b) batch of 1000 (events/s)",
            s["api_batch"],
            batch,
            target=TARGET_RATIO,
            cpu_ms=s["api_batch_cpu_ms"],
        )
        row(backend, "bare save loop", single)
        row(backend, "bare save(*1000) (events/s)", batch)
        # In the reference rows below the ratio is to the stock eventsourcing_sqlalchemy loop.
        row(backend, "ref: LogRecorder save loop", s["recorder_single"], single)
        row(backend, "ref: LogRecorder save(*1000)", s["recorder_batch"], batch)
        if "native_single" in s:
            row(backend, "eventsourcing.postgres loop", s["native_single"], single)
            row(backend, "eventsourcing.postgres save(*1000)", s["native_batch"], batch)
        driver = "sqlite3" if backend == "sqlite" else "psycopg"
        row(backend, f"raw {driver} 1-row txns", s["raw_single"])
        row(backend, "GET /healthz, 1 client", s["healthz"], cpu_ms=s["healthz_cpu_ms"])
        table.add_section()

    console.print(table)
    for backend, (s, _) in results.items():
        # What a) could reach if handling a post cost exactly one bare save on top of this
        # client's HTTP round trip: the two happen one after the other.
        floor, save = median(s["healthz"]), median(s["bare_single"])
        ceiling = 1 / (1 / floor + 1 / save)
        console.print(
            f"{backend}: ceiling for a) with this client: GET /healthz round trip + one bare "
            f"save = {ceiling:,.0f} posts/s = {ceiling / save:.2f}x"
        )
    for backend, (_, sizes) in results.items():
        console.print(
            f"{backend}: a capture post writes 2 events in one transaction "
            f"(lead.captured {sizes['lead.captured']} B + identity index "
            f"{sizes['identity index']} B), reading nothing first when the email is new "
            f"(API key cached; a repeat capture is refused by the unique key and retried "
            f"with reads); a batch reads its identities in one query; a baseline save "
            f"writes 1 event of {sizes['baseline']} B."
        )
    console.print(
        "Units: posts/s, saves/s, rows/s or requests/s unless marked events/s. "
        "LogRecorder and eventsourcing.postgres rows: the same bare loops through leadflow's "
        "recorder or the native module; ratio = that / stock eventsourcing_sqlalchemy. "
        "spread = half the range over the median. API CPU/op = the API process's user+system "
        "CPU per post, per batch event or per request."
    )


def parse_args(argv: list[str] | None) -> tuple[list[str], Plan, str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--n", type=int, help="single posts per rep [300; quick 100]")
    parser.add_argument("--reps", type=int, help="repetitions, median reported [5; quick 3]")
    parser.add_argument("--batches", type=int, help="batches of 1000 per rep [2; quick 1]")
    parser.add_argument(
        "--threads", type=int, default=8, help="concurrent clients, one thread each [8]"
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run (~30 s)")
    parser.add_argument(
        "--pg-url",
        default=default_admin_url(),
        help="an admin connection that may CREATE/DROP DATABASE [%(default)s]",
    )
    parser.add_argument(
        "--api-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the API, e.g. LEADFLOW_LOG_LEVEL=warning (no access log)",
    )
    parser.add_argument(
        "--traces",
        action="store_true",
        help="the API exports every span over OTLP/HTTP to a collector in this process",
    )
    args = parser.parse_args(argv)
    plan = Plan(
        n=args.n or (100 if args.quick else 300),
        reps=args.reps or (3 if args.quick else 5),
        batches=args.batches or (1 if args.quick else 2),
        threads=args.threads,
        warmup=20 if args.quick else 50,
        api_settings=dict(setting.split("=", 1) for setting in args.api_env),
        traces=args.traces,
    )
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    return backends, plan, args.pg_url


def main(argv: list[str] | None = None) -> None:
    backends, plan, pg_url = parse_args(argv)
    console.print(f"[bold]Machine:[/] {machine_info(MEASURED_PACKAGES)}")
    console.print(
        f"[bold]Plan:[/] {plan.n} single posts x {plan.reps} reps, {plan.batches} batch(es) "
        f"of {BATCH_SIZE} per rep, {plan.threads} concurrent clients for the concurrent variant"
    )
    if plan.api_settings or plan.traces:
        given = [f"{k}={v}" for k, v in plan.api_settings.items()]
        console.print(f"[bold]API:[/] {' '.join(given + ['traces on'] * plan.traces)}")
    results: dict[str, tuple[Samples, dict[str, int]]] = {}
    started = time.perf_counter()
    for name in backends:
        with contextlib.ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="leadflow-bench-")))
            setup = sqlite_backend(tmp) if name == "sqlite" else postgres_backend(tmp, pg_url)
            try:
                backend = stack.enter_context(setup)
            except psycopg.OperationalError as exc:
                console.print(f"[yellow]{name} skipped: PostgreSQL unreachable ({exc})[/]")
                continue
            for note in backend.notes:
                console.print(f"[yellow]{note}[/]")
            results[name] = measure_backend(backend, plan, tmp)
    if results:
        report(results, plan)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    console.print(f"total {time.perf_counter() - started:.0f} s; load average at the end {load}")


if __name__ == "__main__":
    main()
