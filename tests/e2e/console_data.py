"""Realistic data for the console's browser tests, loaded through the public API: about
sixty leads with Chinese names and companies from several sources and regions, moved
through the funnel (qualified, opportunities, one won deal of ¥1,200,000, a few lost), so a
page shows what a Chinese sales team would see rather than a near-empty table.

`seed_realistic(http)` works on a fresh `leadflow dev` (the default directory: east reps
take leads, west reps are given no capacity so west and north leads wait in the pool) and
returns once every lead is placed and the reports show the won deal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from support import eventually

SEED_SECONDS = 120.0
WON_AMOUNT = Decimal("1200000")

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超"]
COMPANIES = [
    "上海华信科技有限公司",
    "北京云启数据有限公司",
    "深圳前海智联实业有限公司",
    "杭州西湖电子商务有限公司",
    "广州珠江机械制造有限公司",
    "苏州工业园区新材料有限公司",
    "成都天府软件股份有限公司",
    "南京金陵医疗器械有限公司",
    "武汉光谷通信技术有限公司",
    "天津滨海物流有限公司",
]
SOURCES = ["website", "ads", "expo", "referral", "wechat"]
REGIONS = ["east", "east", "east", "west", "north"]  # most leads in the east, which takes them
LEADS = 60


@dataclass
class RealisticData:
    """Lead ids by their place in the seed; the won deal's and an owned lead's ids."""

    leads: list[str] = field(default_factory=list)
    won: str = ""
    owned: str = ""


def _post(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post("/v1/events", json=body)
    assert response.status_code == 202, f"{body['type']} refused: {response.text}"
    answer: dict[str, Any] = response.json()
    return answer


def person(n: int) -> dict[str, Any]:
    """The `n`th lead's capture: a Chinese name and company, a source and a region."""
    name = SURNAMES[n % len(SURNAMES)] + GIVEN[(n * 7) % len(GIVEN)]
    return {
        "name": name,
        "company": COMPANIES[n % len(COMPANIES)],
        "email": f"lead{n:02d}@example.cn",
        "phone": f"+86 138 {1000 + n:04d} {5000 + n:04d}",
        "source": SOURCES[n % len(SOURCES)],
        "region": REGIONS[(n // len(SOURCES)) % len(REGIONS)],
    }


def seed_realistic(http: httpx.Client) -> RealisticData:
    """Loads the leads and their history; returns once the console would show all of it."""
    directory = http.get("/v1/directory").json()
    for rep in directory["reps"]:
        if rep["team"] == "west":
            rep["capacity"] = 0
    assert http.put("/v1/directory", json=directory).status_code == 200

    data = RealisticData()
    for n in range(LEADS):
        data.leads.append(_post(http, {"type": "lead.captured", "data": person(n)})["lead_id"])

    def placed() -> list[dict[str, Any]] | None:
        leads = [http.get(f"/v1/leads/{lead_id}").json() for lead_id in data.leads]
        return leads if all(lead.get("owner") or lead.get("in_pool") for lead in leads) else None

    leads = eventually(placed, "every seeded lead assigned or in the pool", SEED_SECONDS, 1.0)
    owned = [lead["lead_id"] for lead in leads if lead.get("owner")]
    assert len(owned) >= 20, f"only {len(owned)} seeded leads were assigned"
    data.owned, data.won = owned[0], owned[1]

    # Through the funnel: every owned lead followed up; most qualified, some to SQL; two
    # opportunities, one of them won; the last three lost.
    owners = {lead["lead_id"]: lead["owner"] for lead in leads if lead.get("owner")}
    for index, lead_id in enumerate(owned):
        _post(
            http,
            {"type": "lead.followed_up", "lead_id": lead_id, "data": {"rep_id": owners[lead_id]}},
        )
        if index < 3 or index % 4 == 0:
            continue
        for stage in ("MQL", "SQL")[: 1 + index % 2]:
            _post(http, {"type": "lead.qualified", "lead_id": lead_id, "data": {"stage": stage}})
    for lead_id, amount in ((data.won, WON_AMOUNT), (owned[2], Decimal("350000"))):
        for stage in ("MQL", "SQL"):
            _post(http, {"type": "lead.qualified", "lead_id": lead_id, "data": {"stage": stage}})
        _post(
            http,
            {
                "type": "lead.opportunity_opened",
                "lead_id": lead_id,
                "data": {"amount": str(amount)},
            },
        )
    _post(
        http,
        {
            "type": "lead.won",
            "lead_id": data.won,
            "data": {"amount": str(WON_AMOUNT), "currency": "CNY"},
        },
    )
    for lead_id in owned[-3:]:
        _post(http, {"type": "lead.lost", "lead_id": lead_id, "data": {"reason": "预算不足"}})

    def won_shown() -> bool | None:
        funnel = http.get("/v1/reports/funnel").json()
        won = {row["stage"]: row["count"] for row in funnel["rows"]}.get("won")
        return True if won == 1 else None

    eventually(won_shown, "the reports showing the won deal", SEED_SECONDS, 1.0)
    return data
