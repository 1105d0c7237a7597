"""Public form submissions (docs/forms.md) on a real app and store: the hosted page, a
browser's urlencoded post and a script's JSON post, consent, and every abuse control
(honeypot, fill token and time, rate limit, size limits, captcha against a real local
verifier, origins). What is refused or dropped appends nothing."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from forms_support import ADMIN, aged_token, captures, contact_form, page_token
from pydantic import SecretStr

from api.app import create_app
from leadflow.bootstrap import Store
from leadflow.settings import Settings

if TYPE_CHECKING:
    from conftest import Receiver

FORM = "/f/contact-us"
THANKS = "感谢您。我们会联系您。"
SPAM = "leadflow_form_spam_dropped_total"
SUBMITTED = "leadflow_form_submissions_total"


def start(settings: Settings, **changes: Any) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=changes)))


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with start(settings) as test_client:
        assert test_client.post("/v1/forms", json=contact_form(), headers=ADMIN).status_code == 201
        yield test_client


def store_of(client: TestClient) -> Store:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    return store


def good_values(client: TestClient, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "full_name": "Ann Lee",
        "email": "Ann@Example.com",
        "mobile": "138 0013 8000",
        "size": "11-100",
        "order_ref": "AB1234",
        "newsletter": "on",
        "consent": "on",
        "homepage": "",
        "_lf_token": aged_token(client.app, "contact-us"),
        "page_url": "https://www.example.com/contact?utm_source=wechat",
        "referrer": "https://search.example/",
        "utm_source": "wechat",
        "utm_campaign": "spring-sale",
        "lang": "zh-CN",
    }
    values.update(changes)
    return values


def metric(client: TestClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            got = ",".join(sorted(line[len(name) + 1 : line.index("}")].split(",")))
            if got == wanted:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_the_page_renders_the_active_version_in_each_language(client: TestClient) -> None:
    page = client.get(FORM, headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert page.status_code == 200
    assert page.headers["cache-control"].startswith("no-store")
    assert "script-src 'none'" in page.headers["content-security-policy"]
    assert '<html lang="zh-CN">' in page.text and "联系我们" in page.text and "邮箱" in page.text
    assert "我同意被联系。" in page.text
    english = client.get(FORM + "?lang=en&utm_source=qr&campaign=expo").text
    assert "Contact us" in english and "I agree to be contacted." in english
    assert 'name="utm_source" value="qr"' in english and 'name="campaign" value="expo"' in english
    assert 'name="homepage"' in english and page_token(english)
    assert 'href="?lang=zh-CN&amp;campaign=expo&amp;utm_source=qr"' in english
    # Self-contained: no script, stylesheet or image from anywhere.
    assert not re.search(r"<(script|link|img)\b", english)
    assert client.get("/f/no-such-form").status_code == 404


def test_a_browser_post_appends_a_capture_with_utm_and_consent(client: TestClient) -> None:
    accepted = metric(client, SUBMITTED, form_id="contact-us", outcome="accepted")
    answer = client.post(FORM, data=good_values(client))
    assert answer.status_code == 200, answer.text
    assert "感谢您。我们会联系您。" in answer.text
    [(lead_id, data)] = captures(store_of(client))
    assert data["email"] == "ann@example.com" and data["phone"] == "+8613800138000"
    assert data["name"] == "Ann Lee" and data["company_size"] == "11-100"
    assert (data["source"], data["channel"], data["campaign_id"], data["form_id"]) == (
        "website",
        "form",
        "spring",
        "contact-us",
    )
    attributes = data["attributes"]
    assert attributes["utm_source"] == "wechat" and attributes["utm_campaign"] == "spring-sale"
    assert attributes["page_url"] == "https://www.example.com/contact?utm_source=wechat"
    assert attributes["referrer"] == "https://search.example/"
    assert attributes["consent"] == {
        "version": "2026-01",
        "text": "我同意被联系。",
        "language": "zh-CN",
    }
    assert attributes["newsletter"] is True and attributes["order_ref"] == "AB1234"
    assert attributes["landing"] == "home" and attributes["form_version"] == 1
    events = client.get(f"/v1/leads/{lead_id}/events", headers=ADMIN).json()
    assert events["events"][0]["type"] == "lead.captured"
    assert metric(client, SUBMITTED, form_id="contact-us", outcome="accepted") == accepted + 1


def test_the_pages_own_token_works_once_the_fill_time_has_passed(client: TestClient) -> None:
    token = page_token(client.get(FORM).text)
    guard = client.app.state.form_guard  # type: ignore[attr-defined]
    guard.clock = lambda: time.time() + 5  # the visitor took 5 s to fill the form in
    assert client.post(FORM, data=good_values(client, _lf_token=token)).status_code == 200
    assert len(captures(store_of(client))) == 1


def test_a_json_post_answers_json_and_a_repeat_of_the_same_page_appends_once(
    client: TestClient,
) -> None:
    values = good_values(client, consent=True, newsletter=False, lang="en")
    first = client.post(FORM, json=values)
    assert first.status_code == 200
    assert first.json() == {
        "received": True,
        "message": "Thanks, we will call you.",
        "redirect_url": None,
    }
    assert client.post(FORM, json=values).json() == first.json()
    [(_, data)] = captures(store_of(client))
    assert data["attributes"]["newsletter"] is False
    assert data["attributes"]["consent"]["text"] == "I agree to be contacted."


def test_a_redirect_form_sends_the_browser_to_its_thank_you_url(
    client: TestClient,
) -> None:
    redirecting = contact_form(thank_you={"redirect_url": "https://www.example.com/thanks"})
    client.post("/v1/forms", json=redirecting, headers=ADMIN)
    client.post("/v1/forms/contact-us/versions/2/activate", headers=ADMIN)
    answer = client.post(FORM, data=good_values(client), follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "https://www.example.com/thanks"
    as_json = client.post(FORM, json=good_values(client, email="bo@example.com")).json()
    assert as_json["redirect_url"] == "https://www.example.com/thanks"
    assert [d["attributes"]["form_version"] for _, d in captures(store_of(client))] == [2, 2]


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"consent": ""}, "/consent"),
        ({"email": "", "mobile": ""}, "/email"),
        ({"email": "not-an-email"}, "/email"),
        ({"mobile": "12"}, "/mobile"),
        ({"full_name": ""}, "/full_name"),
        ({"size": "huge"}, "/size"),
        ({"order_ref": "ab12"}, "/order_ref"),
        ({"order_ref": "AB12345"}, "/order_ref"),
        ({"full_name": "x" * 201}, "/full_name"),
        ({"full_name": "nul\u0000"}, "/full_name"),
    ],
)
def test_a_bad_submission_names_its_field_and_appends_nothing(
    client: TestClient, changes: dict[str, Any], path: str
) -> None:
    values = good_values(client, **changes)
    as_json = client.post(FORM, json=values)
    assert as_json.status_code == 422
    error = as_json.json()["error"]
    assert error["code"] == "invalid_submission"
    assert path in [d["path"] for d in error["details"]], error
    page = client.post(FORM, data=values)
    assert page.status_code == 422 and "text/html" in page.headers["content-type"]
    # The page comes back with the visitor's values and the error on the field.
    field = path.lstrip("/")
    assert f'aria-describedby="e-{field}"' in page.text
    assert 'value="Ann Lee"' in page.text or field == "full_name"
    assert captures(store_of(client)) == []


def test_every_fault_of_a_submission_is_named_at_once(client: TestClient) -> None:
    values = good_values(client, consent="", email="not-an-email", size="huge", full_name="")
    error = client.post(FORM, json=values).json()["error"]
    assert [d["path"] for d in error["details"]] == ["/full_name", "/size", "/consent", "/email"]
    assert captures(store_of(client)) == []


def test_json_values_of_the_wrong_kind_are_named(client: TestClient) -> None:
    answer = client.post(FORM, json=good_values(client, full_name=["Ann"], consent={"x": 1}))
    paths = {d["path"] for d in answer.json()["error"]["details"]}
    assert answer.status_code == 422 and {"/full_name", "/consent"} <= paths
    assert client.post(FORM, json=[1]).status_code == 422
    assert (
        client.post(FORM, content=b"{", headers={"content-type": "application/json"}).status_code
        == 400
    )
    assert client.post(FORM, content=b"x", headers={"content-type": "text/xml"}).status_code == 415
    assert captures(store_of(client)) == []


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"homepage": "https://spam.example"}, "honeypot"),
        ({"_lf_token": ""}, "token"),
        ({"_lf_token": "123.abc.forged"}, "token"),
        ({"_lf_token": "<script>"}, "token"),
    ],
)
def test_spam_is_dropped_counted_and_answered_like_a_success(
    client: TestClient, changes: dict[str, Any], reason: str
) -> None:
    counted = metric(client, SPAM, form_id="contact-us", reason=reason)
    values = good_values(client, **changes)
    dropped = client.post(FORM, json=values)
    assert dropped.status_code == 200
    assert dropped.json() == {"received": True, "message": THANKS, "redirect_url": None}
    page = client.post(FORM, data=values)
    assert page.status_code == 200 and "感谢您。我们会联系您。" in page.text
    assert captures(store_of(client)) == []
    assert metric(client, SPAM, form_id="contact-us", reason=reason) == counted + 2


def test_a_form_sent_sooner_than_its_fill_time_is_dropped(client: TestClient) -> None:
    counted = metric(client, SPAM, form_id="contact-us", reason="too_fast")
    token = page_token(client.get(FORM).text)  # and posted at once
    assert client.post(FORM, data=good_values(client, _lf_token=token)).status_code == 200
    assert captures(store_of(client)) == []
    assert metric(client, SPAM, form_id="contact-us", reason="too_fast") == counted + 1


def test_a_token_for_another_form_is_forged(client: TestClient) -> None:
    client.post("/v1/forms", json=contact_form(id="other"), headers=ADMIN)
    other = aged_token(client.app, "other")
    client.post(FORM, json=good_values(client, _lf_token=other))
    assert captures(store_of(client)) == []


def test_a_token_replayed_with_other_values_is_dropped(client: TestClient) -> None:
    counted = metric(client, SPAM, form_id="contact-us", reason="token_reused")
    token = aged_token(client.app, "contact-us")
    client.post(FORM, json=good_values(client, _lf_token=token))
    replayed = client.post(
        FORM, json=good_values(client, _lf_token=token, email="bot@spam.example")
    )
    assert replayed.status_code == 200 and replayed.json()["received"] is True
    assert [d["email"] for _, d in captures(store_of(client))] == ["ann@example.com"]
    assert metric(client, SPAM, form_id="contact-us", reason="token_reused") == counted + 1


def test_an_expired_page_is_sent_back_with_a_fresh_token(client: TestClient) -> None:
    old = aged_token(client.app, "contact-us", age=2 * 24 * 3600)
    page = client.post(FORM, data=good_values(client, _lf_token=old))
    assert page.status_code == 422 and page_token(page.text) != old
    assert client.post(FORM, json=good_values(client, _lf_token=old)).json()["error"]["code"] == (
        "form_expired"
    )
    assert captures(store_of(client)) == []


def test_an_address_over_the_rate_limit_gets_429_with_retry_after(settings: Settings) -> None:
    with start(settings, form_submissions_per_minute=3) as client:
        client.post("/v1/forms", json=contact_form(), headers=ADMIN)
        for n in range(3):
            assert (
                client.post(FORM, json=good_values(client, email=f"p{n}@example.com")).status_code
                == 200
            )
        refused = client.post(FORM, json=good_values(client, email="p9@example.com"))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json()["error"]["code"] == "too_many_submissions"
        assert len(captures(store_of(client))) == 3


def test_oversized_submissions_are_refused_before_they_are_read(client: TestClient) -> None:
    huge = good_values(client, full_name="x" * (70 * 1024))
    assert client.post(FORM, data=huge).status_code == 413
    many = "&".join(f"f{i}=1" for i in range(300))
    answer = client.post(
        FORM, content=many.encode(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 413
    assert captures(store_of(client)) == []


def test_hostile_paths_and_values_are_refused_or_escaped(client: TestClient) -> None:
    for path in ("/f/..%2F..%2Fetc", "/f/%00", "/f/" + "a" * 500, "/f/CONTACT-US"):
        assert client.get(path).status_code in (404, 422), path
        assert client.post(path, json={}).status_code in (404, 422), path
    page = client.get(FORM + '?utm_source="><script>alert(1)</script>&lang=xx').text
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
    # A value sent back on an error page is escaped too.
    echoed = client.post(FORM, data=good_values(client, full_name='"><img src=x>', email="bad"))
    assert '"><img' not in echoed.text
    assert captures(store_of(client)) == []


def test_posts_from_an_origin_the_form_does_not_allow_create_nothing(client: TestClient) -> None:
    evil = {"Origin": "https://evil.example"}
    refused = client.post(FORM, json=good_values(client), headers=evil)
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    assert (
        client.options(FORM, headers={**evil, "Access-Control-Request-Method": "POST"}).status_code
        == 403
    )
    allowed = {"Origin": "http://127.0.0.1:9"}
    preflight = client.options(FORM, headers={**allowed, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://127.0.0.1:9"
    assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
    accepted = client.post(FORM, json=good_values(client), headers=allowed)
    assert accepted.status_code == 200
    assert accepted.headers["access-control-allow-origin"] == "http://127.0.0.1:9"
    # The hosted page posts from the API's own origin.
    own = client.post(
        FORM,
        data=good_values(client, email="own@example.com"),
        headers={"Origin": "http://testserver"},
    )
    assert own.status_code == 200
    assert [d["email"] for _, d in captures(store_of(client))] == [
        "ann@example.com",
        "own@example.com",
    ]


def test_a_captcha_is_verified_with_the_provider(settings: Settings, receiver: Receiver) -> None:
    receiver.answer("/siteverify", 200, {"success": False})
    with start(
        settings,
        captcha_verify_url=receiver.base + "/siteverify",
        captcha_secret=SecretStr("captcha-secret"),
        captcha_site_key="site-key",
    ) as client:
        client.post("/v1/forms", json=contact_form(), headers=ADMIN)
        assert 'data-sitekey="site-key"' in client.get(FORM).text
        refused = client.post(FORM, data=good_values(client, **{"cf-turnstile-response": "bad"}))
        assert refused.status_code == 200  # dropped, answered like a success
        assert captures(store_of(client)) == []
        [asked] = receiver.requests
        assert b"secret=captcha-secret" in asked.body and b"response=bad" in asked.body
        receiver.answer("/siteverify", 200, {"success": True})
        client.post(FORM, json=good_values(client, captcha_token="good"))
        assert len(captures(store_of(client))) == 1
        # Without an answer the provider is not even asked.
        client.post(FORM, json=good_values(client, email="x@example.com"))
        assert len(receiver.requests) == 2 and len(captures(store_of(client))) == 1
        receiver.answer("/siteverify", 500, b"down")
        down = client.post(FORM, json=good_values(client, email="y@example.com", captcha_token="t"))
        assert down.status_code == 503 and down.json()["error"]["code"] == "captcha_unavailable"
        assert len(captures(store_of(client))) == 1


def test_replicas_sharing_the_bootstrap_key_accept_each_others_tokens(
    settings: Settings, tmp_path: Path
) -> None:
    other_dir = settings.model_copy(update={"data_dir": tmp_path / "replica"})
    with start(settings) as first, start(other_dir) as second:
        first_guard = first.app.state.form_guard  # type: ignore[attr-defined]
        second_guard = second.app.state.form_guard  # type: ignore[attr-defined]
        assert first_guard.secret == second_guard.secret
    alone = settings.model_copy(update={"bootstrap_admin_key": None, "data_dir": tmp_path / "a"})
    with start(alone) as once:
        secret = once.app.state.form_guard.secret  # type: ignore[attr-defined]
    assert (tmp_path / "a" / "form-secret").stat().st_mode & 0o777 == 0o600
    with start(alone) as again:  # a restart keeps the secret: open pages still submit
        assert again.app.state.form_guard.secret == secret  # type: ignore[attr-defined]
    assert secret != first_guard.secret
