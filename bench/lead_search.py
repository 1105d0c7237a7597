"""How fast `GET /v1/leads` finds leads among 100,000 (issue #19, part "find"): search,
filters, every sort and a deep page, on SQLite and PostgreSQL, through the real app
in-process (routing, auth, the query, JSON), against the plain first page in the same run.

Run from the repository root:

    .venv/bin/python bench/lead_search.py [--leads N] [--requests R]
        [--backend sqlite|postgres|both] [--postgres-url URL]

PostgreSQL runs when `--postgres-url` or LEADFLOW_TEST_POSTGRES_URL names a server: a fresh
database, dropped afterwards. The `leads` rows are written straight into the read model
(`row_of` of made-up states: Chinese and English names, companies, phones, 50 reps in 10
teams, a year of capture times) — the projector's own speed is bench/projections.py's
business. Each query kind is asked R times (after one warm-up), interleaved with the other
kinds; p50 and p95 in ms, and p95 / the baseline's p95. Last, the console's `/leads` first
render as the browser asks for it: the page's HTML, then its first API answer (50 leads).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import contextlib
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert, text

from api.app import create_app
from bench.environment import machine_info
from bench.projections import postgres_settings, sqlite_settings
from domain.state import LeadState
from leadflow.settings import Settings
from projections.leads import LeadsProjection, row_of

ADMIN_KEY = "lf_bench_admin"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超"]
PLACES = ["华东", "华南", "北方", "西部", "上海", "深圳", "杭州", "成都", "苏州", "南京"]
TRADES = ["科技", "贸易", "制造", "物流", "医疗", "教育", "软件", "精密", "电子", "食品"]
ENGLISH = ["Ann", "Bob", "Chen", "Dana", "Eve", "Frank", "Grace", "Li", "Mia", "Noah"]
STAGES = ["new"] * 6 + ["MQL"] * 2 + ["SQL", "opportunity", "won", "lost"]
SOURCES = ["website", "fair", "ads", "referral", "import"]
REGIONS = ["east", "west", "north", "south"]
CHANNELS = [None, "wechat", "ads", "dingtalk"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)

# (kind, query parameters): the baseline first.
QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("baseline: first page", {}),
    ("prefix: 张", {"q": "张"}),
    ("prefix: 王芳", {"q": "王芳"}),
    ("contains: 科技", {"q": "科技"}),
    ("contains: 杭州精密 (rare)", {"q": "杭州精密"}),
    ("contains: no match", {"q": "不存在的公司"}),
    ("email: lead12345@", {"q": "lead12345@"}),
    ("phone: 138 0013 (formatted)", {"q": "138 0013"}),
    ("phone: full number (one lead)", {"q": "+86 139-0012-3456"}),
    ("filter: owner", {"owner": "rep-7"}),
    ("filter: owner + stage", {"owner": "rep-7", "stage": "MQL"}),
    ("filter: 3 owners + in_pool", {"owner": ["rep-1", "rep-2", "rep-3"], "in_pool": "false"}),
    ("filter: team + source + region", {"team": "team-3", "source": "fair", "region": "east"}),
    ("filter: created in March", {"created_from": "2026-03-01", "created_to": "2026-03-31"}),
    ("filter: stage won (rare) + channel", {"stage": "won", "channel": "wechat"}),
    ("search + filter: 科技 + owner", {"q": "科技", "owner": "rep-7"}),
    ("search + sort: 科技 by name", {"q": "科技", "sort": "name"}),
    ("sort: name", {"sort": "name"}),
    ("sort: -company", {"sort": "-company"}),
    ("sort: stage", {"sort": "stage"}),
    ("sort: -score", {"sort": "-score"}),
    ("sort: last_activity_at", {"sort": "last_activity_at"}),
    ("sort: owner", {"sort": "owner"}),
    ("sort: created_at (oldest first)", {"sort": "created_at"}),
    ("filter + sort: owner by -score", {"owner": "rep-7", "sort": "-score"}),
]
DEEP_PAGES = 20


def made_up_leads(count: int, seed: int = 19) -> Iterator[dict[str, Any]]:
    """`leads` rows of `count` made-up leads, captured over a year."""
    rng = random.Random(seed)
    for i in range(count):
        chinese = rng.random() < 0.8
        name = (
            rng.choice(SURNAMES)
            + rng.choice(GIVEN)
            + (rng.choice(GIVEN) if rng.random() < 0.5 else "")
            if chinese
            else f"{rng.choice(ENGLISH)} {rng.choice(ENGLISH)}son"
        )
        company = rng.choice(PLACES) + rng.choice(TRADES) + "有限公司"
        rep = rng.randrange(60)  # 50 reps; the rest in the pool
        created = T0 + timedelta(seconds=rng.randrange(365 * 86400))
        state = LeadState(
            lead_id=f"{i:08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-8{rng.getrandbits(12):03x}-{rng.getrandbits(48):012x}",
            stage=rng.choice(STAGES),
            owner=f"rep-{rep}" if rep < 50 else None,
            team=f"team-{rep % 10}" if rep < 50 else None,
            in_pool=rep >= 50,
            email=f"lead{i}@example{i % 97}.com",
            phone=f"+86{rng.choice(['138', '139', '137', '186'])}{rng.randrange(10**8):08d}",
            name=name,
            company=company,
            source=rng.choice(SOURCES),
            channel=rng.choice(CHANNELS),
            region=rng.choice(REGIONS),
            score=rng.randrange(100),
            created_at=created.isoformat(),
            last_activity_at=(created + timedelta(hours=rng.randrange(2000))).isoformat(),
            touch_count=1,
        )
        yield row_of(state, i + 1)


def fill(client: TestClient, count: int) -> float:
    store = client.app.state.store  # type: ignore[attr-defined]
    table = LeadsProjection().table
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    with store.engine.begin() as conn:
        for row in made_up_leads(count):
            batch.append(row)
            if len(batch) == 5000:
                conn.execute(insert(table), batch)
                batch = []
        if batch:
            conn.execute(insert(table), batch)
    # As autovacuum leaves a table in use: statistics, and (PostgreSQL) the visibility map an
    # index-only scan needs.
    maintenance = "VACUUM ANALYZE" if store.engine.dialect.name == "postgresql" else "ANALYZE"
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(maintenance))
    return time.perf_counter() - started


def timed(client: TestClient, path: str, params: dict[str, Any] | None = None) -> float:
    started = time.perf_counter()
    response = client.get(path, params=params, headers=ADMIN)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.text
    return elapsed


def deep_cursor(client: TestClient, params: dict[str, Any]) -> str:
    """The cursor of page DEEP_PAGES (50 leads a page)."""
    cursor = None
    for _ in range(DEEP_PAGES - 1):
        paged = {**params, **({"cursor": cursor} if cursor else {})}
        body = client.get("/v1/leads", params=paged, headers=ADMIN).json()
        cursor = body["next_cursor"]
    assert cursor is not None
    return cursor


def measure(client: TestClient, requests: int) -> list[tuple[str, list[float]]]:
    kinds = list(QUERIES)
    for sort in ("-created_at", "name"):
        cursor = deep_cursor(client, {"sort": sort})
        kinds.append((f"deep page {DEEP_PAGES}: sort {sort}", {"sort": sort, "cursor": cursor}))
    times: dict[str, list[float]] = {kind: [] for kind, _ in kinds}
    for _kind, params in kinds:  # warm-up
        timed(client, "/v1/leads", params)
    for _ in range(requests):
        for kind, params in kinds:
            times[kind].append(timed(client, "/v1/leads", params))
    first_render = []
    for _ in range(requests):
        started = time.perf_counter()
        page = client.get("/leads")
        assert page.status_code == 200
        timed(client, "/v1/leads", {"limit": 50})
        first_render.append((time.perf_counter() - started) * 1000)
    return [
        *((kind, times[kind]) for kind, _ in kinds),
        ("console /leads first render", first_render),
    ]


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def report(backend: str, results: list[tuple[str, list[float]]]) -> None:
    base = p95(results[0][1])
    print(f"\n{backend}: {'query kind':<40} {'p50 ms':>8} {'p95 ms':>8} {'p95/base':>9}")
    for kind, values in results:
        p50 = statistics.median(values)
        ratio = p95(values) / base
        print(f"{'':<{len(backend) + 2}}{kind:<40} {p50:8.1f} {p95(values):8.1f} {ratio:9.2f}")


def run(settings: Settings, backend: str, leads: int, requests: int) -> None:
    with TestClient(create_app(settings)) as client:
        took = fill(client, leads)
        print(f"{backend}: {leads} leads written and analysed in {took:.1f} s")
        report(backend, measure(client, requests))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--postgres-url", default=os.environ.get("LEADFLOW_TEST_POSTGRES_URL"))
    args = parser.parse_args(argv)
    print(machine_info(["sqlalchemy", "psycopg", "fastapi"]))
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            setup: contextlib.AbstractContextManager[Settings]
            if backend == "postgres":
                if not args.postgres_url:
                    print("postgres skipped: give --postgres-url or set LEADFLOW_TEST_POSTGRES_URL")
                    continue
                setup = postgres_settings(Path(tmp), args.postgres_url)
            else:
                setup = sqlite_settings(Path(tmp))
            with setup as settings:
                bench_settings = settings.model_copy(
                    update={"bootstrap_admin_key": ADMIN_KEY, "temporal_address": "127.0.0.1:1"}
                )
                run(bench_settings, backend, args.leads, args.requests)


if __name__ == "__main__":
    main()
