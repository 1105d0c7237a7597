"""People signing in to the console in headless Chromium against `leadflow dev` (issue #19):
a rep signs in with login and password (a wrong password first), sees their name and role
in the header, stays signed in across a reload without any key in the tab, and signs out;
the admin user `leadflow dev` created signs in with the password it printed."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from chromium import start_chromium
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

if TYPE_CHECKING:
    from conftest import LeadflowDev

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(300)]

PASSWORD = "a rep's own password"


def waited(driver: webdriver.Chrome, condition: Callable[[Any], Any], what: str) -> Any:
    # Signing out reloads the page: an element read across the reload is stale, and the
    # condition is asked again.
    return WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        condition, message=f"waiting for {what}"
    )


def shown(element_id: str) -> Callable[[Any], bool]:
    return lambda d: d.find_element(By.ID, element_id).is_displayed()


def test_the_admin_user_of_leadflow_dev_signs_in_with_the_printed_password(
    shared_dev: LeadflowDev,
) -> None:
    password = (shared_dev.data_dir / "admin-password").read_text().strip()
    with httpx.Client(base_url=shared_dev.api_url) as http:
        answered = http.post("/v1/session", json={"login": "admin", "password": password})
    assert answered.status_code == 200, answered.text
    assert answered.json()["user"]["role"] == "admin"


def test_a_rep_signs_in_with_login_and_password_and_signs_out(shared_dev: LeadflowDev) -> None:
    login = f"li-{uuid.uuid4().hex[:6]}@example.com"
    with httpx.Client(
        base_url=shared_dev.api_url, headers={"Authorization": f"Bearer {shared_dev.admin_key}"}
    ) as http:
        created = http.post(
            "/v1/users",
            json={"login": login, "role": "rep", "person_id": "rep-east-1", "password": PASSWORD},
        )
    assert created.status_code == 201, created.text
    driver = start_chromium()
    try:
        driver.get(shared_dev.api_url + "/leads")
        waited(driver, shown("login"), "the sign-in form")
        assert driver.switch_to.active_element == driver.find_element(By.ID, "login")
        # No DingTalk or WeCom set up here: no buttons for them.
        assert not driver.find_element(By.ID, "providers").is_displayed()
        driver.find_element(By.ID, "login").send_keys(login)
        driver.find_element(By.ID, "password").send_keys("not the password")
        driver.find_element(By.CSS_SELECTOR, "#password-form button").click()
        waited(
            driver,
            lambda d: d.find_element(By.ID, "sign-in-error").text == "Wrong login or password.",
            "the refusal",
        )
        assert not driver.find_element(By.ID, "main").is_displayed()

        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "#password-form button").click()
        waited(driver, shown("main"), "the leads page")
        assert driver.find_element(By.ID, "who").text == "Li Wei · Rep"
        waited(
            driver,
            lambda d: re.fullmatch(r"\d+ leads?\.", d.find_element(By.ID, "leads-status").text),
            "the leads list",
        )
        # No key in the tab, and the session cookie is out of the page's reach (HttpOnly):
        # the page sees only the marker that says there is a session.
        stored = driver.execute_script(
            "return [sessionStorage.getItem('leadflow.apiKey'), document.cookie]"
        )
        assert stored == [None, "leadflow_signed_in=1"]

        driver.refresh()
        waited(driver, shown("main"), "the page, still signed in after a reload")
        assert driver.find_element(By.ID, "who").text == "Li Wei · Rep"

        driver.find_element(By.ID, "sign-out").click()
        waited(driver, shown("login"), "the sign-in form after signing out")
        driver.refresh()
        waited(driver, shown("login"), "the sign-in form: the session has ended")
        assert not driver.find_element(By.ID, "main").is_displayed()
    finally:
        driver.quit()
