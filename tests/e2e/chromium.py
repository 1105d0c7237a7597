"""Headless Debian Chromium for the browser tests (the console, /docs and /redoc): one way
to start it, with the options every test wants and those a test adds, and the small helpers
the console's tests share (a `Browser` wrapper, `retype`, `severe_errors`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARGUMENTS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)
WAIT_SECONDS = 30.0
T = TypeVar("T")


def start_chromium(
    more_arguments: Iterable[str] = (),
    logs: Mapping[str, str] | None = None,
    *,
    language: str = "en-US",
    env: Mapping[str, str] | None = None,
) -> webdriver.Chrome:
    """A started Chromium (the caller quits it) whose languages are `language` (both
    `--lang` and the `intl.accept_languages` pref, which is what `navigator.languages`
    reports); `logs`: the logs it keeps, by type; `env`: the browser's environment (e.g.
    `TZ`), else this process's."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Chromium is missing: `make install` installs chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (*ARGUMENTS, f"--lang={language}", *more_arguments):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    options.set_capability("goog:loggingPrefs", dict(logs or {"browser": "ALL"}))
    service = Service(str(CHROMEDRIVER), env=dict(env) if env is not None else None)
    return webdriver.Chrome(options=options, service=service)


def severe_errors(driver: webdriver.Chrome, expected: Iterable[str] = ()) -> list[str]:
    """Errors the page logged since the last call (the log is read once), less those
    containing one of `expected`."""
    wanted = tuple(expected)
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and not any(e in entry["message"] for e in wanted)
    ]


def retype(element: WebElement, text: str) -> None:
    """Replaces a field's text with the keyboard: select all, then type (empty: delete)."""
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE, text)


def page_text(driver: webdriver.Chrome, css: str) -> str:
    """The text of the first element `css` matches, whitespace collapsed ("" if none)."""
    found: str = driver.execute_script(
        "const n = document.querySelector(arguments[0]); return n ? n.textContent : ''", css
    )
    return " ".join(found.split())


def wait_for(driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], T], what: str) -> T:
    """`condition`'s first truthy answer within 30 s; else an AssertionError naming `what`.
    An element the page redrew while the condition read it is stale: the condition is asked
    again."""
    try:
        return WebDriverWait(
            driver, WAIT_SECONDS, ignored_exceptions=(StaleElementReferenceException,)
        ).until(condition, message=what)
    except WebDriverException as exc:
        raise AssertionError(f"{what} (page {driver.current_url})") from exc


@dataclass
class Browser:
    """Chromium under chromedriver, on the console of one `leadflow dev`."""

    driver: webdriver.Chrome
    base_url: str
    # Browser-log errors a test provokes on purpose (e.g. "409" for a refused claim).
    expected_errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def wait(self, condition: Callable[[webdriver.Chrome], T], what: str) -> T:
        return wait_for(self.driver, condition, what)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def text(self, css: str) -> str:
        return page_text(self.driver, css)

    def rows(self, css: str) -> list[list[str]]:
        """The cells' text of each body row of the table inside `css`."""
        found: list[list[str]] = self.js(
            "return [...document.querySelectorAll(arguments[0] + ' tbody tr')]"
            ".map(r => [...r.cells].map(c => c.textContent.replace(/\\s+/g, ' ').trim()))",
            css,
        )
        return found

    def chart(self, figure: str) -> dict[str, Any]:
        """The labels and datasets the Chart.js chart in `figure` draws."""
        data: dict[str, Any] = self.js(
            "const c = Chart.getChart(document.querySelector(arguments[0] + ' canvas'));"
            "return c ? {type: c.config.type, labels: c.data.labels,"
            " datasets: c.data.datasets.map(d => ({label: d.label, data: d.data}))} : null",
            figure,
        )
        return data

    def active(self) -> WebElement:
        return self.driver.switch_to.active_element

    def press(self, *keys: str) -> None:
        self.active().send_keys(*keys)

    def tab_to(self, css: str, limit: int = 300) -> WebElement:
        """Press Tab until the focus is on the element `css` matches; that element."""
        target = self.driver.find_element(By.CSS_SELECTOR, css)
        for _ in range(limit):
            if self.active() == target:
                return target
            self.press(Keys.TAB)
        raise AssertionError(f"Tab never reached {css}")

    def console_errors(self) -> list[str]:
        """Errors logged in the browser since the last call, less the expected ones."""
        return severe_errors(self.driver, self.expected_errors)

    def sign_in(self, key: str) -> None:
        """Types `key` at the sign-in form the console shows a new tab, and waits for the page."""
        self.wait(lambda d: d.find_element(By.ID, "api-key").is_displayed(), "the sign-in form")
        self.driver.find_element(By.ID, "api-key").send_keys(key, Keys.ENTER)
        self.wait(lambda d: d.find_element(By.ID, "main").is_displayed(), "the page after sign-in")
