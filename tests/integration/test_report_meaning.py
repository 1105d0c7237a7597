"""Report numbers that mean what they say, on real SQLite and PostgreSQL: the KPIs' marketing
ROI and the campaign totals are one number; a report's days, weeks and months are those of
its time zone; every number has a definition in en and zh-CN (GET /v1/reports/definitions).
The history is test_reports' hand-built one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from test_reports import ADMIN, History, build, project, report

from api.app import create_app
from leadflow.settings import Settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def history(client: TestClient) -> History:
    return History(client.app.state.store)  # type: ignore[attr-defined]


@pytest.fixture
def leads(client: TestClient, history: History) -> dict[str, UUID]:
    built = build(history)
    project(history.store)
    return built


WINDOWS = [
    {},
    {"from": "2026-03-01", "to": "2026-04-01"},
    {"from": "2026-03-15", "to": "2026-04-03"},
    {"from": "2026-04-02T10:00:00+08:00", "to": "2026-04-06T09:30:00Z"},
    {"to": "2026-01-01"},
]


def test_the_roi_figure_and_the_campaign_totals_are_one_number(
    client: TestClient, leads: dict[str, UUID]
) -> None:
    for tz in ("UTC", "Asia/Shanghai", "America/Los_Angeles"):
        for window in WINDOWS:
            [kpis] = report(client, "kpis", tz=tz, **window)["rows"]
            for interval in ("week", "month"):
                campaigns = report(client, "campaign-roi", tz=tz, interval=interval, **window)
                overall = campaigns["overall"]
                assert (kpis["spend"], kpis["campaign_revenue"]) == (
                    overall["spend"],
                    overall["revenue"],
                ), (tz, window)
                assert kpis["marketing_roi"] == overall["roi"], (tz, window)
                # The per-campaign totals add up to the overall figure.
                totals = campaigns["totals"]
                assert sum(t["spend"] for t in totals) == pytest.approx(overall["spend"])
                assert sum(t["revenue"] for t in totals) == pytest.approx(overall["revenue"])
    # Not a vacuous agreement: the whole history has spend, revenue and an ROI.
    [kpis] = report(client, "kpis")["rows"]
    assert kpis["marketing_roi"] == pytest.approx((1700 - 480) / 480)


def test_report_days_are_the_days_of_the_time_zone(
    client: TestClient, history: History, settings: Settings
) -> None:
    assert settings.time_zone == "Asia/Shanghai"  # the default
    # Sunday 1 March 17:00 UTC is Monday 2 March 01:00 in Shanghai.
    late = datetime(2026, 3, 1, 17, tzinfo=UTC)
    lead = history.capture("late", late, source="web", campaign_id="spring")
    # Won Tuesday 31 March 20:00 UTC: Wednesday 1 April in Shanghai.
    history.post("lead.won", datetime(2026, 3, 31, 20, tzinfo=UTC), lead, amount="300")
    project(history.store)
    monday = {"from": "2026-03-02", "to": "2026-03-03"}

    shanghai = _report(client, "sources", **monday)
    assert shanghai["time_zone"] == "Asia/Shanghai"
    assert (shanghai["from"], shanghai["to"]) == (
        "2026-03-01T16:00:00+00:00",
        "2026-03-02T16:00:00+00:00",
    )
    assert shanghai["total"] == 1
    assert report(client, "sources", tz="UTC", **monday)["total"] == 0
    assert (
        report(client, "sources", tz="UTC", **{"from": "2026-03-01", "to": "2026-03-02"})["total"]
        == 1
    )

    def buckets(**params: str) -> list[tuple[str, float]]:
        rows = _report(client, "campaign-roi", **params)["rows"]
        return [(r["period_start"], r["revenue"]) for r in rows]

    # The deal's month and week are Shanghai's unless the request says UTC.
    assert buckets() == [("2026-04-01", 300.0)]
    assert buckets(tz="UTC") == [("2026-03-01", 300.0)]
    assert buckets(interval="week") == [("2026-03-30", 300.0)]
    assert buckets(interval="week", tz="UTC") == [("2026-03-30", 300.0)]
    # 1 April (Shanghai) onwards: the deal is in; from 1 April UTC it is not.
    assert buckets(**{"from": "2026-04-01"}) == [("2026-04-01", 300.0)]
    assert buckets(tz="UTC", **{"from": "2026-04-01"}) == []


def _report(client: TestClient, name: str, **params: str) -> dict[str, Any]:
    """A report in the server's time zone (`report` asks for UTC unless told)."""
    response = client.get(f"/v1/reports/{name}", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_every_report_number_has_a_definition_in_both_languages(
    client: TestClient, leads: dict[str, UUID]
) -> None:
    assert client.get("/v1/reports/definitions").status_code == 401
    answer = client.get("/v1/reports/definitions", headers=ADMIN)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["time_zone"], body["currency"], body["languages"]) == (
        "Asia/Shanghai",
        "CNY",
        ["en", "zh-CN"],
    )
    defined = body["reports"]
    numbers = {
        "sources": ["count", "share", "total"],
        "funnel": ["captured", "count", "step_rate"],
        "campaign-roi": ["spend", "revenue", "roi", "overall"],
        "leaderboard": ["won_count", "won_amount", "rank"],
        "follow-up-efficiency": [
            "leads",
            "avg_first_response_seconds",
            "avg_followups_per_lead",
            "within_sla_share",
            "reclaimed",
        ],
        "kpis": list(report(client, "kpis")["rows"][0]),
        "experiments": ["n", "conversions", "rate", "enough_data", "lift", "p_value", "diff_ci"],
    }
    for name, keys in numbers.items():
        for key in keys:
            definition = defined[name][key]
            assert definition["en"].strip() and definition["zh-CN"].strip(), (name, key)
            # The Chinese is Chinese.
            assert any("\u4e00" <= ch <= "\u9fff" for ch in definition["zh-CN"]), (name, key)
    assert "first touch" in defined["campaign-roi"]["revenue"]["en"]
    assert "received" in defined["follow-up-efficiency"]["avg_first_response_seconds"]["en"]


def test_the_csv_outputs_carry_the_new_columns(client: TestClient, leads: dict[str, UUID]) -> None:
    def csv(name: str, **params: str) -> list[str]:
        response = client.get(
            f"/v1/reports/{name}", params={"format": "csv", "tz": "UTC", **params}, headers=ADMIN
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        return response.text.splitlines()

    experiments = csv("experiments")
    assert experiments[0] == (
        "experiment,variant,n,conversions,rate,rate_ci_low,rate_ci_high,enough_data,lift,"
        "p_value,diff_ci_low,diff_ci_high"
    )
    # Too few leads: no p-value and no interval (empty fields), "not enough data".
    b = experiments[2].split(",")
    assert (b[:4], b[7], b[9:]) == (["subject", "B", "3", "2"], "False", ["", "", ""])
    assert csv("campaign-roi", interval="month") == [
        "campaign_id,period_start,spend,revenue,roi",
        "spring,2026-03-01,330.0,1000.0,2.0303030303030303",
        "spring,2026-04-01,50.0,200.0,3.0",
        "summer,2026-04-01,100.0,500.0,4.0",
    ]
