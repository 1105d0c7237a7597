"""The Grafana dashboard in deploy/grafana shows leadflow's metrics, and only metrics that
exist: every `leadflow_*` series a panel queries is one the processes declare, and every
metric they declare has a panel. (The `temporal_*` series come from the SDK's exporter:
tests/e2e/test_dev.py checks them against a real worker's scrape.)"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import REGISTRY

# Importing the processes imports every module that declares a metric.
import leadflow.processes  # noqa: F401
from api.flow_status import FlowStatus, FollowerLag
from api.metrics import FlowCollector
from store.quarantine import StageSummary

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "leadflow-dashboard.json"
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def dashboard_series(prefix: str) -> set[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    return {name for expr in exprs for name in re.findall(rf"\b{prefix}[a-z_]+\b", expr)}


def family(series: str) -> str:
    for suffix in SUFFIXES:
        if series.endswith(suffix):
            return series.removesuffix(suffix)
    return series


def declared() -> set[str]:
    flow = FlowStatus(
        1,
        [FollowerLag("dispatcher", "delivery", 1, 0, 0.0)],
        {"delivery": StageSummary({"parked": 1}, "boom", datetime.now(UTC))},
        [],
        {},
    )
    collectors = [*REGISTRY.collect(), *FlowCollector(lambda: flow).collect()]
    return {metric.name for metric in collectors if metric.name.startswith("leadflow_")}


def test_every_series_a_panel_queries_is_declared() -> None:
    unknown = {s for s in dashboard_series("leadflow_") if family(s) not in declared()}
    assert not unknown, f"panels query series no process declares: {sorted(unknown)}"


def test_every_declared_metric_has_a_panel() -> None:
    shown = {family(series) for series in dashboard_series("leadflow_")}
    assert declared() - shown == set(), "metrics without a panel in the dashboard"
