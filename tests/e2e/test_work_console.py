"""Working a lead from the console in headless Chromium against `leadflow dev`, with an API
key (issue #19): log a WeChat follow-up with a note (the timeline shows it in time order,
worded, and the first-follow-up deadline goes), win a ¥1,200,000 deal (shown with its
currency and grouping), a refusal shown beside its form, and the worklist ("My leads")
with a quick "Log a call"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from chromium import start_chromium
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from test_console import Browser, api_client, post, waited_for

if TYPE_CHECKING:
    from conftest import LeadflowDev

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(300)]


def assigned(http: httpx.Client, name: str) -> str:
    """A lead from the website in the east: the default ruleset gives it to Li Wei."""
    answer = post(
        http,
        {
            "type": "lead.captured",
            "data": {
                "email": f"{name.lower().replace(' ', '.')}@example.com",
                "name": name,
                "company": "华东机械",
                "source": "website",
                "region": "east",
            },
        },
    )
    lead_id: str = answer["lead_id"]

    def with_deadlines() -> bool | None:
        lead = http.get(f"/v1/leads/{lead_id}").json()
        timers = {d["timer"] for d in lead.get("deadlines", [])}
        return True if lead["owner"] == "rep-east-1" and "first_follow_up" in timers else None

    waited_for(with_deadlines, f"{name} assigned, with deadlines")
    return lead_id


@pytest.fixture(scope="module")
def browser(shared_dev: LeadflowDev) -> Iterator[Browser]:
    driver = start_chromium()
    signed_in = Browser(driver, shared_dev.api_url)
    try:
        signed_in.open("/worklist")
        signed_in.sign_in(shared_dev.admin_key)
        yield signed_in
    finally:
        driver.quit()


@pytest.fixture
def page(browser: Browser) -> Iterator[Browser]:
    browser.console_errors()
    browser.expected_errors = []
    yield browser
    errors = browser.console_errors()
    assert not errors, f"errors in the browser console: {errors}"


def timeline(page: Browser) -> list[tuple[str, list[str]]]:
    """Each timeline row's event type and cells, read in one script: the page re-renders
    its timeline as events arrive, and two reads could see two different renders."""
    found: list[list[Any]] = page.js(
        "return [...document.querySelectorAll('#lead-timeline tbody tr')].map(r => ["
        " r.querySelector('[data-type]').dataset.type,"
        " [...r.cells].map(c => c.textContent.replace(/\\s+/g, ' ').trim())])"
    )
    return [(kind, cells) for kind, cells in found]


def deadline_timers(page: Browser) -> list[str]:
    found: list[str] = page.js(
        "return [...document.querySelectorAll('#lead-deadlines li[data-timer]')]"
        ".map(n => n.dataset.timer)"
    )
    return found


def submit(page: Browser, action: str) -> None:
    page.driver.find_element(By.CSS_SELECTOR, f"#act-{action} button[type=submit]").click()


def test_log_a_wechat_follow_up_then_win_the_deal(page: Browser, shared_dev: LeadflowDev) -> None:
    with api_client(shared_dev) as http:
        lead = assigned(http, "Gao Jie")
    page.open(f"/leads/{lead}")
    page.wait(lambda d: "first_follow_up" in deadline_timers(page), "the deadlines")
    reminder = page.text('#lead-deadlines li[data-timer="first_follow_up"]')
    assert reminder.startswith("reminder to Li Wei in "), reminder
    assert page.text('#lead-deadlines li[data-timer="reclaim"]').startswith("back to the pool in ")

    Select(page.driver.find_element(By.ID, "follow-up-kind")).select_by_visible_text("WeChat")
    page.driver.find_element(By.ID, "follow-up-note").send_keys("加了微信 约了下周拜访")
    submit(page, "follow-up")
    page.wait(
        lambda d: any(t == "lead.followed_up" for t, _ in timeline(page)), "the follow-up row"
    )
    [(_, row)] = [(t, r) for t, r in timeline(page) if t == "lead.followed_up"]
    assert row[3] == "WeChat by Li Wei — 加了微信 约了下周拜访"
    times = page.js(
        "return [...document.querySelectorAll('#lead-timeline time')].map(n => n.dateTime)"
    )
    assert times == sorted(times, key=datetime.fromisoformat)
    page.wait(lambda d: "first_follow_up" not in deadline_timers(page), "the reminder to go")
    assert "reclaim" not in deadline_timers(page)

    page.driver.find_element(By.ID, "win-amount").send_keys("1200000")
    assert (
        Select(page.driver.find_element(By.ID, "win-currency")).first_selected_option.text == "CNY"
    )
    submit(page, "win")
    page.wait(lambda d: any(t == "lead.won" for t, _ in timeline(page)), "the won row")
    [(_, won)] = [(t, r) for t, r in timeline(page) if t == "lead.won"]
    assert "¥1,200,000" in won[3], won
    page.wait(lambda d: "¥1,200,000" in page.text('#lead-facts dd[data-fact="wonAmount"]'), "won")
    # Won: nothing more to do, and no form is offered.
    page.wait(lambda d: "nothing more to do" in page.text("#lead-actions"), "the closed lead")


def test_a_refusal_is_shown_beside_its_form(page: Browser, shared_dev: LeadflowDev) -> None:
    with api_client(shared_dev) as http:
        lead = assigned(http, "Hu Lan")
        page.open(f"/leads/{lead}")
        page.wait(lambda d: page.driver.find_elements(By.ID, "act-qualify"), "the forms")
        # Meanwhile someone else takes the lead to SQL: MQL would now move it backward.
        post(http, {"type": "lead.qualified", "lead_id": lead, "data": {"stage": "SQL"}})
    page.expected_errors.append("status of 409")
    Select(page.driver.find_element(By.ID, "qualify-stage")).select_by_value("MQL")
    submit(page, "qualify")
    page.wait(lambda d: page.text("#act-qualify-result"), "the refusal")
    assert page.text("#act-qualify-result").startswith("Refused (stage_would_move_backward): ")


def test_the_worklist_lists_open_leads_with_their_deadline_and_logs_a_call(
    page: Browser, shared_dev: LeadflowDev
) -> None:
    with api_client(shared_dev) as http:
        lead = assigned(http, "Lu Xin")

        def projected() -> Any:
            items = http.get("/v1/worklist", params={"owner": "rep-east-1"}).json()["items"]
            return True if any(i["lead_id"] == lead for i in items) else None

        waited_for(projected, "Lu Xin on the worklist")
    page.open("/worklist?owner=rep-east-1")
    page.wait(lambda d: page.driver.find_elements(By.ID, f"call-{lead}"), "the worklist")
    rows = {r[0]: r for r in page.rows("#worklist-table")}
    assert rows["Lu Xin"][1] == "华东机械"
    assert rows["Lu Xin"][3].startswith("reminder to Li Wei in ")
    assert "Gao Jie" not in rows  # won: not open
    page.driver.find_element(By.ID, f"call-{lead}").click()
    page.wait(lambda d: page.text(f"#call-result-{lead}") == "Call logged.", "the call")
