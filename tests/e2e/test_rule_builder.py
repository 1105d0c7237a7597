"""The rule builder on /rulesets in headless Chromium against `leadflow dev`: a sales
director changes who gets the east website leads and the reclaim time by picking names and
numbers (no JSON typed), sees what history says about it in business terms and the change
in words, publishes and activates; the active ruleset is then the default one with exactly
those two changes. Also: an error shown on the field that caused it, and the JSON tab and
the forms following each other.

Screenshots go to `$LEADFLOW_ARTIFACTS` (default `artifacts/`); README's
docs/rule-builder-*.png are copies of them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from chromium import Browser, retype, start_chromium
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select
from test_console import ARTIFACTS, api_client, post, waited_for

if TYPE_CHECKING:
    from conftest import LeadflowDev

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(300)]

EAST_WEBSITE = 'details[data-rule="east-website"]'


@pytest.fixture(scope="module")
def director(shared_dev: LeadflowDev) -> Iterator[Browser]:
    """Two east website leads in history (both went to Li Wei), and Chromium signed in on
    /rulesets with the keyboard."""
    with api_client(shared_dev) as http:
        leads = [
            post(
                http,
                {
                    "type": "lead.captured",
                    "data": {"email": f"{n}@example.com", "source": "website", "region": "east"},
                },
            )["lead_id"]
            for n in ("amy", "ben")
        ]
        for lead_id in leads:
            waited_for(
                lambda lead_id=lead_id: (
                    True
                    if http.get(f"/v1/leads/{lead_id}").json()["owner"] == "rep-east-1"
                    else None
                ),
                "the east website leads assigned to Li Wei",
            )
    driver = start_chromium()
    browser = Browser(driver, shared_dev.api_url)
    try:
        browser.open("/rulesets")
        browser.wait(lambda d: d.find_element(By.ID, "api-key").is_displayed(), "the sign-in")
        browser.press(shared_dev.admin_key, Keys.ENTER)
        browser.wait(
            lambda d: browser.js("return document.body.dataset.builderReady"), "the builder"
        )
        yield browser
    finally:
        driver.quit()


@pytest.fixture
def browser(director: Browser) -> Iterator[Browser]:
    director.console_errors()
    director.expected_errors = []
    yield director
    errors = director.console_errors()
    assert not errors, f"errors in the browser console: {errors}"


def find(browser: Browser, css: str) -> WebElement:
    return browser.wait(lambda d: d.find_element(By.CSS_SELECTOR, css), css)


def click(browser: Browser, css: str) -> WebElement:
    element = find(browser, css)
    browser.js("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()
    return element


def draft(browser: Browser) -> dict[str, Any]:
    text: str = browser.js("return document.getElementById('ruleset-editor').value")
    document: dict[str, Any] = json.loads(text)
    return document


def shot(browser: Browser, name: str, css: str | None = None) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if css:
        browser.js("document.querySelector(arguments[0]).scrollIntoView()", css)
    assert browser.driver.save_screenshot(str(ARTIFACTS / f"rule-builder-{name}.png"))


def test_a_sales_director_changes_a_rep_and_a_timer_without_json(
    browser: Browser, shared_dev: LeadflowDev
) -> None:
    with api_client(shared_dev) as http:
        default = http.get("/v1/rulesets/active").json()
    assert default["version"] == 1

    # Rules tab: open the east website rule, pick Zhang Min instead of Li Wei.
    click(browser, f"{EAST_WEBSITE} summary")
    rep = find(browser, f'{EAST_WEBSITE} select[data-path$="/actions/0/params/rep"]')
    assert Select(rep).first_selected_option.text == "Li Wei (East)"
    Select(rep).select_by_visible_text("Zhang Min (East)")
    browser.wait(lambda d: "assign to Zhang Min" in browser.text(EAST_WEBSITE), "the sentence")
    shot(browser, "rule", EAST_WEBSITE)

    # Timers tab: the reclaim timer runs out after 72 hours instead of 48.
    click(browser, "#tab-timers")
    timer = 'li[data-timer="reclaim"]'
    amount = find(browser, f"{timer} input.amount")
    assert amount.get_attribute("value") == "48"
    assert Select(find(browser, f"{timer} select[id$='-unit']")).first_selected_option.text == (
        "hours"
    )
    retype(amount, "72")
    browser.wait(lambda d: "runs out 72 hours after it starts" in browser.text(timer), "72 hours")
    shot(browser, "timer", timer)

    # The JSON tab shows the same draft.
    click(browser, "#tab-json")
    document = draft(browser)
    by_id = {r["id"]: r for r in document["rules"]}
    assert by_id["east-website"]["actions"][0]["params"]["rep"] == "rep-east-2"
    assert {t["id"]: t["after"] for t in document["timers"]}["reclaim"] == "PT72H"
    click(browser, "#tab-rules")

    # What history says, in business terms; and the change in words.
    click(browser, "#run-replay")
    browser.wait(lambda d: browser.text("#replay-status") == "Replay finished.", "the replay")
    summary = browser.text("#replay-summary")
    assert summary.startswith("Last 30 days (")  # the period checked comes first
    assert "2 leads would go to Zhang Min instead of Li Wei." in summary
    click(browser, "#show-diff")
    rule_row = 'tr[data-subject="rule"][data-id="east-website"]'
    timer_row = 'tr[data-subject="timer"][data-id="reclaim"]'
    browser.wait(lambda d: browser.text(f"#diff-words {rule_row}"), "the words diff")
    changed = browser.js(
        "return [...document.querySelectorAll('#diff-words tr.change')].map(r => r.dataset.id)"
    )
    assert sorted(changed) == ["east-website", "reclaim"]
    assert "Zhang Min" in browser.text(f"#diff-words {rule_row} td:last-child")
    assert browser.text(f"#diff-words {rule_row} .differences") == (
        "assigns to Zhang Min instead of Li Wei"
    )
    assert browser.text(f"#diff-words {timer_row} .differences") == (
        "runs out after 72 hours instead of 48 hours"
    )
    shot(browser, "compare", "#diff-view")
    shot(browser, "history", "#replay-view")

    # Publish, then activate what was published.
    click(browser, "#publish")
    browser.wait(lambda d: "Published version 2" in browser.text("#rulesets-status"), "published")
    click(browser, "#activate-published")
    browser.wait(lambda d: "Activated version 2" in browser.text("#rulesets-status"), "activated")

    expected = copy.deepcopy(default["ruleset"])
    [rule] = [r for r in expected["rules"] if r["id"] == "east-website"]
    rule["actions"][0]["params"]["rep"] = "rep-east-2"
    [reclaim] = [t for t in expected["timers"] if t["id"] == "reclaim"]
    reclaim["after"] = "PT72H"
    with api_client(shared_dev) as http:
        active = http.get("/v1/rulesets/active").json()
    assert active["version"] == 2
    assert active["ruleset"] == expected


def test_errors_show_on_their_field_and_the_json_tab_follows_the_forms(browser: Browser) -> None:
    click(browser, "#tab-rules")
    if not find(browser, EAST_WEBSITE).get_attribute("open"):
        click(browser, f"{EAST_WEBSITE} summary")
    index = browser.js(
        "return document.querySelector(arguments[0]).dataset.path.split('/')[2]", EAST_WEBSITE
    )
    path = f"/rules/{index}/id"
    rule_id = find(browser, f'{EAST_WEBSITE} input[data-path="{path}"]')
    retype(rule_id, "")

    # The error is beside the field, described to assistive technology, and listed.
    message = browser.wait(
        lambda d: d.find_element(
            By.CSS_SELECTOR, f'{EAST_WEBSITE} input[data-path="{path}"] + .field-error'
        ),
        "the error beside the rule id",
    )
    field = find(browser, f'{EAST_WEBSITE} input[data-path="{path}"]')
    assert field.get_attribute("aria-invalid") == "true"
    assert message.get_attribute("id") in field.get_attribute("aria-describedby").split()
    assert message.text
    listed = find(browser, f'#builder-errors li[data-path="{path}"]')
    assert message.text in listed.text
    shot(browser, "error", EAST_WEBSITE)
    # The list's button takes the keyboard to the field.
    listed.find_element(By.TAG_NAME, "button").click()
    assert browser.active() == field
    retype(field, "east-website")
    browser.wait(
        lambda d: not d.find_elements(By.CSS_SELECTOR, ".builder .field-error"), "the error gone"
    )

    # Moving a rule up swaps its priority with the rule above it; the focus stays on it.
    east_team = 'details[data-rule="east-team"]'
    click(browser, f"{east_team} summary")
    team_index = browser.js(
        "return document.querySelector(arguments[0]).dataset.path.split('/')[2]", east_team
    )
    up = f'{east_team} button[aria-label="Move east-team up"]'
    move_up = find(browser, up).get_attribute("id")
    click(browser, up)
    browser.wait(lambda d: draft(browser)["rules"][int(team_index)]["priority"] == 100, "moved up")
    assert draft(browser)["rules"][int(index)]["priority"] == 90
    order = browser.js(
        "return [...document.querySelectorAll('#panel-rules details')].map(d => d.dataset.rule)"
    )
    assert order.index("east-team") == order.index("east-website") - 1
    assert browser.active().get_attribute("id") == move_up
    browser.press(Keys.TAB)  # back down, from the keyboard: Move down is next to Move up
    assert browser.active().text == "Move down"
    browser.press(Keys.ENTER)
    browser.wait(lambda d: draft(browser)["rules"][int(index)]["priority"] == 100, "moved back")

    # A JSON edit shows in the forms; a text that does not parse locks them.
    click(browser, "#tab-json")
    document = draft(browser)
    document["rules"][int(index)]["description"] = "Edited as JSON"
    text = json.dumps(document, indent=2)
    set_text = (
        "const e = document.getElementById('ruleset-editor'); e.value = arguments[0];"
        "e.dispatchEvent(new Event('input'))"
    )
    browser.js(set_text, text[:-3])
    assert find(browser, "#builder-locked").is_displayed()
    browser.js(set_text, text)
    assert not find(browser, "#builder-locked").is_displayed()
    click(browser, "#tab-rules")
    description = find(browser, f'{EAST_WEBSITE} input[data-path="/rules/{index}/description"]')
    assert description.get_attribute("value") == "Edited as JSON"

    # A new template previews on the sample lead as the server renders it, field buttons
    # inserting placeholders where the caret is.
    click(browser, "#tab-templates")
    click(browser, "#add-template")
    body = find(browser, '#panel-templates textarea[data-path="/templates/template-1/body"]')
    body.send_keys(Keys.CONTROL, Keys.END)
    click(browser, '#panel-templates button[aria-label="Insert company"]')
    browser.wait(
        lambda d: "Hi Ann Lee, Acme Trading Co" in browser.text("#panel-templates .preview"),
        "the preview",
    )
    assert browser.text("#panel-templates .preview-subject") == "Subject: Hello Ann Lee"
    assert draft(browser)["templates"]["template-1"]["body"] == "Hi {name},\n\n{company}"
    shot(browser, "template", "#panel-templates")


def test_durations_read_as_a_number_and_unit_and_write_as_iso_8601(browser: Browser) -> None:
    found = browser.driver.execute_async_script(
        "const done = arguments[0];"
        "import('/console/static/duration-input.js').then(m => done({"
        " parts: ['PT72H', 'P7D', 'P14D', 'P1W', 'PT90M', 'P1DT12H', 'PT2S', 'PT0S', 'P1M']"
        "   .map(t => m.durationParts(t)),"
        " iso: [[72, 'hours'], [7, 'days'], [2, 'weeks'], [30, 'minutes'], [0, 'hours']]"
        "   .map(([n, u]) => m.isoDuration(n, u)),"
        "}))"
    )
    assert found["parts"] == [
        {"amount": 72, "unit": "hours"},
        {"amount": 7, "unit": "days"},
        {"amount": 14, "unit": "days"},
        {"amount": 1, "unit": "weeks"},
        {"amount": 90, "unit": "minutes"},
        {"amount": 36, "unit": "hours"},
        {"amount": 2, "unit": "seconds"},
        {"amount": 0, "unit": "minutes"},
        None,
    ]
    assert found["iso"] == ["PT72H", "P7D", "P2W", "PT30M", "PT0S"]
