"""CSV import throughput against the batch API with the same rows, in the same run.

Run from the repository root (no Temporal needed):

    .venv/bin/python bench/imports.py [--rows N] [--reps R]

Each repetition, on fresh SQLite data dirs, measures
  a) baseline: the rows as `lead.captured` envelopes posted to `POST /v1/events/batch`,
     1000 per request, through the app in process (FastAPI's TestClient: JSON parsing,
     authentication, validation and the group-committing writer, no sockets); and the
     same with each row's import event id (idempotent posts: an idempotency record each,
     as an import writes);
  b) `leadflow import`'s path: `intake.importer.run_import` appending through the store;
  c) `POST /v1/imports`: the upload, then the job until `GET /v1/imports/{id}` says it
     succeeded, through the same in-process app.
Repetitions are interleaved so drift hits each alike; the table shows medians of rows/s and
each import's ratio to the batch API (the target is >= 0.5x).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/imports.py`, this folder leads sys.path and bench/rules.py would
# shadow the `rules` package: the repository root first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import gc
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from intake.importer import run_import
from intake.mapping import parse_mapping
from intake.rows import Row, RowReader, read_table
from leadflow.bootstrap import open_store
from leadflow.settings import Settings

ADMIN = {"Authorization": "Bearer lf_bench_admin"}
MAPPING: dict[str, Any] = {
    "columns": {
        "email": "email",
        "name": "name",
        "region": "region",
        "budget": "attributes.budget",
    },
    "constants": {"source": "expo", "campaign_id": "spring"},
    "occurred_at": {"column": "created"},
}


def rows(n: int, run: str) -> list[dict[str, str]]:
    return [
        {
            "email": f"{run}-{i}@example.com",
            "name": f"Lead {i}",
            "region": ("east", "west")[i % 2],
            "budget": str(i * 10),
            "created": "2025-03-01T01:30:00+00:00",
        }
        for i in range(n)
    ]


def as_csv(table: list[dict[str, str]]) -> bytes:
    header = "email,name,region,budget,created"
    lines = [",".join(r[c] for c in header.split(",")) for r in table]
    return ("\n".join([header, *lines]) + "\n").encode()


def as_events(table: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [
        {
            "type": "lead.captured",
            "occurred_at": r["created"],
            "data": {
                "email": r["email"],
                "name": r["name"],
                "region": r["region"],
                "source": "expo",
                "campaign_id": "spring",
                "attributes": {"budget": r["budget"]},
            },
        }
        for r in table
    ]


@contextmanager
def fresh_settings() -> Iterator[Settings]:
    with tempfile.TemporaryDirectory(prefix="bench-imports-") as tmp:
        yield Settings(
            data_dir=Path(tmp) / "data",
            bootstrap_admin_key="lf_bench_admin",
            temporal_address="127.0.0.1:1",
        )


def import_ids(table: list[dict[str, str]]) -> list[str]:
    """The event ids the importer gives these rows (the hash of each row's event)."""
    mapping = parse_mapping(MAPPING)
    csv_table = read_table(as_csv(table), mapping)
    reader = RowReader(csv_table, mapping, "CN")
    now = datetime.now(UTC)
    read = [reader.read(number, cells, now) for number, cells in csv_table.records]
    return [row.event.event_id or "" for row in read if isinstance(row, Row)]


def batch_api(settings: Settings, table: list[dict[str, str]]) -> float:
    return _post_batches(settings, as_events(table))


def batch_api_with_ids(settings: Settings, table: list[dict[str, str]]) -> float:
    events = [
        {**e, "event_id": i} for e, i in zip(as_events(table), import_ids(table), strict=True)
    ]
    return _post_batches(settings, events)


def _post_batches(settings: Settings, events: list[dict[str, Any]]) -> float:
    with TestClient(create_app(settings)) as client:
        started = time.perf_counter()
        for start in range(0, len(events), 1000):
            answer = client.post(
                "/v1/events/batch", headers=ADMIN, json={"events": events[start : start + 1000]}
            )
            assert answer.status_code == 202, answer.text
        return time.perf_counter() - started


def importer(settings: Settings, table: list[dict[str, str]]) -> float:
    content, mapping = as_csv(table), parse_mapping(MAPPING)
    store = open_store(settings)
    gc.collect()
    gc.freeze()  # as `leadflow import` does
    try:
        started = time.perf_counter()
        report = run_import(content, mapping, store.append, phone_region="CN")
        elapsed = time.perf_counter() - started
    finally:
        gc.unfreeze()
        store.close()
    assert report.imported == len(table), report.as_json()
    return elapsed


def upload_job(settings: Settings, table: list[dict[str, str]]) -> float:
    content = as_csv(table)
    with TestClient(create_app(settings)) as client:
        started = time.perf_counter()
        posted = client.post(
            "/v1/imports",
            headers=ADMIN,
            files={"file": ("leads.csv", content, "text/csv")},
            data={"mapping": json.dumps(MAPPING)},
        )
        assert posted.status_code == 202, posted.text
        while True:
            body = client.get(f"/v1/imports/{posted.json()['import_id']}", headers=ADMIN).json()
            if body["status"] != "queued" and body["status"] != "running":
                break
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    assert body["status"] == "succeeded" and body["report"]["imported"] == len(table), body
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    ways = {
        "batch API (baseline)": batch_api,
        "batch API, with ids": batch_api_with_ids,
        "leadflow import": importer,
        "POST /v1/imports": upload_job,
    }
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for rep in range(args.reps):
        for name, way in ways.items():
            with fresh_settings() as settings:
                seconds[name].append(way(settings, rows(args.rows, f"r{rep}")))
    base = args.rows / statistics.median(seconds["batch API (baseline)"])
    print(f"{args.rows:,} rows, {args.reps} reps, SQLite, medians")
    print(f"{'way':<24} {'rows/s':>10} {'vs batch API':>13}")
    for name, times in seconds.items():
        rate = args.rows / statistics.median(times)
        print(f"{name:<24} {rate:>10,.0f} {rate / base:>12.2f}x")


if __name__ == "__main__":
    main()
