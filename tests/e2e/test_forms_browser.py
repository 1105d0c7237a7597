"""Hosted forms in headless Chromium against `leadflow dev` (docs/forms.md): a visitor
fills and submits the hosted page (from a QR-code style link with UTM tags and a
campaign), and the embedded snippet on a page served from another origin (another port);
each lead appears with its UTM fields. The same snippet on an origin the form does not
allow, and a submission whose honeypot is filled, create nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from chromium import start_chromium
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from support import eventually

if TYPE_CHECKING:
    from conftest import LeadflowDev

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(300)]

WAIT_SECONDS = 30.0


@pytest.fixture(scope="module")
def host_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """Another origin: a plain static site on a port of its own, serving the files of a
    directory the tests write (the customer's landing pages)."""
    root = tmp_path_factory.mktemp("host-site")
    handler = partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def admin(shared_dev: LeadflowDev) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=shared_dev.api_url,
        headers={"Authorization": f"Bearer {shared_dev.admin_key}"},
        timeout=30,
    ) as http:
        yield http


@pytest.fixture
def driver() -> Iterator[webdriver.Chrome]:
    chrome = start_chromium()
    try:
        yield chrome
    finally:
        chrome.quit()


def publish(admin: httpx.Client, form_id: str, source: str, origins: list[str]) -> None:
    document = {
        "id": form_id,
        "title": {"en": "Book a demo", "zh-CN": "预约演示"},
        "source": source,
        "channel": "web",
        "fields": [
            {
                "name": "full_name",
                "type": "text",
                "maps_to": "name",
                "required": True,
                "label": {"en": "Name", "zh-CN": "姓名"},
            },
            {
                "name": "email",
                "type": "email",
                "maps_to": "email",
                "required": True,
                "label": {"en": "Email", "zh-CN": "邮箱"},
            },
            {
                "name": "size",
                "type": "select",
                "maps_to": "company_size",
                "label": {"en": "Company size", "zh-CN": "公司规模"},
                "options": [
                    {"value": "1-10", "label": "1-10"},
                    {"value": "11-100", "label": "11-100"},
                ],
            },
        ],
        "consent": {
            "required": True,
            "version": "v1",
            "text": {"en": "You may contact me.", "zh-CN": "我同意被联系。"},
        },
        "thank_you": {"message": {"en": "Thanks! We will be in touch.", "zh-CN": "感谢您。"}},
        "allowed_origins": origins,
        "min_fill_seconds": 1,
    }
    answer = admin.post("/v1/forms", json=document)
    assert answer.status_code == 201, answer.text


def captures_of(admin: httpx.Client, source: str) -> list[dict[str, Any]]:
    """The captures of every lead of `source`, once the projector has them."""
    leads = admin.get("/v1/leads", params={"source": source}).json()["items"]
    found = []
    for lead in leads:
        events = admin.get(f"/v1/leads/{lead['lead_id']}/events").json()["events"]
        found.extend(e["data"] for e in events if e["type"] == "lead.captured")
    return found


def wait_for(driver: webdriver.Chrome, css: str) -> Any:
    return WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: (
            d.find_element(By.CSS_SELECTOR, css) if d.find_elements(By.CSS_SELECTOR, css) else None
        )
    )


def fill(driver: webdriver.Chrome, scope: str, name: str, email: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f"{scope} [name=full_name]").send_keys(name)
    driver.find_element(By.CSS_SELECTOR, f"{scope} [name=email]").send_keys(email)
    driver.find_element(
        By.CSS_SELECTOR, f"{scope} select[name=size] option[value='11-100']"
    ).click()
    driver.find_element(By.CSS_SELECTOR, f"{scope} [name=consent]").click()
    # People take longer than the form's minimum fill time; a script posting at once is spam.
    time.sleep(1.5)


def test_a_visitor_submits_the_hosted_page(
    shared_dev: LeadflowDev, admin: httpx.Client, driver: webdriver.Chrome
) -> None:
    publish(admin, "hosted-demo", "hosted-e2e", [])
    driver.get(
        f"{shared_dev.api_url}/f/hosted-demo?lang=zh-CN&campaign=expo-2026&channel=booth"
        "&utm_source=qr&utm_medium=poster"
    )
    assert "预约演示" in driver.find_element(By.TAG_NAME, "h1").text
    # Mobile first: on a phone's width nothing runs off the side and inputs span it.
    driver.set_window_size(390, 844)
    width = driver.execute_script("return document.documentElement.clientWidth")
    assert driver.execute_script("return document.documentElement.scrollWidth") <= width
    field = driver.find_element(By.CSS_SELECTOR, "[name=email]")
    assert field.size["width"] >= width * 0.8
    fill(driver, "form", "王小明", "Wang@Example.com")
    # Without consent the browser keeps the form (required checkbox); with it, it posts.
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(driver, "main h1")
    eventually(lambda: "感谢您。" in driver.page_source or None, "the thank-you page", WAIT_SECONDS)
    [data] = eventually(
        lambda: captures_of(admin, "hosted-e2e") or None, "the lead from the page", WAIT_SECONDS
    )
    assert data["email"] == "wang@example.com" and data["name"] == "王小明"
    assert (data["campaign_id"], data["channel"], data["form_id"]) == (
        "expo-2026",
        "booth",
        "hosted-demo",
    )
    attributes = data["attributes"]
    assert (attributes["utm_source"], attributes["utm_medium"]) == ("qr", "poster")
    assert attributes["consent"]["text"] == "我同意被联系。"
    assert attributes["page_url"].endswith("utm_medium=poster")


def test_a_filled_honeypot_is_answered_like_a_success_and_creates_nothing(
    shared_dev: LeadflowDev, admin: httpx.Client, driver: webdriver.Chrome
) -> None:
    publish(admin, "honeypot-demo", "honeypot-e2e", [])
    driver.get(f"{shared_dev.api_url}/f/honeypot-demo?lang=en")
    fill(driver, "form", "Bot", "bot@spam.example")
    driver.execute_script("document.querySelector('[name=homepage]').value = 'http://spam.example'")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    eventually(
        lambda: "Thanks! We will be in touch." in driver.page_source or None,
        "the thank-you page",
        WAIT_SECONDS,
    )
    metrics = httpx.get(shared_dev.api_url + "/metrics").text
    assert (
        'leadflow_form_spam_dropped_total{form_id="honeypot-demo",reason="honeypot"} 1.0' in metrics
    )
    assert captures_of(admin, "honeypot-e2e") == []


def landing_page(root: Path, name: str, api_url: str, form_id: str) -> None:
    (root / name).write_text(
        "<!doctype html><html><head><meta charset=utf-8><title>Landing</title></head><body>"
        "<h1>Our product</h1><div id=signup></div>"
        f'<script src="{api_url}/f/{form_id}.js" data-target="#signup" data-lang="en" async>'
        "</script>"
        "</body></html>",
        encoding="utf-8",
    )


def test_the_snippet_posts_from_an_allowed_origin_only(
    shared_dev: LeadflowDev,
    admin: httpx.Client,
    driver: webdriver.Chrome,
    host_site: tuple[Path, int],
) -> None:
    root, port = host_site
    # 127.0.0.1 is allowed; localhost, the same server under another name, is another origin.
    publish(admin, "embed-demo", "embed-e2e", [f"http://127.0.0.1:{port}"])
    landing_page(root, "landing.html", shared_dev.api_url, "embed-demo")

    driver.get(f"http://127.0.0.1:{port}/landing.html?utm_source=wechat&utm_campaign=spring")
    wait_for(driver, "#signup .leadflow-form form")
    fill(driver, "#signup", "Li Lei", "li.lei@example.com")
    driver.find_element(By.CSS_SELECTOR, "#signup button[type=submit]").click()
    thanks = wait_for(driver, "#signup .lf-thanks")
    assert thanks.text == "Thanks! We will be in touch."
    [data] = eventually(
        lambda: captures_of(admin, "embed-e2e") or None, "the lead from the snippet", WAIT_SECONDS
    )
    assert data["email"] == "li.lei@example.com" and data["company_size"] == "11-100"
    assert data["attributes"]["utm_source"] == "wechat"
    assert data["attributes"]["utm_campaign"] == "spring"
    assert data["attributes"]["page_url"].startswith(f"http://127.0.0.1:{port}/landing.html")

    driver.get(f"http://localhost:{port}/landing.html?utm_source=elsewhere")
    wait_for(driver, "#signup .leadflow-form form")
    fill(driver, "#signup", "Mallory", "mallory@example.com")
    driver.find_element(By.CSS_SELECTOR, "#signup button[type=submit]").click()
    failed = wait_for(driver, "#signup .lf-error[role=alert]")
    eventually(lambda: failed.text or None, "the snippet's failure message", WAIT_SECONDS)
    assert failed.text == "The form could not be sent; please try again."
    # The browser was refused at the preflight (no CORS headers): nothing was posted.
    assert [d["email"] for d in captures_of(admin, "embed-e2e")] == ["li.lei@example.com"]
