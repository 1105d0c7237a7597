"""A director's dashboard in Chinese, in headless Chromium whose browser language is zh-CN,
against `leadflow dev`: amounts in yuan with grouping (large ones in 万 on the tiles), each
figure's Chinese definition as a tooltip on focus and in the footnote list, a back-filled
follow-up shown as an answer at once (never a negative time), and the Marketing ROI tile
equal to the campaign totals' overall figure on the same screen.

The history: two leads assigned to rep-east-1 and won (¥1,200,000 from the spring campaign,
¥300,000 without a campaign), a follow-up posted with a time before leadflow received the
lead, and ¥200,000 of spring spend today.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from chromium import Browser, start_chromium
from selenium.webdriver.common.by import By
from test_console import ARTIFACTS, api_client, post, waited_for

if TYPE_CHECKING:
    from conftest import LeadflowDev

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(300)]


def seed(http: httpx.Client) -> None:
    leads = {}
    for name, campaign in (("wang", "spring"), ("li", None)):
        data = {"email": f"{name}@example.com", "name": name.title(), "source": "website"}
        data["region"] = "east"
        if campaign:
            data["campaign_id"] = campaign
        leads[name] = post(http, {"type": "lead.captured", "data": data})["lead_id"]

    def assigned(lead_id: str) -> bool | None:
        return True if http.get(f"/v1/leads/{lead_id}").json()["owner"] else None

    for lead_id in leads.values():
        waited_for(lambda lead_id=lead_id: assigned(lead_id), "the lead assigned")
    # A call logged with the time it happened in the CRM, two days before leadflow heard of
    # the lead: before the fix, a negative response time.
    called = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    post(
        http,
        {
            "type": "lead.followed_up",
            "lead_id": leads["wang"],
            "occurred_at": called,
            "data": {"rep_id": "rep-east-1", "kind": "call"},
        },
    )
    for name, amount in (("wang", 1_200_000), ("li", 300_000)):
        post(
            http,
            {
                "type": "lead.won",
                "lead_id": leads[name],
                "data": {"amount": amount, "currency": "CNY"},
            },
        )
    post(
        http,
        {
            "type": "campaign.spend_recorded",
            "data": {"campaign_id": "spring", "amount": 200_000, "currency": "CNY"},
        },
    )

    def caught_up() -> bool | None:
        [kpis] = http.get("/v1/reports/kpis").json()["rows"]
        efficiency = http.get("/v1/reports/follow-up-efficiency").json()["rows"]
        answered = [r for r in efficiency if r["avg_first_response_seconds"] is not None]
        return True if kpis["new_customers"] == 2 and kpis["spend"] and answered else None

    waited_for(caught_up, "the reports showing the history")


@pytest.fixture(scope="module")
def browser(shared_dev: LeadflowDev) -> Iterator[Browser]:
    with api_client(shared_dev) as http:
        seed(http)
    driver = start_chromium(language="zh-CN")
    browser = Browser(driver, shared_dev.api_url)
    try:
        browser.open("/dashboard")
        browser.sign_in(shared_dev.admin_key)
        yield browser
    finally:
        driver.quit()


def test_the_dashboard_in_chinese_with_yuan_definitions_and_one_roi(browser: Browser) -> None:
    assert browser.js("return navigator.language") == "zh-CN"
    browser.wait(
        lambda d: "更新于" in browser.text("#updated") and browser.rows("#follow-up-efficiency"),
        "the dashboard in Chinese",
    )
    assert browser.js("return document.documentElement.lang") == "zh-CN"
    assert browser.text("#main h1") == "仪表盘"

    tiles = dict(
        zip(
            browser.js(
                "return [...document.querySelectorAll('#kpis dt .term')]"
                ".map(n => n.firstChild.textContent)"
            ),
            browser.js("return [...document.querySelectorAll('#kpis dd')].map(n => n.textContent)"),
            strict=True,
        )
    )
    # Spend ¥200,000 over 2 customers; revenue ¥1,500,000 over 2; ROI from the campaign's
    # ¥1,200,000 alone: (1,200,000 - 200,000) / 200,000.
    assert tiles["获客成本"] == "¥10万"
    assert tiles["客户价值"] == "¥75万"
    assert tiles["营销投资回报率"] == "5"

    # The campaign totals' overall row says the same, on the same screen.
    *per_campaign, overall = browser.rows("#campaign-roi table:last-of-type")
    assert per_campaign == [["spring", "¥200,000.00", "¥1,200,000.00", "5"]]
    assert overall[0].startswith("全部活动")
    assert overall[1:] == ["¥200,000.00", "¥1,200,000.00", tiles["营销投资回报率"]]

    assert browser.rows("#leaderboard")[0][-1] == "¥1,500,000.00"

    # The back-filled call answered the lead at once: no negative time anywhere.
    efficiency = {(r[0], r[1]): r for r in browser.rows("#follow-up-efficiency")}
    response = efficiency[("销售", "rep-east-1")][4]
    assert response == "0秒", response
    assert not [r for r in efficiency.values() if r[4].startswith("-")]
    # On a phone each cell shows its column's name (not the name's definition too).
    label = browser.js(
        "return document.querySelector('#follow-up-efficiency tbody td:nth-child(5)').dataset.label"
    )
    assert label == "平均首次响应"

    # Each figure's definition, in Chinese: a tooltip on focus, and the footnote list.
    roi_tile = browser.driver.find_element(By.CSS_SELECTOR, "[data-kpi=marketing_roi] .define")
    tip = browser.driver.find_element(By.CSS_SELECTOR, "[data-kpi=marketing_roi] .tip")
    assert not tip.is_displayed()
    browser.tab_to("[data-kpi=marketing_roi] .define")
    assert browser.active() == roi_tile
    assert tip.is_displayed()
    assert "活动投资回报报表的合计值" in tip.text
    # The last tile's tooltip opens towards the page, not past its edge.
    browser.wait(
        lambda d: browser.js(
            "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        ),
        "the tooltip inside the page",
    )
    described = roi_tile.get_attribute("aria-describedby")
    assert described == tip.get_attribute("id")
    footnotes = browser.text("#definitions-list")
    assert "首次接触" in footnotes and "绝不为负" in footnotes
    # Grouped under each report's title, so the same word ("线索") is never ambiguous.
    headings = browser.js(
        "return [...document.querySelectorAll('#definitions-list h3')].map(h => h.textContent)"
    )
    assert headings[:2] == ["关键指标", "线索来源"] and "跟进效率" in headings
    assert "Asia/Shanghai" in browser.text("#definitions-intro")
    assert not browser.js(
        "return [...document.querySelectorAll('#main *')].some(n => n.children.length === 0"
        " && /\\b(Spend|Revenue|Leads|Rank)\\b/.test(n.textContent))"
    ), "English words left on the Chinese page"

    # The picture README shows (docs/dashboard-zh-CN.png), the whole page at 1400 px.
    browser.js("document.activeElement.blur()")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height, inner, outer = browser.js(
        "return [document.documentElement.scrollHeight, innerHeight, outerHeight]"
    )
    browser.driver.set_window_size(1400, height + outer - inner)
    time.sleep(0.5)  # let Chart.js redraw at the new size before the picture
    shot = ARTIFACTS / "dashboard-zh-CN.png"
    assert browser.driver.save_screenshot(str(shot))
    if os.environ.get("LEADFLOW_UPDATE_SCREENSHOT"):
        shutil.copyfile(shot, Path(__file__).parents[2] / "docs" / "dashboard-zh-CN.png")
