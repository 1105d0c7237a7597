"""What a shadow version costs a decision: one trigger decided under the active version alone
against the same trigger decided under the active version plus a shadow version (issue #18;
target: <= 2x).

Run from the repository root:

    .venv/bin/python bench/shadow.py                 # 2 x 600 decisions, ~1 min
    .venv/bin/python bench/shadow.py --leads 200     # quicker

Two SQLite stores (fresh data dirs, the default directory with unlimited capacities, the
default ruleset active): in "shadow" a second version (east website leads to rep-east-2) is
started in shadow, in "alone" nothing is on trial. Each lead's capture is appended, then
decided by the decisions activity's own method (`DecisionActivities.decide`: the active
ruleset, the directory and the trials read, the lifecycle step, the append, and for the
shadow store the second step, its timers, the comparison and the `shadow_decisions` row, in
the same transaction). Only the activity call is timed. Leads cycle through website/east
(the shadow disagrees), east and west round robins (it agrees) and low intent (nurture);
the two stores take turns in chunks of 20 leads, so a slow moment of the machine falls on
both. Prints the median and p90 per decision of each and the ratio shadow / alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/shadow.py`: the repository root first (bench/rules.py would shadow
# the `rules` package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import contextlib
import copy
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from activities.decisions import DecisionActivities
from bench.environment import machine_info, work_dir
from domain.events import parse_event
from leadflow.bootstrap import Store, open_store
from leadflow.settings import Settings
from store.rulebook import default_directory_document, default_ruleset_document
from store.shadow_decisions import shadow_decisions
from workflows.contracts import DecideInput

CHUNK = 20
LEADS = [
    {"source": "website", "region": "east", "intent": "high"},
    {"source": "fair", "region": "east"},
    {"source": "web", "region": "west"},
    {"source": "web", "region": "west", "intent": "low"},
]


def open_bench_store(folder: Path, shadow: bool) -> Store:
    settings = Settings(
        data_dir=folder, bootstrap_admin_key="lf_bench_admin", temporal_address="127.0.0.1:1"
    )
    store = open_store(settings)
    now = datetime.now(UTC)
    store.rulebook.install_defaults(now)
    directory = default_directory_document()
    for rep in directory["reps"]:
        rep["capacity"] = 1_000_000
    store.rulebook.replace_directory(directory, "bench", now)
    if shadow:
        candidate = copy.deepcopy(default_ruleset_document())
        [rule] = [r for r in candidate["rules"] if r["id"] == "east-website"]
        rule["actions"][0]["params"]["rep"] = "rep-east-2"
        version = store.rulebook.publish(candidate, "bench", now)
        store.rulebook.start_shadow(version, "bench", now)
    return store


def decide_one(store: Store, activities: DecisionActivities, index: int, tag: str) -> float:
    data: dict[str, Any] = {"email": f"{tag}-{index}@bench.example", **LEADS[index % len(LEADS)]}
    event = parse_event(
        {"type": "lead.captured", "data": data}, now=datetime.now(UTC), phone_region="CN"
    )
    [appended] = store.append([event], [event.event_id])
    request = DecideInput(
        str(appended.lead_id), "lead.captured", appended.event_id, datetime.now(UTC).isoformat()
    )
    started = time.perf_counter()
    result = activities.decide(request)
    elapsed = time.perf_counter() - started
    assert result.decided, "every bench lead is decided something"
    return elapsed


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=600, help="decisions per store")
    parser.add_argument("--keep", type=Path, help="keep the stores in this new folder")
    args = parser.parse_args()
    console = Console()
    console.print(machine_info(["eventsourcing", "sqlalchemy"]))
    with contextlib.ExitStack() as stack:
        folder = work_dir(stack, args.keep, "bench-shadow-")
        stores = {
            "alone": open_bench_store(folder / "alone", shadow=False),
            "shadow": open_bench_store(folder / "shadow", shadow=True),
        }
        activities = {
            name: DecisionActivities(
                store.event_log, store.rulebook, store.quarantine, lambda _error: False
            )
            for name, store in stores.items()
        }
        times: dict[str, list[float]] = {name: [] for name in stores}
        # A warm-up chunk each (compiled rulesets, connections, caches), not counted.
        for name, store in stores.items():
            for i in range(CHUNK):
                decide_one(store, activities[name], i, f"warm-{name}")
        done = 0
        while done < args.leads:
            for name, store in stores.items():
                for i in range(done, min(done + CHUNK, args.leads)):
                    times[name].append(decide_one(store, activities[name], i, name))
            done += CHUNK
        with stores["shadow"].engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(shadow_decisions)).scalar_one()
            disagreeing = conn.execute(
                select(func.count())
                .select_from(shadow_decisions)
                .where(shadow_decisions.c.agrees.is_(False))
            ).scalar_one()
        for store in stores.values():
            store.close()

    table = Table(title=f"one decision, {args.leads} leads each (SQLite)")
    for column in ("", "median ms", "p90 ms", "mean ms"):
        table.add_column(column, justify="right")
    for name, values in times.items():
        table.add_row(
            name,
            f"{statistics.median(values) * 1000:.2f}",
            f"{percentile(values, 0.9) * 1000:.2f}",
            f"{statistics.fmean(values) * 1000:.2f}",
        )
    console.print(table)
    ratio = statistics.median(times["shadow"]) / statistics.median(times["alone"])
    mean_ratio = statistics.fmean(times["shadow"]) / statistics.fmean(times["alone"])
    console.print(
        f"shadow rows: {rows} ({disagreeing} disagreeing); "
        f"ratio shadow / alone: median {ratio:.2f}x, mean {mean_ratio:.2f}x (target <= 2x)"
    )


if __name__ == "__main__":
    main()
