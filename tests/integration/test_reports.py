"""The reports (GET /v1/reports/*) on a hand-built history, on real SQLite and PostgreSQL.

The history: six leads, their assignments, follow-ups, stages, nurture emails and an A/B
experiment, and three spend records, appended to the log the way the API and the
workflow append them; the projector then catches up and every report is checked against
numbers worked out by hand (below, next to each assertion).

- L1, Mon 2 Mar 09:00, web/form, campaign spring, variant A: rep-a (east); follow-ups
  after 2 h and a day; MQL, SQL, opportunity; won 1000 on 10 Mar.
- L2, Mon 2 Mar 10:00, web/form, spring, A: rep-b (east) lets the first_follow_up timer
  fire and it is reclaimed; reassigned to rep-a, who follows up after 1 h; MQL; lost.
- L3, Mon 2 Mar 11:00, ads/banner, summer, B: rep-c (west) follows up after 30 min; won
  500 on 2 Apr, straight from new.
- L4, Mon 2 Mar 12:00, web/chat, no campaign, B: nobody takes it (the pool).
- L5, Sun 5 Apr 09:00, fair/booth, spring, B: rep-a (east); won 200 on 6 Apr.
- L6, Thu 5 Mar 09:00, partner/no channel, no campaign or variant: rep-d (west) follows
  up after 1 h; won 500 on 20 Mar.

Spend: spring 310 over 1-31 March and 70 over 30 March - 5 April (10 a day each);
summer 100 on 2 April (no period).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, text

from api.app import create_app
from domain.events import parse_event
from domain.state import Decision
from leadflow.bootstrap import Store, projections
from leadflow.settings import Settings
from projections.projector import Projector
from projections.rebuild import REBUILD_SUFFIX, rebuild

ADMIN = {"Authorization": "Bearer lf_test_admin"}
MARCH = {"from": "2026-03-01", "to": "2026-04-01"}


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


class History:
    """Appends events to the log as the API (posted) and the workflow (decided) do."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def post(self, type_: str, when: datetime, lead: UUID | None = None, **data: Any) -> UUID:
        body: dict[str, Any] = {"type": type_, "data": data, "occurred_at": when.isoformat()}
        if lead is not None:
            body["lead_id"] = str(lead)
        event = parse_event(body, now=when, phone_region="CN")
        [result] = self.store.append([event], [None])
        return result.lead_id or UUID(int=0)

    def capture(self, name: str, when: datetime, **data: Any) -> UUID:
        return self.post("lead.captured", when, email=f"{name}@example.com", **data)

    def decide(
        self, lead: UUID, type_: str, when: datetime, rule_id: str | None = None, **data: Any
    ) -> str:
        """Append a decided event; returns its event id."""
        return self.store.event_log.record_once(
            lead,
            Decision(type_, data, rule_id),
            event_id=str(uuid4()),
            occurred_at=when,
            ruleset_version=3,
            caused_by="the-trigger",
        ).event_id

    def assign(self, lead: UUID, rep: str, team: str, when: datetime) -> None:
        self.decide(lead, "lead.assigned", when, "route", owner=rep, team=team, strategy="rep")


def build(h: History) -> dict[str, UUID]:
    minute = timedelta(minutes=1)
    l1 = h.capture("l1", at(3, 2, 9), source="web", channel="form", campaign_id="spring")
    l2 = h.capture("l2", at(3, 2, 10), source="web", channel="form", campaign_id="spring")
    l3 = h.capture("l3", at(3, 2, 11), source="ads", channel="banner", campaign_id="summer")
    l4 = h.capture("l4", at(3, 2, 12), source="web", channel="chat")
    l5 = h.capture("l5", at(4, 5, 9), source="fair", channel="booth", campaign_id="spring")
    l6 = h.capture("l6", at(3, 5, 9), source="partner")
    for lead, variant, captured in (
        (l1, "A", at(3, 2, 9)),
        (l2, "A", at(3, 2, 10)),
        (l3, "B", at(3, 2, 11)),
        (l4, "B", at(3, 2, 12)),
        (l5, "B", at(4, 5, 9)),
    ):
        h.decide(
            lead,
            "experiment.variant_assigned",
            captured,
            "ab",
            experiment="subject",
            variant=variant,
        )

    h.assign(l1, "rep-a", "east", at(3, 2, 9, 1))
    h.decide(
        l1, "nurture.email_sent", at(3, 2, 9, 2), message_id="m1", template="welcome", variant="A"
    )
    h.post("email.opened", at(3, 2, 10), l1, message_id="m1")
    h.post("lead.followed_up", at(3, 2, 11, 1), l1, rep_id="rep-a", kind="call")
    h.post("lead.followed_up", at(3, 3, 9), l1, rep_id="rep-a", kind="email")
    h.post("lead.qualified", at(3, 4), l1, stage="MQL")
    h.post("lead.qualified", at(3, 5), l1, stage="SQL")
    h.post("lead.opportunity_opened", at(3, 6), l1, amount="900")
    h.post("lead.won", at(3, 10, 12), l1, amount="1000", currency="CNY")

    h.assign(l2, "rep-b", "east", at(3, 2, 10, 1))
    h.decide(l2, "lead.timer_fired", at(3, 3, 10, 1), timer="first_follow_up")
    h.decide(
        l2,
        "lead.returned_to_pool",
        at(3, 4, 10, 1),
        "reclaim-48h",
        reason="no_follow_up_48h",
        previous_owner="rep-b",
    )
    h.decide(
        l2,
        "notification.queued",
        at(3, 4, 10, 1),
        "reclaim-48h",
        to="manager",
        template="lead-reclaimed",
        channel=None,
    )
    h.post("lead.reassigned", at(3, 5, 10), l2, rep_id="rep-a", reason="key account")
    h.post("lead.followed_up", at(3, 5, 11), l2, rep_id="rep-a", kind="call")
    h.post("lead.qualified", at(3, 6), l2, stage="MQL")
    h.post("lead.lost", at(3, 7), l2, reason="no budget")

    h.assign(l3, "rep-c", "west", at(3, 2, 11, 1))
    h.decide(
        l3, "nurture.email_sent", at(3, 2, 11, 2), message_id="m3", template="welcome", variant="B"
    )
    h.post("email.clicked", at(3, 2, 12), l3, message_id="m3", url="https://example.com/")
    h.post("lead.followed_up", at(3, 2, 11, 31), l3, rep_id="rep-c", kind="call")
    h.post("lead.won", at(4, 2, 10), l3, amount="500", currency="CNY")

    h.decide(l4, "lead.returned_to_pool", at(3, 2, 12), reason="unassigned", previous_owner=None)

    h.assign(l5, "rep-a", "east", at(4, 5, 9) + minute)
    h.post("lead.won", at(4, 6, 9), l5, amount="200", currency="CNY")

    h.assign(l6, "rep-d", "west", at(3, 5, 9, 1))
    h.post("lead.followed_up", at(3, 5, 10, 1), l6, rep_id="rep-d", kind="visit")
    h.post("lead.won", at(3, 20, 10), l6, amount="500", currency="CNY")

    spend = "campaign.spend_recorded"
    h.post(
        spend,
        at(3, 1),
        campaign_id="spring",
        amount="310",
        currency="CNY",
        period_start="2026-03-01",
        period_end="2026-03-31",
    )
    h.post(
        spend,
        at(3, 30),
        campaign_id="spring",
        amount="70",
        currency="CNY",
        period_start="2026-03-30",
        period_end="2026-04-05",
    )
    h.post(spend, at(4, 2, 8), campaign_id="summer", amount="100", currency="CNY")
    return {"l1": l1, "l2": l2, "l3": l3, "l4": l4, "l5": l5, "l6": l6}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def project(store: Store) -> None:
    Projector(store.event_log, store.engine, projections()).catch_up()


@pytest.fixture
def leads(client: TestClient) -> dict[str, UUID]:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    built = build(History(store))
    project(store)
    return built


def report(client: TestClient, name: str, **params: str) -> dict[str, Any]:
    """The report `name`; the history's days are UTC days unless `tz` says otherwise."""
    params.setdefault("tz", "UTC")
    response = client.get(f"/v1/reports/{name}", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["report"] == name
    return body


def test_sources_count_and_share_by_source_and_channel(
    client: TestClient, leads: dict[str, UUID]
) -> None:
    body = report(client, "sources")
    assert (body["from"], body["to"], body["total"]) == (None, None, 6)
    assert body["rows"] == [
        {"source": "web", "channel": "form", "count": 2, "share": pytest.approx(2 / 6)},
        {"source": "ads", "channel": "banner", "count": 1, "share": pytest.approx(1 / 6)},
        {"source": "fair", "channel": "booth", "count": 1, "share": pytest.approx(1 / 6)},
        {"source": "partner", "channel": None, "count": 1, "share": pytest.approx(1 / 6)},
        {"source": "web", "channel": "chat", "count": 1, "share": pytest.approx(1 / 6)},
    ]
    assert body["by_source"] == [
        {"source": "web", "count": 3, "share": 0.5},
        {"source": "ads", "count": 1, "share": pytest.approx(1 / 6)},
        {"source": "fair", "count": 1, "share": pytest.approx(1 / 6)},
        {"source": "partner", "count": 1, "share": pytest.approx(1 / 6)},
    ]
    # March leaves out L5 (captured 5 April).
    march = report(client, "sources", **MARCH)
    assert (march["from"], march["to"]) == (
        "2026-03-01T00:00:00+00:00",
        "2026-04-01T00:00:00+00:00",
    )
    assert march["total"] == 5
    assert [(r["source"], r["channel"], r["count"], r["share"]) for r in march["rows"]] == [
        ("web", "form", 2, 0.4),
        ("ads", "banner", 1, 0.2),
        ("partner", None, 1, 0.2),
        ("web", "chat", 1, 0.2),
    ]
    # Capture time 2 March 10:00 is where the window starts: L2 in, L1 out.
    from_l2 = report(client, "sources", **{"from": "2026-03-02T18:00:00+08:00", "to": "2026-03-03"})
    assert from_l2["total"] == 3


def test_sources_as_csv_are_the_rows_alone(client: TestClient, leads: dict[str, UUID]) -> None:
    response = client.get("/v1/reports/sources", params={**MARCH, "format": "csv"}, headers=ADMIN)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="sources.csv"'
    assert response.text == (
        "source,channel,count,share\n"
        "web,form,2,0.4\n"
        "ads,banner,1,0.2\n"
        "partner,,1,0.2\n"
        "web,chat,1,0.2\n"
    )
    empty = client.get(
        "/v1/reports/leaderboard", params={"to": "2026-01-01", "format": "csv"}, headers=ADMIN
    )
    assert empty.text == "level,id,team,won_count,won_amount,rank\n"


def test_funnel_counts_each_lead_in_every_stage_it_passed(
    client: TestClient, leads: dict[str, UUID]
) -> None:
    # MQL: L1, L2 (lost after MQL), L3, L5, L6 (won straight from new); SQL on: all but L2.
    body = report(client, "funnel")
    assert body["captured"] == 6
    assert body["rows"] == [
        {"stage": "MQL", "count": 5, "step_rate": pytest.approx(5 / 6)},
        {"stage": "SQL", "count": 4, "step_rate": 0.8},
        {"stage": "opportunity", "count": 4, "step_rate": 1.0},
        {"stage": "won", "count": 4, "step_rate": 1.0},
    ]
    march = report(client, "funnel", **MARCH)
    assert march["captured"] == 5
    assert [(r["count"], r["step_rate"]) for r in march["rows"]] == [
        (4, 0.8),
        (3, 0.75),
        (3, 1.0),
        (3, 1.0),
    ]
    csv = client.get("/v1/reports/funnel", params={**MARCH, "format": "csv"}, headers=ADMIN)
    assert csv.text.splitlines() == [
        "stage,count,step_rate",
        "MQL,4,0.8",
        "SQL,3,0.75",
        "opportunity,3,1.0",
        "won,3,1.0",
    ]


def test_campaign_roi_per_month_and_per_week(client: TestClient, leads: dict[str, UUID]) -> None:
    body = report(client, "campaign-roi")
    # spring: March 310 + 2 days of the second record (20); April its other 5 days (50).
    # Revenue by the month the deal was won: L1 (March), L5 (April), L3 (April, summer).
    assert body["rows"] == [
        {
            "campaign_id": "spring",
            "period_start": "2026-03-01",
            "spend": 330.0,
            "revenue": 1000.0,
            "roi": pytest.approx(670 / 330),
        },
        {
            "campaign_id": "spring",
            "period_start": "2026-04-01",
            "spend": 50.0,
            "revenue": 200.0,
            "roi": 3.0,
        },
        {
            "campaign_id": "summer",
            "period_start": "2026-04-01",
            "spend": 100.0,
            "revenue": 500.0,
            "roi": 4.0,
        },
    ]
    assert body["totals"] == [
        {
            "campaign_id": "spring",
            "spend": 380.0,
            "revenue": 1200.0,
            "roi": pytest.approx(820 / 380),
        },
        {"campaign_id": "summer", "spend": 100.0, "revenue": 500.0, "roi": 4.0},
    ]
    weekly = report(client, "campaign-roi", interval="week", **MARCH)
    # 1 March is a Sunday: its 10 belong to the week of Monday 23 February. The last week
    # has 30 and 31 March of both records: 40.
    assert [(r["period_start"], r["spend"], r["revenue"], r["roi"]) for r in weekly["rows"]] == [
        ("2026-02-23", 10.0, 0.0, -1.0),
        ("2026-03-02", 70.0, 0.0, -1.0),
        ("2026-03-09", 70.0, 1000.0, pytest.approx(930 / 70)),
        ("2026-03-16", 70.0, 0.0, -1.0),
        ("2026-03-23", 70.0, 0.0, -1.0),
        ("2026-03-30", 40.0, 0.0, -1.0),
    ]
    assert {r["campaign_id"] for r in weekly["rows"]} == {"spring"}
    assert weekly["totals"] == [
        {
            "campaign_id": "spring",
            "spend": 330.0,
            "revenue": 1000.0,
            "roi": pytest.approx(670 / 330),
        }
    ]


def test_leaderboard_ranks_reps_then_teams_by_amount_won(
    client: TestClient, leads: dict[str, UUID]
) -> None:
    body = report(client, "leaderboard")
    assert body["rows"] == [
        {
            "level": "rep",
            "id": "rep-a",
            "team": "east",
            "won_count": 2,
            "won_amount": 1200.0,
            "rank": 1,
        },
        {
            "level": "rep",
            "id": "rep-c",
            "team": "west",
            "won_count": 1,
            "won_amount": 500.0,
            "rank": 2,
        },
        {
            "level": "rep",
            "id": "rep-d",
            "team": "west",
            "won_count": 1,
            "won_amount": 500.0,
            "rank": 2,
        },
        {
            "level": "team",
            "id": "east",
            "team": "east",
            "won_count": 2,
            "won_amount": 1200.0,
            "rank": 1,
        },
        {
            "level": "team",
            "id": "west",
            "team": "west",
            "won_count": 2,
            "won_amount": 1000.0,
            "rank": 2,
        },
    ]
    # Deals are selected by the time they were won: in March, L1 (rep-a) and L6 (rep-d).
    march = report(client, "leaderboard", **MARCH)
    assert [(r["level"], r["id"], r["won_amount"], r["rank"]) for r in march["rows"]] == [
        ("rep", "rep-a", 1000.0, 1),
        ("rep", "rep-d", 500.0, 2),
        ("team", "east", 1000.0, 1),
        ("team", "west", 500.0, 2),
    ]


def test_follow_up_efficiency_per_rep_and_team(client: TestClient, leads: dict[str, UUID]) -> None:
    body = report(client, "follow-up-efficiency")
    columns = (
        "leads",
        "avg_first_response_seconds",
        "avg_followups_per_lead",
        "within_sla_share",
        "reclaimed",
    )
    rows = {(r["level"], r["id"]): tuple(r[c] for c in columns) for r in body["rows"]}
    assert [(r["level"], r["id"], r["team"]) for r in body["rows"]] == [
        ("rep", "rep-a", "east"),
        ("rep", "rep-b", "east"),
        ("rep", "rep-c", "west"),
        ("rep", "rep-d", "west"),
        ("team", "east", "east"),
        ("team", "west", "west"),
    ]
    # rep-a holds L1 (answered 2 h after leadflow received the capture), L2 after the
    # reassignment and L5 (never answered): 3 follow-ups over 3 leads, 2 of 3 within the
    # SLA. The reassignment was posted with a past `occurred_at` and is received now: its
    # follow-up, an hour "later", happened before leadflow heard of it, and counts as 0 s.
    assert rows[("rep", "rep-a")] == (3, 3600.0, 1.0, pytest.approx(2 / 3), 0)
    # rep-b let L2's first_follow_up timer fire and lost it to the pool.
    assert rows[("rep", "rep-b")] == (1, None, 0.0, 0.0, 1)
    assert rows[("rep", "rep-c")] == (1, 1800.0, 1.0, 1.0, 0)
    assert rows[("rep", "rep-d")] == (1, 3600.0, 1.0, 1.0, 0)
    # east: L1, L2 (twice: rep-b, then rep-a) and L5; 2 of its 4 assignments within SLA.
    assert rows[("team", "east")] == (3, 3600.0, 1.0, 0.5, 1)
    assert rows[("team", "west")] == (2, 2700.0, 1.0, 1.0, 0)
    march = report(client, "follow-up-efficiency", **MARCH)
    rows = {(r["level"], r["id"]): tuple(r[c] for c in columns) for r in march["rows"]}
    assert rows[("rep", "rep-a")] == (2, 3600.0, 1.5, 1.0, 0)
    assert rows[("team", "east")] == (2, 3600.0, 1.5, pytest.approx(2 / 3), 1)


def test_kpis(client: TestClient, leads: dict[str, UUID]) -> None:
    [row] = report(client, "kpis")["rows"]
    # Spend 310 + 70 + 100; won L1 1000, L3 500, L5 200, L6 500; MQL 5 → SQL 4. Marketing
    # ROI counts the deals whose first touch was a campaign (all but L6): 1700.
    assert row == {
        "spend": 480.0,
        "new_customers": 4,
        "revenue": 2200.0,
        "campaign_revenue": 1700.0,
        "cac": 120.0,
        "ltv": 550.0,
        "ltv_to_cac": pytest.approx(550 / 120),
        "mql_to_sql_rate": 0.8,
        "marketing_roi": pytest.approx(1220 / 480),
    }
    [march] = report(client, "kpis", **MARCH)["rows"]
    # March: spend 330; won L1 and L6 (1500, of which L1's 1000 from a campaign); leads
    # captured in March: MQL 4 → SQL 3.
    assert march == {
        "spend": 330.0,
        "new_customers": 2,
        "revenue": 1500.0,
        "campaign_revenue": 1000.0,
        "cac": 165.0,
        "ltv": 750.0,
        "ltv_to_cac": pytest.approx(750 / 165),
        "mql_to_sql_rate": 0.75,
        "marketing_roi": pytest.approx(670 / 330),
    }
    [nothing] = report(client, "kpis", **{"to": "2026-01-01"})["rows"]
    assert (nothing["spend"], nothing["cac"], nothing["ltv_to_cac"], nothing["marketing_roi"]) == (
        0.0,
        None,
        None,
        None,
    )


def test_experiments_compare_each_variant_with_the_control(
    client: TestClient, leads: dict[str, UUID]
) -> None:
    # Won: A = L1, L2 → 1 of 2; B = L3, L4, L5 → 2 of 3. Far below the default minimum
    # sample (30): no p-value, no interval, only what was seen.
    default = report(client, "experiments")
    assert default["min_sample"] == 30
    assert [(r["enough_data"], r["p_value"], r["diff_ci_low"]) for r in default["rows"]] == [
        (False, None, None),
        (False, None, None),
    ]
    assert [r["rate"] for r in default["rows"]] == [0.5, pytest.approx(2 / 3)]
    body = report(client, "experiments", min_sample="2")
    assert body["metric"] == "won"
    a, b = body["rows"]
    assert a == {
        "experiment": "subject",
        "variant": "A",
        "n": 2,
        "conversions": 1,
        "rate": 0.5,
        "rate_ci_low": pytest.approx(0.094531, abs=1e-6),
        "rate_ci_high": pytest.approx(0.905469, abs=1e-6),
        "enough_data": True,
        "lift": None,
        "p_value": None,
        "diff_ci_low": None,
        "diff_ci_high": None,
    }
    # Pooled 3/5: se = sqrt(0.24 x (1/2 + 1/3)) = 0.4472, z = 0.3727, p = 0.7094.
    assert b == {
        "experiment": "subject",
        "variant": "B",
        "n": 3,
        "conversions": 2,
        "rate": pytest.approx(2 / 3),
        "rate_ci_low": pytest.approx(0.207660, abs=1e-6),
        "rate_ci_high": pytest.approx(0.938508, abs=1e-6),
        "enough_data": True,
        "lift": pytest.approx(1 / 3),
        "p_value": pytest.approx(0.709388, abs=1e-6),
        # Newcombe's hybrid score interval (a Wald interval here went past 1: 1.041).
        "diff_ci_low": pytest.approx(-0.445781, abs=1e-6),
        "diff_ci_high": pytest.approx(0.654829, abs=1e-6),
    }

    def conversions(metric: str, **params: str) -> list[tuple[str, int, int]]:
        rows = report(client, "experiments", metric=metric, **params)["rows"]
        return [(r["variant"], r["n"], r["conversions"]) for r in rows]

    assert conversions("followed_up") == [("A", 2, 2), ("B", 3, 1)]
    assert conversions("MQL") == [("A", 2, 2), ("B", 3, 2)]
    assert conversions("SQL") == [("A", 2, 1), ("B", 3, 2)]
    assert conversions("email_opened") == [("A", 2, 1), ("B", 3, 0)]
    assert conversions("email_clicked") == [("A", 2, 0), ("B", 3, 1)]
    assert conversions("won", **MARCH) == [("A", 2, 1), ("B", 2, 1)]


@pytest.mark.parametrize(
    ("name", "params", "path"),
    [
        ("sources", {"from": "yesterday"}, "/from"),
        ("funnel", {"from": "2026-03-01T00:00:00"}, "/from"),
        ("kpis", {"to": "2026-13-01"}, "/to"),
        ("leaderboard", {"from": "2026-03-02", "to": "2026-03-01"}, "/to"),
        ("sources", {"format": "xml"}, "/format"),
        ("campaign-roi", {"interval": "day"}, "/interval"),
        ("experiments", {"metric": "revenue"}, "/metric"),
        # Past datetime's range once converted to UTC (these were 500s).
        ("experiments", {"from": "0001-01-01T00:00:00+01:00"}, "/from"),
        ("kpis", {"to": "9999-12-31T23:59:59-05:00"}, "/to"),
        ("campaign-roi", {"to": "0001-01-01"}, "/to"),
        ("funnel", {"tz": "Mars/Olympus"}, "/tz"),
        ("kpis", {"tz": "../../etc/passwd"}, "/tz"),
        ("experiments", {"min_sample": "0"}, "/min_sample"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(
    client: TestClient, name: str, params: dict[str, str], path: str
) -> None:
    response = client.get(f"/v1/reports/{name}", params=params, headers=ADMIN)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert path in [detail["path"] for detail in error["details"]]


def test_reports_need_a_read_key(client: TestClient) -> None:
    assert client.get("/v1/reports/kpis").status_code == 401
    empty = report(client, "funnel")
    assert empty["captured"] == 0
    assert [r["step_rate"] for r in empty["rows"]] == [None] * 4


def test_a_lead_is_read_from_the_projection_or_the_log_before_the_projector_sees_it(
    client: TestClient,
) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    h = History(store)
    lead = h.capture("new", at(3, 2, 9), source="web")
    from_log = client.get(f"/v1/leads/{lead}", headers=ADMIN)
    # Not projected yet: folded from the log, not a 404.
    assert from_log.status_code == 200
    assert (from_log.json()["lead_id"], from_log.json()["source"]) == (str(lead), "web")
    project(store)
    assert client.get(f"/v1/leads/{lead}", headers=ADMIN).json() == from_log.json()
    h.post("lead.followed_up", at(3, 2, 10), lead, rep_id="rep-a")
    # Known to the projection: its row answers until the projector catches up.
    assert client.get(f"/v1/leads/{lead}", headers=ADMIN).json()["followups_count"] == 0
    project(store)
    assert client.get(f"/v1/leads/{lead}", headers=ADMIN).json()["followups_count"] == 1
    assert client.get(f"/v1/leads/{uuid4()}", headers=ADMIN).status_code == 404


def test_the_read_model_tables_hold_what_analysts_query(
    client: TestClient, leads: dict[str, UUID]
) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    l1, l2 = str(leads["l1"]), str(leads["l2"])
    with store.engine.connect() as conn:

        def rows(sql: str, **params: Any) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in conn.execute(text(sql), params)]

        assert rows(
            "SELECT owner, team, how, ended_how, end_reason, ended_by_rule, followups_count,"
            " sla_missed_at IS NOT NULL FROM assignments WHERE lead_id = :l ORDER BY sequence",
            l=l2,
        ) == [
            ("rep-b", "east", "assigned", "reclaimed", "no_follow_up_48h", "reclaim-48h", 0, True),
            ("rep-a", "east", "reassigned", None, None, None, 1, False),
        ]
        assert rows(
            "SELECT rep_id, kind, is_first, seconds_since_assignment FROM follow_ups"
            " WHERE lead_id = :l ORDER BY followed_up_at",
            l=l1,
        ) == [("rep-a", "call", True, 7200.0), ("rep-a", "email", False, 86340.0)]
        assert rows(
            "SELECT stage, from_stage, amount FROM lead_stages WHERE lead_id = :l"
            " ORDER BY entered_at",
            l=l1,
        ) == [
            ("new", None, None),
            ("MQL", "new", None),
            ("SQL", "MQL", None),
            ("opportunity", "SQL", 900.0),
            ("won", "opportunity", 1000.0),
        ]
        assert rows(
            "SELECT lead_id, template, variant, opened_at IS NOT NULL, clicked_at IS NOT NULL"
            " FROM nurture_messages ORDER BY message_id"
        ) == [
            (l1, "welcome", "A", True, False),
            (str(leads["l3"]), "welcome", "B", False, True),
        ]
        assert rows(
            'SELECT "to", template, rule_id, status, deliveries FROM notifications'
            " WHERE lead_id = :l",
            l=l2,
        ) == [("manager", "lead-reclaimed", "reclaim-48h", "queued", 0)]
        assert rows(
            "SELECT campaign_id, amount, CAST(period_start AS TEXT), CAST(period_end AS TEXT)"
            " FROM campaign_spend ORDER BY position"
        ) == [
            ("spring", 310.0, "2026-03-01", "2026-03-31"),
            ("spring", 70.0, "2026-03-30", "2026-04-05"),
            ("summer", 100.0, "2026-04-02", "2026-04-02"),
        ]
        [queued] = rows("SELECT notification_id FROM notifications WHERE lead_id = :l", l=l2)
    # Delivered later, in another page: the row is updated.
    sent = {"to": "manager", "channel": "email", "template": "lead-reclaimed", "status": "sent"}
    History(store).decide(
        leads["l2"],
        "notification.sent",
        at(3, 4, 10, 2),
        "reclaim-48h",
        notification_id=queued[0],
        recipient="m@example.com",
        **sent,
    )
    project(store)
    with store.engine.connect() as conn:
        assert [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT status, recipient, deliveries, sent_at IS NOT NULL"
                    " FROM notifications WHERE lead_id = :l"
                ),
                {"l": l2},
            )
        ] == [("sent", "m@example.com", 1, True)]


def test_every_report_query_reads_through_an_index(
    client: TestClient, leads: dict[str, UUID], settings: Settings
) -> None:
    if settings.database_url is not None:
        pytest.skip("the plans are read with SQLite's EXPLAIN QUERY PLAN")
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    statements: list[tuple[str, Any]] = []

    def remember(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", remember)
    try:
        for name, params in [
            ("sources", {}),
            ("funnel", {}),
            ("campaign-roi", {"interval": "week"}),
            ("leaderboard", {}),
            ("follow-up-efficiency", {}),
            ("kpis", {}),
            ("experiments", {"metric": "won"}),
            ("experiments", {"metric": "email_clicked"}),
        ]:
            report(client, name, **params, **MARCH)
    finally:
        event.remove(store.engine, "before_cursor_execute", remember)
    report_queries = [(s, p) for s, p in statements if "api_keys" not in s]
    assert len(report_queries) >= 12
    with store.engine.connect() as conn:
        for statement, params in report_queries:
            plan = [
                row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
            ]
            assert not [step for step in plan if step.startswith("SCAN")], (statement, plan)
            assert "leadflow_events" not in statement


def test_a_rebuild_of_every_read_model_answers_the_same_reports(
    client: TestClient, leads: dict[str, UUID]
) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    names = ["sources", "funnel", "campaign-roi", "leaderboard", "follow-up-efficiency", "kpis"]
    before = {name: report(client, name) for name in names}
    tables = [table for p in projections() for table in p.metadata.sorted_tables]

    def rows() -> dict[str, list[dict[str, Any]]]:
        with store.engine.connect() as conn:
            return {
                t.name: sorted((dict(r) for r in conn.execute(select(t)).mappings()), key=repr)
                for t in tables
            }

    projected = rows()
    for live, building in zip(projections(), projections(REBUILD_SUFFIX), strict=True):
        rebuild(store.event_log, store.engine, live, building, page_size=7)
    assert rows() == projected
    assert {name: report(client, name) for name in names} == before
