"""The console's directory page (issue #18) in headless Chromium against `leadflow dev`:
edit a rep's capacity, deactivate a rep, add a team whose manager is picked by name, save,
and the API serves the new directory; an invalid edit (a negative capacity, a team whose
manager was removed) is shown on the field that caused it and nothing changes on the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from chromium import page_text as text
from chromium import retype, severe_errors, start_chromium, wait_for
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

if TYPE_CHECKING:
    from conftest import LeadflowDev
    from selenium import webdriver

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(300)]


def field(driver: webdriver.Chrome, path: str) -> WebElement:
    """The input or picker for the directory field at JSON Pointer `path`."""
    return driver.find_element(By.CSS_SELECTOR, f'[data-path="{path}"]')


@pytest.fixture(scope="module")
def browser(shared_dev: LeadflowDev) -> Iterator[webdriver.Chrome]:
    """Chromium signed in to the console's directory page with the admin key."""
    driver = start_chromium()
    try:
        driver.get(shared_dev.api_url + "/directory")
        key = wait_for(
            driver, lambda d: d.find_element(By.ID, "api-key").is_displayed(), "the sign-in form"
        )
        assert key
        driver.find_element(By.ID, "api-key").send_keys(shared_dev.admin_key, Keys.ENTER)
        yield driver
    finally:
        driver.quit()


def directory(dev: LeadflowDev) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {dev.admin_key}"}
    answer: dict[str, Any] = httpx.get(dev.api_url + "/v1/directory", headers=headers).json()
    return answer


def open_page(driver: webdriver.Chrome, dev: LeadflowDev) -> None:
    driver.get(dev.api_url + "/directory")
    wait_for(driver, lambda d: " rep" in text(d, "#directory-status"), "the directory loaded")


def save(driver: webdriver.Chrome, outcome: str) -> None:
    driver.find_element(By.ID, "directory-save").click()
    try:
        wait_for(driver, lambda d: outcome in text(d, "#directory-status"), outcome)
    except TimeoutException as exc:
        shown = text(driver, "#directory-status"), text(driver, "#directory-errors")
        errors = driver.execute_script(
            "return [...document.querySelectorAll('.field-error')].map(n => n.textContent)"
            ".filter(Boolean)"
        )
        raise AssertionError(f"not {outcome!r}: {shown} {errors}") from exc


def test_edit_reps_add_a_team_with_a_manager_picked_by_name_and_save(
    browser: webdriver.Chrome, shared_dev: LeadflowDev
) -> None:
    open_page(browser, shared_dev)
    assert (
        browser.find_element(By.CSS_SELECTOR, '[data-nav="directory"]').get_attribute(
            "aria-current"
        )
        == "page"
    )
    assert field(browser, "/reps/0/name").get_attribute("value") == "Li Wei"

    retype(field(browser, "/reps/0/capacity"), "12")
    active = field(browser, "/reps/3/active")
    assert active.is_selected()
    active.click()

    browser.find_element(By.CSS_SELECTOR, '[data-add="teams"]').click()
    new_id = field(browser, "/teams/2/id")
    assert browser.switch_to.active_element == new_id  # the new row's first field
    new_id.send_keys("north")
    field(browser, "/teams/2/name").send_keys("North")
    Select(field(browser, "/teams/2/manager")).select_by_visible_text("Zhang Min (rep)")
    Select(field(browser, "/teams/2/director")).select_by_visible_text("Sun Hui (person)")
    field(browser, "/teams/2/regions").send_keys("north, north-east")

    save(browser, "Saved")

    stored = directory(shared_dev)
    reps = {r["id"]: r for r in stored["reps"]}
    assert reps["rep-east-1"]["capacity"] == 12
    assert reps["rep-west-2"]["active"] is False
    assert reps["rep-east-2"] == {
        "id": "rep-east-2",
        "name": "Zhang Min",
        "email": "zhang.min@example.com",
        "team": "east",
        "capacity": 30,
        "active": True,
        "dingtalk_user_id": None,
        "wecom_user_id": None,
        "locale": None,
    }
    north = next(t for t in stored["teams"] if t["id"] == "north")
    assert north == {
        "id": "north",
        "name": "North",
        "manager": "rep-east-2",
        "director": "dir-sales",
        "regions": ["north", "north-east"],
        "channel": None,
        "calendar": None,
    }
    # The page shows what the server now keeps: the new team's id can no longer be edited.
    assert field(browser, "/teams/2/id").get_attribute("readonly") is not None
    assert not severe_errors(browser)


def test_an_invalid_edit_is_shown_on_its_field_and_nothing_is_saved(
    browser: webdriver.Chrome, shared_dev: LeadflowDev
) -> None:
    before = directory(shared_dev)
    open_page(browser, shared_dev)

    retype(field(browser, "/reps/1/capacity"), "-1")
    # Remove the east team's manager (Liu Yang, the first person): the team names nobody.
    assert field(browser, "/people/0/name").get_attribute("value") == "Liu Yang"
    browser.find_element(By.CSS_SELECTOR, '[aria-label="Remove person Liu Yang"]').click()
    manager = Select(field(browser, "/teams/0/manager"))
    assert manager.first_selected_option.text == "mgr-east (not in the directory)"

    save(browser, "Nothing was saved")

    capacity = field(browser, "/reps/1/capacity")
    assert capacity.get_attribute("aria-invalid") == "true"
    assert "greater than or equal to 0" in text(browser, "#f-reps-1-capacity-error")
    assert field(browser, "/teams/0/manager").get_attribute("aria-invalid") == "true"
    assert "'mgr-east' is neither a rep nor a person" in text(browser, "#f-teams-0-manager-error")
    # A field that was fine carries no error.
    assert field(browser, "/reps/0/capacity").get_attribute("aria-invalid") is None
    assert directory(shared_dev) == before
    assert not severe_errors(browser, expected=("status of 422",))

    # Mended, it saves.
    retype(field(browser, "/reps/1/capacity"), "5")
    Select(field(browser, "/teams/0/manager")).select_by_visible_text("Li Wei (rep)")
    save(browser, "Saved")
    stored = directory(shared_dev)
    assert [p["id"] for p in stored["people"]] == ["mgr-west", "dir-sales"]
    assert stored["teams"][0]["manager"] == "rep-east-1"
    assert stored["reps"][1]["capacity"] == 5


def test_a_calendar_filled_from_the_holidays_package_and_a_bad_window_shown_on_its_field(
    browser: webdriver.Chrome, shared_dev: LeadflowDev
) -> None:
    before = directory(shared_dev)
    open_page(browser, shared_dev)
    calendar = before["calendars"][0]
    team_calendar = Select(field(browser, "/teams/0/calendar")).first_selected_option.text
    assert team_calendar == calendar["name"]

    # A window that ends before it starts is refused on the calendar's hours, nothing saved.
    hours = field(browser, "/calendars/0/hours")
    original_hours = hours.get_attribute("value")
    retype(hours, "mon 18:00-09:00")
    browser.find_element(By.ID, "directory-save").click()
    wait_for(
        browser,
        lambda d: any(e.text.strip() for e in d.find_elements(By.CSS_SELECTOR, ".field-error")),
        "the error on the calendar's hours",
    )
    described_by = field(browser, "/calendars/0/hours").get_attribute("aria-describedby") or ""
    assert any(browser.find_element(By.ID, ident).text.strip() for ident in described_by.split()), (
        "the error is not shown beside the hours"
    )
    assert directory(shared_dev) == before

    # Filled from the real holidays route: 2028's days off and make-up working days.
    retype(field(browser, "/calendars/0/hours"), original_hours or "")
    retype(browser.find_element(By.CSS_SELECTOR, "input.year"), "2028")
    browser.find_element(
        By.XPATH, '//button[text()="Fill China\'s public holidays for 2028"]'
    ).click()
    wait_for(
        browser, lambda d: "holidays filled in for 2028" in text(d, "#directory-status"), "holidays"
    )
    save(browser, "Saved")

    stored = directory(shared_dev)["calendars"][0]
    holidays = httpx.get(
        shared_dev.api_url + "/v1/directory/holidays",
        params={"country": "CN", "year": 2028},
        headers={"Authorization": f"Bearer {shared_dev.admin_key}"},
    ).json()
    assert {h["date"] for h in holidays["holidays"]} <= {h["date"] for h in stored["holidays"]}
    assert {"2028-10-01"} <= {h["date"] for h in stored["holidays"]}
    assert [h for h in stored["holidays"] if not h["date"].startswith("2028-")] == [
        h for h in calendar["holidays"] if not h["date"].startswith("2028-")
    ]

    def working_days(hours: dict[str, list[list[str]]]) -> dict[str, list[list[str]]]:
        return {day: spans for day, spans in hours.items() if spans}  # a missing day is closed

    assert working_days(stored["hours"]) == working_days(calendar["hours"])
    assert not severe_errors(browser, expected=("422",))
