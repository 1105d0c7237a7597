"""Hosted form submissions against single `POST /v1/events` posts, same API, same run.

Run from the repository root (no Temporal needed):

    .venv/bin/python bench/forms.py [--backend sqlite|postgres|both] [--n N] [--reps R]

For each backend it starts `leadflow api` as a subprocess on a fresh data dir or fresh
PostgreSQL database, publishes a form whose fields map to the same capture fields as the
baseline's body, and measures, repetitions interleaved:

  a) baseline: single `lead.captured` posts/s to `POST /v1/events` with an API key, one
     client posting one at a time, and 8 concurrent clients;
  b) form submissions/s to `POST /f/{form_id}`: JSON (the snippet's post) and urlencoded
     (the hosted page's post), one client, and JSON from 8 concurrent clients. Each
     submission carries its own fill token, issued ahead of time with the API's secret
     (`LEADFLOW_FORM_SECRET`, set for the run) and old enough to pass the fill time; the
     rate limit is raised so that one address may send them all.

Every submission and post creates a new lead (distinct addresses). The target is
form submissions >= 0.5x single posts (issue #17).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import contextlib
import http.client
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from rich.console import Console
from rich.table import Table

from bench.environment import machine_info
from bench.ingest import (
    Emails,
    LightClient,
    RunningApi,
    api_env,
    capture_body,
    encoded,
    post_all,
    running_api,
)
from bench.postgres import default_admin_url, fresh_databases, with_driver
from intake.abuse import issue_token

FORM_ID = "bench-form"
SECRET = "bench-form-secret-not-secret"
ADMIN_KEY = "lf_bench_forms_admin"
TARGET_RATIO = 0.5
CONCURRENCY = 8

console = Console(width=None if sys.stdout.isatty() else 132)

FORM = {
    "id": FORM_ID,
    "title": {"en": "Contact us", "zh-CN": "联系我们"},
    "source": "web-form",
    "channel": "organic",
    "campaign_id": "autumn-2026",
    "min_fill_seconds": 1,
    "fields": [
        {"name": "full_name", "type": "text", "maps_to": "name", "label": "Name"},
        {"name": "email", "type": "email", "maps_to": "email", "label": "Email", "required": True},
        {"name": "company", "type": "text", "maps_to": "company", "label": "Company"},
        {"name": "region", "type": "text", "maps_to": "region", "label": "Region"},
        {"name": "industry", "type": "text", "maps_to": "industry", "label": "Industry"},
        {
            "name": "size",
            "type": "select",
            "maps_to": "company_size",
            "label": "Size",
            "options": [{"value": "11-50", "label": "11-50"}],
        },
        {
            "name": "intent",
            "type": "select",
            "maps_to": "intent",
            "label": "Intent",
            "options": [{"value": "high", "label": "High"}, {"value": "low", "label": "Low"}],
        },
    ],
    "consent": {"required": True, "version": "v1", "text": "You may contact me."},
}


def submission(email: str) -> dict[str, Any]:
    """What the snippet posts for the baseline's capture (same fields, same attributes)."""
    return {
        "full_name": "Ada Lovelace",
        "email": email,
        "company": "Analytical Engines Ltd",
        "region": "EU",
        "industry": "software",
        "size": "11-50",
        "intent": "high",
        "consent": True,
        "homepage": "",
        "_lf_token": issue_token(SECRET.encode(), FORM_ID, time.time() - 60),
        "utm_campaign": "autumn-2026",
        "page_url": "https://www.example.com/pricing",
        "lang": "en",
    }


class FormClient:
    """One keep-alive connection posting submissions, no API key (a visitor's browser)."""

    def __init__(self, api: RunningApi) -> None:
        url = urlsplit(api.base_url)
        self.connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=120)
        self.used = time.monotonic()

    def submit(self, body: bytes, content_type: str) -> int:
        if time.monotonic() - self.used > 3.0:
            self.connection.close()  # idle past uvicorn's keep-alive: reconnect, as browsers do
        self.used = time.monotonic()
        self.connection.request(
            "POST", f"/f/{FORM_ID}", body=body, headers={"Content-Type": content_type}
        )
        response = self.connection.getresponse()
        response.read()
        return response.status

    def close(self) -> None:
        self.connection.close()


def submit_all(client: FormClient, payloads: list[bytes], content_type: str) -> None:
    for payload in payloads:
        status = client.submit(payload, content_type)
        if status != 200:
            raise RuntimeError(f"POST /f/{FORM_ID}: {status}")


def forms_single(client: FormClient, emails: Emails, n: int, as_json: bool) -> float:
    bodies = [submission(e) for e in emails.take(n)]
    if as_json:
        payloads, kind = encoded(bodies), "application/json"
    else:
        payloads = [
            urlencode({k: "on" if v is True else v for k, v in b.items()}).encode() for b in bodies
        ]
        kind = "application/x-www-form-urlencoded"
    start = time.perf_counter()
    submit_all(client, payloads, kind)
    return n / (time.perf_counter() - start)


def forms_concurrent(clients: list[FormClient], emails: Emails, n: int) -> float:
    payloads = encoded([submission(e) for e in emails.take(n)])
    shares = [payloads[i :: len(clients)] for i in range(len(clients))]
    with ThreadPoolExecutor(len(clients)) as pool:
        start = time.perf_counter()
        futures = [
            pool.submit(submit_all, c, s, "application/json")
            for c, s in zip(clients, shares, strict=True)
        ]
        for done in futures:
            done.result()
        return n / (time.perf_counter() - start)


def events_single(client: LightClient, emails: Emails, n: int) -> float:
    payloads = encoded([capture_body(e) for e in emails.take(n)])
    start = time.perf_counter()
    post_all(client, payloads)
    return n / (time.perf_counter() - start)


def events_concurrent(clients: list[LightClient], emails: Emails, n: int) -> float:
    payloads = encoded([capture_body(e) for e in emails.take(n)])
    shares = [payloads[i :: len(clients)] for i in range(len(clients))]
    with ThreadPoolExecutor(len(clients)) as pool:
        start = time.perf_counter()
        for done in [pool.submit(post_all, c, s) for c, s in zip(clients, shares, strict=True)]:
            done.result()
        return n / (time.perf_counter() - start)


@contextlib.contextmanager
def api_for(backend: str, workdir: Path) -> Iterator[RunningApi]:
    with contextlib.ExitStack() as stack:
        database_url = None
        if backend == "postgres":
            urls = stack.enter_context(fresh_databases(default_admin_url(), "forms"))
            database_url = with_driver(urls["forms"], "postgresql")
        env = api_env(database_url)
        env["LEADFLOW_FORM_SECRET"] = SECRET
        env["LEADFLOW_FORM_SUBMISSIONS_PER_MINUTE"] = "100000000"
        env["LEADFLOW_BOOTSTRAP_ADMIN_KEY"] = ADMIN_KEY
        data_dir = workdir / backend
        yield stack.enter_context(running_api(data_dir, env, workdir / f"api-{backend}.log"))


def measure(backend: str, n: int, reps: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, api_for(backend, Path(tmp)) as api:
        published = httpx.post(
            f"{api.base_url}/v1/forms",
            json=FORM,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        published.raise_for_status()
        emails = Emails()
        light = LightClient(api)
        form = FormClient(api)
        lights = [LightClient(api) for _ in range(CONCURRENCY)]
        forms = [FormClient(api) for _ in range(CONCURRENCY)]
        runs: dict[str, Callable[[], float]] = {
            "POST /v1/events, 1 client": lambda: events_single(light, emails, n),
            "POST /f/{id} JSON, 1 client": lambda: forms_single(form, emails, n, True),
            "POST /f/{id} urlencoded, 1 client": lambda: forms_single(form, emails, n, False),
            f"POST /v1/events, {CONCURRENCY} clients": lambda: events_concurrent(
                lights, emails, n * 2
            ),
            f"POST /f/{{id}} JSON, {CONCURRENCY} clients": lambda: forms_concurrent(
                forms, emails, n * 2
            ),
        }
        for run in runs.values():  # warm up: connections, caches, the form's parse
            run()
        for _ in range(reps):
            for name, run in runs.items():
                results.setdefault(name, []).append(run())
        for client in [light, form, *lights, *forms]:
            client.close()
    return results


def report(backend: str, results: dict[str, list[float]]) -> None:
    medians = {name: statistics.median(values) for name, values in results.items()}
    single = medians["POST /v1/events, 1 client"]
    concurrent = medians[f"POST /v1/events, {CONCURRENCY} clients"]
    table = Table(title=f"{backend}: requests/s (median of {len(next(iter(results.values())))})")
    table.add_column("measurement")
    table.add_column("per s", justify="right")
    table.add_column("range", justify="right")
    table.add_column("vs /v1/events", justify="right")
    for name, values in results.items():
        baseline = concurrent if f"{CONCURRENCY} clients" in name else single
        table.add_row(
            name,
            f"{medians[name]:.0f}",
            f"{min(values):.0f}-{max(values):.0f}",
            f"{medians[name] / baseline:.2f}x",
        )
    console.print(table)
    ratio = medians["POST /f/{id} JSON, 1 client"] / single
    verdict = "meets" if ratio >= TARGET_RATIO else "misses"
    console.print(
        f"{backend}: form submissions / single posts = {ratio:.2f}x ({verdict} >= {TARGET_RATIO}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--n", type=int, default=300, help="requests per measurement")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    console.print(machine_info(("fastapi", "uvicorn", "sqlalchemy", "psycopg")))
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        report(backend, measure(backend, args.n, args.reps))


if __name__ == "__main__":
    main()
