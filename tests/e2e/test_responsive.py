"""Every console page in zh-CN and en, at a desktop width (1400 px) and a phone's (375 px),
in headless Chromium against one `leadflow dev` loaded with realistic data (sixty leads
with Chinese names and companies, a won deal of ¥1,200,000): a screenshot of each, no
horizontal overflow, no error in the browser's console, Chinese navigation in zh-CN; the
Menu button that holds the navigation on a phone; and the language switch (the browser's
language first, the select after, kept across pages, dates in Asia/Shanghai).

Screenshots go to `$LEADFLOW_ARTIFACTS/responsive/` (default `artifacts/`); with
`LEADFLOW_README_SCREENS=1` they are also copied to docs/screens/ for the README.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
from chromium import Browser, start_chromium
from console_data import RealisticData, seed_realistic
from screens import OVERFLOWING, UNFOLD, set_width, settle, shoot
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select
from test_console import api_client

if TYPE_CHECKING:
    from conftest import LeadflowDev

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(600)]

# Every console page, by the name its screenshots carry: its path ({lead}: a seeded lead).
# A page another part adds joins here.
PAGES: dict[str, str] = {
    "dashboard": "/dashboard",
    "leads": "/leads",
    "lead": "/leads/{lead}",
    "pool": "/pool",
    "worklist": "/worklist?owner=rep-east-1",
    "rulesets": "/rulesets",
    "directory": "/directory",
    "quarantine": "/quarantine",
}
WIDTHS = (1400, 375)
LOCALES = ("zh-CN", "en")
BROWSER_ZONE = "America/Los_Angeles"
CONSOLE_ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def realistic(shared_dev: LeadflowDev) -> RealisticData:
    with api_client(shared_dev) as http:
        return seed_realistic(http)


def browser_in(language: str, dev: LeadflowDev) -> Browser:
    """Chromium whose language is `language`, in a time zone far from Shanghai."""
    env = {**os.environ, "TZ": BROWSER_ZONE}
    return Browser(start_chromium(language=language, env=env), dev.api_url)


@pytest.fixture(scope="module", params=LOCALES)
def localized(
    request: pytest.FixtureRequest, shared_dev: LeadflowDev, realistic: RealisticData
) -> Iterator[tuple[str, Browser]]:
    """Chromium in one of the console's languages, signed in."""
    browser = browser_in(request.param, shared_dev)
    try:
        browser.open("/dashboard")
        browser.sign_in(shared_dev.admin_key)
        yield request.param, browser
    finally:
        browser.driver.quit()


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_and_speaks_the_language(
    localized: tuple[str, Browser], width: int, realistic: RealisticData
) -> None:
    language, browser = localized
    browser.console_errors()
    set_width(browser, width)
    problems: list[str] = []
    for page, path in PAGES.items():
        browser.open(path.format(lead=realistic.owned))
        settle(browser)
        browser.js(UNFOLD)
        name = f"{page}-{width}-{language}"
        shoot(browser, name, width)
        fit: dict[str, Any] = browser.js(OVERFLOWING)
        if fit["scrollWidth"] > fit["innerWidth"] or fit["found"]:
            problems.append(f"{name} overflows: {fit}")
        errors = browser.console_errors()
        if errors:
            problems.append(f"{name} logged errors: {errors}")
        assert browser.js("return document.documentElement.lang") == language
        nav = browser.text("#console-nav")
        if has_chinese(nav) != (language == "zh-CN"):
            problems.append(f"{name}: the navigation reads {nav!r}")
    assert not problems, "\n".join(problems)


def test_the_menu_button_holds_the_navigation_on_a_phone(
    shared_dev: LeadflowDev, realistic: RealisticData
) -> None:
    browser = browser_in("zh-CN", shared_dev)
    try:
        set_width(browser, 375)
        browser.open("/leads")
        browser.sign_in(shared_dev.admin_key)
        menu = browser.driver.find_element(By.ID, "menu-toggle")
        nav = browser.driver.find_element(By.ID, "console-nav")
        assert menu.is_displayed() and menu.text == "菜单"
        assert not nav.is_displayed()
        assert menu.get_attribute("aria-expanded") == "false"
        # With the keyboard: Enter opens it, Escape closes it and leaves the focus on it.
        browser.js("arguments[0].focus()", menu)
        browser.press(Keys.ENTER)
        browser.wait(lambda d: nav.is_displayed(), "the navigation shown")
        assert menu.get_attribute("aria-expanded") == "true"
        assert "线索" in nav.text
        browser.press(Keys.ESCAPE)
        browser.wait(lambda d: not nav.is_displayed(), "the navigation hidden")
        assert menu.get_attribute("aria-expanded") == "false"
        assert browser.active() == menu
        # On a desktop the links show and the button does not.
        set_width(browser, 1400)
        assert nav.is_displayed() and not menu.is_displayed()
        assert not browser.console_errors()
    finally:
        browser.driver.quit()


def shanghai_time(iso: str) -> str:
    """`iso` as an en console shows it (Intl "medium" date, "short" time) in Shanghai,
    spaces collapsed as `Browser.rows` reads them."""
    moment = datetime.fromisoformat(iso).astimezone(CONSOLE_ZONE)
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    return f"{moment:%b} {moment.day}, {moment.year}, {hour}:{moment:%M} {half}"


def test_the_language_follows_the_browser_then_the_switch(
    shared_dev: LeadflowDev, realistic: RealisticData
) -> None:
    browser = browser_in("zh-CN", shared_dev)
    try:
        browser.open("/rulesets")
        browser.sign_in(shared_dev.admin_key)
        # The browser's language first: Chinese words, title and <html lang>.
        assert browser.js("return document.documentElement.lang") == "zh-CN"
        assert browser.text('[data-nav="rulesets"]') == "规则集"
        assert browser.driver.title == "规则集 · leadflow"
        browser.wait(lambda d: "v1" in browser.text("#versions"), "the versions")
        assert "发布时间" in browser.text("#versions thead")
        # The select switches it, and the choice is kept on the next page.
        Select(browser.driver.find_element(By.ID, "language")).select_by_value("en")
        browser.wait(
            lambda d: browser.js("return document.documentElement.lang") == "en", "English"
        )
        browser.wait(lambda d: "Published at" in browser.text("#versions thead"), "the table")
        assert browser.driver.title == "Rulesets · leadflow"
        browser.open("/directory")
        # The shell's HTML says "Directory" before the words load: wait for the select,
        # which the page sets once they have.
        browser.wait(
            lambda d: d.find_element(By.ID, "language").get_attribute("value") == "en",
            "the language kept",
        )
        assert browser.text('[data-nav="directory"]') == "Directory"
        assert browser.text("main h1") == "Sales directory"
        # Dates show in the console's time zone (Asia/Shanghai), not the browser's.
        with api_client(shared_dev) as http:
            published = http.get("/v1/rulesets").json()["rulesets"][0]["published_at"]
        browser.open("/rulesets")
        browser.wait(lambda d: "v1" in browser.text("#versions"), "the versions")
        shown = browser.rows("#versions")[-1]
        assert shanghai_time(published) in shown, shown
        assert browser.js("return Intl.DateTimeFormat().resolvedOptions().timeZone") == (
            BROWSER_ZONE
        )
        assert not browser.console_errors()
    finally:
        browser.driver.quit()
