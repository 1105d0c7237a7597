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
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
from chromium import Browser, start_chromium
from console_data import RealisticData, seed_realistic
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select
from support import eventually
from test_console import ARTIFACTS, api_client

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
    "rulesets": "/rulesets",
    "directory": "/directory",
    "quarantine": "/quarantine",
}
WIDTHS = (1400, 375)
LOCALES = ("zh-CN", "en")
PHONE_HEIGHT = 812
DESKTOP_HEIGHT = 1000
LONGEST_SHOT = 6000  # px: a page longer than this is shot down to here
SCREENS = Path(__file__).parents[2] / "docs" / "screens"
# A browser time zone far from the console's, so a date shown in Asia/Shanghai is told apart.
BROWSER_ZONE = "America/Los_Angeles"
CONSOLE_ZONE = ZoneInfo("Asia/Shanghai")

# The elements wider than the screen that do not scroll themselves (each as tag#id.class).
OVERFLOWING = """
// The width inside the vertical scrollbar: what is beyond it is hidden behind the scrollbar.
const width = document.documentElement.clientWidth;
const scrolls = (node) =>
  ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(node).overflowX);
const name = (n) => n.tagName.toLowerCase() + (n.id ? '#' + n.id : '') +
  (typeof n.className === 'string' && n.className ? '.' + n.className.split(' ').join('.') : '');
const found = [];
for (const node of document.body.querySelectorAll('*')) {
  const box = node.getBoundingClientRect();
  if (!box.width || !box.height || box.right <= width + 1) continue;
  const style = getComputedStyle(node);
  if (style.visibility === 'hidden') continue;
  let inside = false;
  for (let up = node.parentElement; up && up !== document.body; up = up.parentElement) {
    if (scrolls(up)) { inside = true; break; }
  }
  if (!inside) found.push(name(node) + ' right=' + Math.round(box.right));
}
const page = document.documentElement.scrollWidth;
return {scrollWidth: page, innerWidth: window.innerWidth, found: found.slice(0, 10)};
"""

# Everything folded away (the rule builder's rules, reports) is unfolded, so it is checked too.
UNFOLD = "document.querySelectorAll('main details').forEach((d) => { d.open = true; })"

# The page has drawn what it loaded: nothing in <main> changed for a moment.
SETTLED = "return document.getElementById('main').innerHTML.length"


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


def set_width(browser: Browser, width: int, height: int | None = None) -> None:
    """Makes the viewport `width` px wide. Not as a "mobile" device: one of those widens its
    layout viewport to fit what overflows (zooming out), which would hide the overflow."""
    phone = width <= 720
    browser.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": width,
            "height": height or (PHONE_HEIGHT if phone else DESKTOP_HEIGHT),
            "deviceScaleFactor": 1,
            "mobile": False,
        },
    )


def settle(browser: Browser) -> None:
    """Waits until the page has drawn what it loaded (its main content stops changing)."""
    browser.wait(lambda d: d.find_element(By.ID, "main").is_displayed(), "the page")
    last: list[int] = [-1]

    def steady() -> bool | None:
        size: int = browser.js(SETTLED)
        same = size == last[0] and size > 0
        last[0] = size
        return True if same else None

    eventually(steady, "the page settled", 30.0, interval=0.7)


def shoot(browser: Browser, name: str, width: int) -> Path:
    """A screenshot of the whole page (up to LONGEST_SHOT px) under the artifacts."""
    folder = ARTIFACTS / "responsive"
    folder.mkdir(parents=True, exist_ok=True)
    height: int = browser.js("return document.documentElement.scrollHeight")
    set_width(browser, width, min(height, LONGEST_SHOT))
    path = folder / f"{name}.png"
    assert browser.driver.save_screenshot(str(path)), f"no screenshot of {name}"
    set_width(browser, width)
    if os.environ.get("LEADFLOW_README_SCREENS"):
        SCREENS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENS / path.name)
    return path


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
