"""The API's reference pages in headless Chromium against `leadflow dev`, with every host
but this machine unreachable: `/docs` (Swagger UI) authorizes with a key and posts a
`lead.captured` event through "Try it out" (202, and the lead is there), `/redoc` renders
the description, and neither page asks anything of another host nor logs an error.

Chromium resolves no name (`--host-resolver-rules`): a page that needed a CDN or a web
font would fail here as it would on an offline machine, and the browser's own network log
(every request it began, whatever became of it) is checked for another host too. The one
exception is ReDoc's footer logo, which its bundle always asks of its CDN: the page's
Content-Security-Policy refuses it inside the browser, and the test checks that it does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest
from chromium import start_chromium
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

if TYPE_CHECKING:
    from conftest import LeadflowDev

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(300)]

WAIT_SECONDS = 30.0
# Schemes of requests that stay in the page (inline images, ReDoc's search worker).
IN_PAGE = ("data:", "blob:", "about:")
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"

T = TypeVar("T")


@pytest.fixture
def driver() -> Iterator[webdriver.Chrome]:
    """Chromium that can reach 127.0.0.1 only, logging the console and the network."""
    chrome = start_chromium(
        ["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"],
        logs={"browser": "ALL", "performance": "ALL"},
    )
    try:
        yield chrome
    finally:
        chrome.quit()


def wait(driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], T], what: str) -> T:
    try:
        return WebDriverWait(driver, WAIT_SECONDS).until(condition, message=what)
    except WebDriverException as exc:
        raise AssertionError(f"{what} (page {driver.current_url})") from exc


def shown(driver: webdriver.Chrome, css: str) -> WebElement | None:
    """The first element `css` matches, once it is displayed."""
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0] if found and found[0].is_displayed() else None


def click(driver: webdriver.Chrome, css: str, what: str) -> None:
    element = wait(driver, lambda d: shown(d, css), what)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


@dataclass(frozen=True)
class Request:
    url: str
    blocked: str | None  # why the browser refused to send it ("csp"), if it did


def requests(driver: webdriver.Chrome) -> list[Request]:
    """Every request the browser began since the last call (its DevTools log), and whether
    it refused to send it."""
    began: dict[str, str] = {}
    blocked: dict[str, str] = {}
    for entry in driver.get_log("performance"):
        message: dict[str, Any] = json.loads(entry["message"])["message"]
        params = message["params"]
        if message["method"] == "Network.requestWillBeSent":
            began[params["requestId"]] = params["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and params.get("blockedReason"):
            blocked[params["requestId"]] = params["blockedReason"]
    return [Request(url, blocked.get(request_id)) for request_id, url in began.items()]


def elsewhere(urls: list[str], origin: str) -> list[str]:
    return [url for url in urls if not url.startswith((origin + "/", *IN_PAGE))]


def console_errors(driver: webdriver.Chrome) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_swagger_ui_authorizes_and_posts_a_capture_offline(
    driver: webdriver.Chrome, shared_dev: LeadflowDev
) -> None:
    origin = shared_dev.api_url
    driver.get(origin + "/docs")
    wait(driver, lambda d: "leadflow" in d.find_element(By.CSS_SELECTOR, "body").text, "/docs")
    operation = "#operations-events-post_event_v1_events_post"
    wait(driver, lambda d: shown(d, operation), "POST /v1/events in Swagger UI")

    click(driver, "button.authorize", "the Authorize button")
    key_field = wait(driver, lambda d: shown(d, "#auth-bearer-value"), "the key field")
    key_field.send_keys(shared_dev.admin_key)
    click(driver, ".auth-container button.authorize", "Authorize in the dialog")
    wait(
        driver,
        lambda d: "Authorized" in d.find_element(By.CSS_SELECTOR, ".auth-container").text,
        "the dialog saying the key is set",
    )
    click(driver, ".auth-container button.btn-done", "Close")

    click(driver, f"{operation} .opblock-summary-control", "POST /v1/events")
    click(driver, f"{operation} button.try-out__btn", "Try it out")
    body = wait(driver, lambda d: shown(d, f"{operation} textarea.body-param__text"), "the body")
    example = json.loads(body.get_attribute("value") or "")
    assert example["type"] == "lead.captured", "Try it out starts from the capture example"
    click(driver, f"{operation} button.execute", "Execute")

    status = wait(
        driver,
        lambda d: shown(d, f"{operation} .live-responses-table tr.response .response-col_status"),
        "the answer",
    )
    assert status.text.strip() == "202"
    answer_text = driver.find_element(
        By.CSS_SELECTOR, f"{operation} .live-responses-table tr.response .highlight-code pre"
    ).text
    accepted = json.loads(answer_text)
    assert accepted["duplicate"] is False and accepted["sequence"] >= 1
    curl = driver.find_element(By.CSS_SELECTOR, f"{operation} .curl-command").text
    assert f"Authorization: Bearer {shared_dev.admin_key}" in curl

    # The event is in the log: the lead it captured (or touched again) is there.
    lead = httpx.get(
        f"{origin}/v1/leads/{accepted['lead_id']}",
        headers={"Authorization": f"Bearer {shared_dev.admin_key}"},
        timeout=30,
    )
    assert lead.status_code == 200 and lead.json()["email"] == example["data"]["email"]

    urls = [request.url for request in requests(driver)]
    assert f"{origin}/console/static/vendor/swagger-ui-bundle.js" in urls
    assert f"{origin}/openapi.json" in urls
    assert f"{origin}/v1/events" in urls
    assert not elsewhere(urls, origin), f"requests to other hosts: {elsewhere(urls, origin)}"
    loaded = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert not elsewhere(loaded, origin), loaded
    assert not console_errors(driver)


def test_redoc_renders_the_description_offline(
    driver: webdriver.Chrome, shared_dev: LeadflowDev
) -> None:
    origin = shared_dev.api_url
    driver.get(origin + "/redoc")
    # An operation's summary, as ReDoc titles its section.
    wait(
        driver,
        lambda d: "Post Event" in d.find_element(By.CSS_SELECTOR, "body").text,
        "ReDoc showing the operations",
    )
    heading = wait(driver, lambda d: shown(d, "h1"), "ReDoc's title")
    assert heading.text.startswith("leadflow")

    sent = requests(driver)
    assert f"{origin}/console/static/vendor/redoc.standalone.js" in [r.url for r in sent]
    # ReDoc 2 always tries its footer's logo from its CDN; the page's policy refuses it, so
    # it never leaves the browser (and the logo hides itself). Nothing else may try.
    refused = [r.url for r in sent if r.blocked == "csp"]
    assert refused == [REDOC_LOGO] or not refused, refused
    tried = elsewhere([r.url for r in sent if r.blocked != "csp"], origin)
    assert not tried, f"requests to other hosts: {tried}"
    assert urlsplit(driver.current_url).netloc == urlsplit(origin).netloc
    errors = [e for e in console_errors(driver) if not (refused and REDOC_LOGO in e)]
    assert not errors, errors
