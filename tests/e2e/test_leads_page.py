"""The console's /leads (issue #19, "find") in headless Chromium against `leadflow dev`, with
Chinese leads: search (the URL follows), filter by an owner's display name, sort by clicking
a header, save a view and pick it again after a reload, and export the view as CSV."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from chromium import start_chromium
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

if TYPE_CHECKING:
    from conftest import LeadflowDev
    from selenium import webdriver

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(300)]

WAIT_SECONDS = 30.0
# name, company, the rep who owns it
DIRECTORY = {
    "teams": [
        {"id": "east", "name": "华东", "manager": "mgr", "director": "dir"},
        {"id": "west", "name": "华西", "manager": "mgr", "director": "dir"},
    ],
    "reps": [
        {
            "id": "rep-east-1",
            "name": "李伟",
            "email": "li@example.com",
            "team": "east",
            "capacity": 30,
        },
        {
            "id": "rep-west-1",
            "name": "刘洋",
            "email": "liu@example.com",
            "team": "west",
            "capacity": 30,
        },
    ],
    "people": [
        {"id": "mgr", "name": "周经理", "email": "zhou@example.com"},
        {"id": "dir", "name": "吴总监", "email": "wu@example.com"},
    ],
}
LEADS = [
    ("张敏", "华东科技有限公司", "rep-east-1"),
    ("王芳", "西部科技", "rep-west-1"),
    ("陈杰", "北方贸易", "rep-east-1"),
    ("赵磊", "南方物流", "rep-west-1"),
]


def wait_for(driver: webdriver.Chrome, condition: Any, what: str) -> Any:
    # The page redraws its lists as answers arrive: an element read mid-redraw is stale,
    # and the condition is asked again.
    return WebDriverWait(
        driver, WAIT_SECONDS, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition, message=what)


def shown_names(driver: webdriver.Chrome) -> list[str]:
    names: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#leads-table tbody tr[data-lead] td:nth-child(2)')]"
        ".map((td) => td.textContent)"
    )
    return names


def shows(names: list[str]) -> Any:
    return lambda driver: shown_names(driver) == names


def query_of(driver: webdriver.Chrome) -> dict[str, list[str]]:
    return parse_qs(urlparse(driver.current_url).query)


@pytest.fixture(scope="module")
def seeded(shared_dev: LeadflowDev) -> LeadflowDev:
    headers = {"Authorization": f"Bearer {shared_dev.admin_key}"}
    with httpx.Client(base_url=shared_dev.api_url, headers=headers, timeout=30) as http:
        assert http.put("/v1/directory", json=DIRECTORY).status_code == 200
        for i, (name, company, rep) in enumerate(LEADS):
            data = {"name": name, "company": company, "phone": f"+86138001380{i:02d}"}
            captured = http.post(
                "/v1/events",
                json={"type": "lead.captured", "data": {**data, "source": "website"}},
            )
            assert captured.status_code == 202, captured.text
            lead_id = captured.json()["lead_id"]
            # After whatever the rules decided on capture: the owner the test names.
            placed = time.monotonic() + 30
            while time.monotonic() < placed:
                lead = http.get(f"/v1/leads/{lead_id}").json()
                if lead["owner"] or lead["in_pool"]:
                    break
                time.sleep(0.2)
            reassigned = http.post(
                "/v1/events",
                json={
                    "type": "lead.reassigned",
                    "lead_id": lead_id,
                    "data": {"rep_id": rep, "reason": "test"},
                },
            )
            assert reassigned.status_code == 202, reassigned.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            items = http.get("/v1/leads", params={"limit": 500}).json()["items"]
            owners = {item["name"]: item["owner"] for item in items}
            if all(owners.get(name) == rep for name, _, rep in LEADS):
                return shared_dev
            time.sleep(0.5)
    pytest.fail("the leads were not projected with their owners in time")


@pytest.fixture(scope="module")
def browser(seeded: LeadflowDev) -> Iterator[webdriver.Chrome]:
    driver = start_chromium()
    try:
        driver.get(seeded.api_url + "/leads")
        # The person's choice of language, as the switch keeps it.
        driver.execute_script("localStorage.setItem('leadflow.locale', 'zh-CN')")
        driver.get(seeded.api_url + "/leads")
        wait_for(driver, lambda d: d.find_element(By.ID, "api-key").is_displayed(), "sign-in")
        driver.find_element(By.ID, "api-key").send_keys(seeded.admin_key, Keys.ENTER)
        wait_for(driver, shows([name for name, _, _ in reversed(LEADS)]), "newest lead first")
        yield driver
    finally:
        driver.quit()


def test_search_filter_by_owner_name_and_sort_follow_the_url(browser: webdriver.Chrome) -> None:
    # In the chosen zh-CN: the page's own words.
    assert browser.find_element(By.CSS_SELECTOR, "#main h1").text == "线索"
    search = browser.find_element(By.ID, "f-q")
    search.send_keys("科技")
    wait_for(browser, shows(["王芳", "张敏"]), "the leads of a 科技 company")
    assert query_of(browser)["q"] == ["科技"]

    Select(browser.find_element(By.ID, "f-owner")).select_by_visible_text("李伟")
    wait_for(browser, shows(["张敏"]), "Li Wei's 科技 lead")
    assert query_of(browser)["owner"] == ["rep-east-1"]
    row = browser.find_elements(By.CSS_SELECTOR, "#leads-table tbody td")
    # Stage and source as words, owner and team by their directory names; the next
    # deadline in words.
    stage, deadline, owner, team, source = (cell.text for cell in row[3:8])
    assert "李伟" in deadline, deadline
    assert (stage, owner, team, source) == ("新线索", "李伟", team, "官网")
    assert team in ("华东", "华西")

    search.send_keys(Keys.CONTROL, "a")
    search.send_keys(Keys.DELETE)
    wait_for(browser, shows(["陈杰", "张敏"]), "every lead of Li Wei")

    header = browser.find_element(By.CSS_SELECTOR, 'th[data-sort="name"]')
    assert header.get_attribute("aria-sort") == "none"
    header.find_element(By.TAG_NAME, "button").click()
    wait_for(browser, shows(["张敏", "陈杰"]), "sorted by name (code point)")
    header = browser.find_element(By.CSS_SELECTOR, 'th[data-sort="name"]')
    assert header.get_attribute("aria-sort") == "ascending"
    assert query_of(browser)["sort"] == ["name"]
    header.find_element(By.TAG_NAME, "button").click()
    wait_for(browser, shows(["陈杰", "张敏"]), "sorted by name, descending")
    assert query_of(browser)["sort"] == ["-name"]


def test_a_saved_view_is_picked_again_after_a_reload_and_exported(
    browser: webdriver.Chrome, seeded: LeadflowDev, tmp_path: Path
) -> None:
    browser.get(seeded.api_url + "/leads?owner=rep-west-1&sort=name")
    wait_for(browser, shows(["王芳", "赵磊"]), "Wang Fang's leads by name")
    browser.find_element(By.ID, "view-name").send_keys("王芳的线索")
    browser.find_element(By.ID, "view-save").click()
    wait_for(
        browser,
        lambda d: Select(d.find_element(By.ID, "views")).first_selected_option.text == "王芳的线索",
        "the saved view picked",
    )

    browser.get(seeded.api_url + "/leads")
    wait_for(browser, lambda d: len(shown_names(d)) == len(LEADS), "every lead")
    wait_for(
        browser,
        lambda d: "王芳的线索" in [o.text for o in Select(d.find_element(By.ID, "views")).options],
        "the saved view listed",
    )
    Select(browser.find_element(By.ID, "views")).select_by_visible_text("王芳的线索")
    wait_for(browser, shows(["王芳", "赵磊"]), "the view's leads")
    assert query_of(browser) == {"owner": ["rep-west-1"], "sort": ["name"]}
    assert Select(browser.find_element(By.ID, "f-owner")).first_selected_option.text == "刘洋"

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    browser.find_element(By.ID, "export").click()
    wait_for(browser, lambda _: (downloads / "leads.csv").exists(), "the exported file")
    exported = (downloads / "leads.csv").read_bytes().decode("utf-8")
    assert exported.startswith("\ufefflead_id,name,company,email,phone,stage,owner")
    rows = exported.strip().split("\r\n")[1:]
    assert [row.split(",")[1:3] for row in rows] == [["王芳", "西部科技"], ["赵磊", "南方物流"]]
    # The phone is a number a spreadsheet must not read as a formula.
    assert all(row.split(",")[4].startswith("'+86") for row in rows)


def test_date_filters_mean_days_in_the_persons_time_zone(
    browser: webdriver.Chrome, seeded: LeadflowDev
) -> None:
    # Captured 2026-03-02 17:00 UTC: 03-03 01:00 in Shanghai, the console's time zone here.
    headers = {"Authorization": f"Bearer {seeded.admin_key}"}
    with httpx.Client(base_url=seeded.api_url, headers=headers, timeout=30) as http:
        captured = http.post(
            "/v1/events",
            json={
                "type": "lead.captured",
                "occurred_at": "2026-03-02T17:00:00Z",
                "data": {"name": "孙丽", "phone": "+8613800138099", "source": "website"},
            },
        )
        assert captured.status_code == 202, captured.text
        # The page asks once: only after the lead is in the read model.
        projected = time.monotonic() + WAIT_SECONDS
        while not http.get("/v1/leads", params={"q": "孙丽"}).json()["items"]:
            assert time.monotonic() < projected, "the lead was not projected in time"
            time.sleep(0.2)
    browser.get(seeded.api_url + "/leads?created_from=2026-03-03&created_to=2026-03-03")
    wait_for(browser, shows(["孙丽"]), "the lead captured on 03-03 in Shanghai")
    browser.get(seeded.api_url + "/leads?created_from=2026-03-02&created_to=2026-03-02")
    # In UTC the lead was captured on 03-02; in Shanghai nothing was.
    wait_for(
        browser,
        lambda d: "没有匹配的线索" in d.find_element(By.ID, "leads-table").text,
        "nothing on 03-02 in Shanghai",
    )
    assert shown_names(browser) == []
