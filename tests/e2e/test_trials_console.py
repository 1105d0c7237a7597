"""The console's "Trials" section (/rulesets) in headless Chromium against `leadflow dev`:
start a published version in shadow, read its live report in words with the directory's
names while real leads are decided, stop it, start it as a canary and promote it — with
the keyboard, and no error in the browser's console (docs/trials.md)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from chromium import Browser, start_chromium
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from support import eventually
from test_console import api_client, post

if TYPE_CHECKING:
    from conftest import LeadflowDev

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(300)]


@pytest.fixture
def browser(shared_dev: LeadflowDev) -> Iterator[Browser]:
    driver = start_chromium()
    browser = Browser(driver, shared_dev.api_url)
    try:
        browser.open("/rulesets")
        browser.wait(lambda d: d.find_element(By.ID, "api-key").is_displayed(), "sign-in form")
        browser.press(shared_dev.admin_key, Keys.ENTER)
        browser.wait(lambda d: d.find_element(By.ID, "main").is_displayed(), "the page")
        yield browser
        errors = browser.console_errors()
        assert not errors, f"errors in the browser console: {errors}"
    finally:
        driver.quit()


def press(browser: Browser, css: str) -> None:
    browser.wait(lambda d: d.find_elements(By.CSS_SELECTOR, css) or None, css)
    browser.tab_to(css)
    browser.press(Keys.ENTER)


def test_shadow_report_stop_canary_and_promote(browser: Browser, shared_dev: LeadflowDev) -> None:
    with api_client(shared_dev) as http:
        candidate = copy.deepcopy(http.get("/v1/rulesets/active").json()["ruleset"])
        [rule] = [r for r in candidate["rules"] if r["id"] == "east-website"]
        rule["actions"][0]["params"]["rep"] = "rep-east-2"
        candidate["name"] = "east website to Zhang Min"
        assert http.post("/v1/rulesets", json=candidate).json() == {"version": 2}

        browser.open("/rulesets")
        browser.wait(lambda d: "v2" in browser.text("#trials-candidates"), "v2 can be tried")
        assert "No version is on trial." in browser.text("#trials-running")
        press(browser, "#trials-candidates button")  # the first: "Shadow v2"
        browser.wait(lambda d: "runs in shadow" in browser.text("#trials-status"), "started")
        assert http.get("/v1/rulesets/trials").json()["trials"][0]["mode"] == "shadow"

        leads = [
            post(
                http,
                {
                    "type": "lead.captured",
                    "data": {"email": f"t{i}@example.com", "source": "website", "region": "east"},
                },
            )["lead_id"]
            for i in range(3)
        ]
        for lead in leads:
            owner = eventually(
                lambda lead=lead: http.get(f"/v1/leads/{lead}").json().get("owner"),
                f"lead {lead} assigned",
                60,
            )
            assert owner == "rep-east-1"  # the shadow changed nobody's owner

        browser.open("/rulesets")
        summary = browser.wait(
            lambda d: (
                browser.text(".trial-summary")
                if "3 of 3" in browser.text(".trial-summary")
                else None
            ),
            "the shadow report",
        )
        assert "3 leads would go to Zhang Min instead of Li Wei" in summary

        press(browser, '.trial[data-version="2"] .toolbar button:last-child')  # Stop v2
        browser.wait(lambda d: "stopped" in browser.text("#trials-status"), "stopped")
        assert http.get("/v1/rulesets/trials").json()["trials"] == []

        share = browser.wait(
            lambda d: d.find_element(By.CSS_SELECTOR, "#trials-candidates input[type=number]"),
            "the share input",
        )
        share.clear()
        share.send_keys("0.5")
        press(browser, "#trials-candidates span button")  # "Canary v2"
        browser.wait(
            lambda d: "canary for 50% of new leads" in browser.text("#trials-status"), "canary"
        )
        assert http.get("/v1/rulesets/trials").json()["trials"][0]["share"] == 0.5
        owners = {}
        for i in range(6):
            lead = post(
                http,
                {
                    "type": "lead.captured",
                    "data": {"email": f"c{i}@example.com", "source": "website", "region": "east"},
                },
            )["lead_id"]
            owners[lead] = eventually(
                lambda lead=lead: http.get(f"/v1/leads/{lead}").json().get("owner"),
                f"lead {lead} assigned",
                60,
            )
        inside = sum(owner == "rep-east-2" for owner in owners.values())
        report = http.get("/v1/rulesets/2/trial-report").json()
        assert report["canary_leads"] == {
            "captured_since_start": 6,
            "in_canary": inside,
            "not_in_canary": 6 - inside,
        }
        assert report["disagreeing"] == inside
        browser.open("/rulesets")
        browser.wait(
            lambda d: (
                f"Since the start: {inside} lead{'' if inside == 1 else 's'} in the canary"
                in browser.text("#trials")
            ),
            "the canary's leads",
        )

        press(browser, '.trial[data-version="2"] .toolbar button:first-child')  # Promote v2
        browser.wait(lambda d: "now active" in browser.text("#trials-status"), "promoted")
        assert http.get("/v1/rulesets/active").json()["version"] == 2
        assert http.get("/v1/rulesets/trials").json()["trials"] == []
