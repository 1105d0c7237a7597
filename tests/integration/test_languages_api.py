"""The API in zh-CN and en (docs/languages.md): `GET /v1/words/events`, the schema's
labels, the describe route and the template preview choose their language from the
request's `locale`, else `Accept-Language`, else en; a directory entry's `locale` is
checked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from leadflow.bootstrap import open_store
from leadflow.settings import Settings
from store.rulebook import default_directory_document, default_ruleset_document

ADMIN = {"Authorization": "Bearer lf_test_admin"}
CHINESE = {**ADMIN, "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_event_words_come_in_the_language_asked(client: TestClient, settings: Settings) -> None:
    store = open_store(settings)
    reader = {"Authorization": f"Bearer {store.keys.create(['read'])}"}
    store.close()
    chinese = client.get("/v1/words/events", params={"locale": "zh-CN"}, headers=reader)
    assert chinese.status_code == 200, chinese.text
    words = chinese.json()
    assert words["locale"] == "zh-CN"
    assert words["events"]["lead.followed_up"] == "已跟进"
    assert words["events"]["lead.returned_to_pool"] == "退回公海"
    assert words["kinds"]["wechat"] == "微信"
    assert words["stages"]["won"] == "赢单"
    assert words["pool_reasons"]["idle_7d"] == "7 天未跟进"
    # Cacheable by the browser, per language.
    assert "max-age" in chinese.headers["cache-control"]
    assert chinese.headers["vary"] == "Accept-Language"

    by_header = client.get("/v1/words/events", headers={**reader, "Accept-Language": "zh"})
    assert by_header.json() == words
    english = client.get("/v1/words/events", headers=reader).json()
    assert english["locale"] == "en"
    assert english["events"]["lead.returned_to_pool"] == "Back to the public pool"
    # The query wins over the header.
    asked = client.get("/v1/words/events", params={"locale": "en"}, headers=CHINESE)
    assert asked.json()["locale"] == "en"


def test_a_language_leadflow_does_not_speak_is_refused(client: TestClient) -> None:
    answer = client.get("/v1/words/events", params={"locale": "fr"}, headers=ADMIN)
    assert answer.status_code == 422
    assert client.get("/v1/words/events").status_code == 401


def test_the_schema_labels_follow_accept_language(client: TestClient) -> None:
    chinese = client.get("/v1/rulesets/schema", headers=CHINESE).json()
    assert chinese["labels"]["events"]["lead.captured"] == "新线索进入"
    assert chinese["labels"]["variables"]["region"] == "地区"
    english = client.get("/v1/rulesets/schema", headers=ADMIN).json()
    assert english["labels"]["events"]["lead.captured"] == "a lead arrives"
    assert english["variables"] == chinese["variables"]  # only the words change


def test_describe_words_the_candidate_in_the_language_asked(client: TestClient) -> None:
    candidate = default_ruleset_document()
    chinese = client.post(
        "/v1/rulesets/describe", json={"candidate": candidate, "locale": "zh-CN"}, headers=ADMIN
    )
    assert chinese.status_code == 200, chinese.text
    sentences = {s["id"]: s["sentence"] for s in chinese.json()["candidate"]}
    assert (
        sentences["remind"]
        == "当计时器 first follow up 到期时：用消息 follow-up-overdue 通知线索负责人。"
    )
    by_header = client.post("/v1/rulesets/describe", json={"candidate": candidate}, headers=CHINESE)
    assert by_header.json() == chinese.json()
    # The body's locale wins over the header.
    english = client.post(
        "/v1/rulesets/describe", json={"candidate": candidate, "locale": "en"}, headers=CHINESE
    )
    english_sentences = {s["id"]: s["sentence"] for s in english.json()["candidate"]}
    assert english_sentences["remind"].startswith("When the first follow up timer runs out")
    # As the console asks: `?locale=` (and its header); the query wins over the header.
    by_query = client.post(
        "/v1/rulesets/describe",
        params={"locale": "zh-CN"},
        json={"candidate": candidate},
        headers={**ADMIN, "Accept-Language": "en"},
    )
    assert by_query.json() == chinese.json()
    bad = client.post(
        "/v1/rulesets/describe", json={"candidate": candidate, "locale": "de"}, headers=ADMIN
    )
    assert bad.status_code == 422
    assert [d["path"] for d in bad.json()["error"]["details"]] == ["/locale"]


def test_a_built_in_template_previews_in_the_language_its_message_goes_in(
    client: TestClient,
) -> None:
    body = {"template_id": "follow-up-overdue", "locale": "zh-CN"}
    answer = client.post("/v1/rulesets/preview-template", json=body, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["locale"] == "zh-CN"
    assert preview["subject"] == "跟进超时提醒：Ann Lee（Acme Trading Co）"
    # The sample lead was captured at 06:30 UTC: 14:30 on the sales floor's clock.
    assert "线索进入时间：2026年12月7日 14:30" in preview["body"]
    english = client.post(
        "/v1/rulesets/preview-template",
        json={"template_id": "follow-up-overdue", "locale": "en"},
        headers=ADMIN,
    ).json()
    assert english["subject"] == "First follow-up overdue: Ann Lee (Acme Trading Co)"
    assert "(captured 2026-12-07 14:30)" in english["body"]
    # No locale: LEADFLOW_LOCALE, the language messages go out in (zh-CN by default).
    default = client.post(
        "/v1/rulesets/preview-template", json={"template_id": "welcome"}, headers=ADMIN
    ).json()
    assert (default["locale"], default["subject"]) == ("zh-CN", "Ann Lee，您好！感谢关注")
    # The console's language, by query or header, comes before the setting.
    by_query = client.post(
        "/v1/rulesets/preview-template",
        params={"locale": "en"},
        json={"template_id": "welcome"},
        headers=ADMIN,
    ).json()
    by_header = client.post(
        "/v1/rulesets/preview-template",
        json={"template_id": "welcome"},
        headers={**ADMIN, "Accept-Language": "en-US,en;q=0.9"},
    ).json()
    assert (by_query["locale"], by_query["subject"]) == ("en", "Welcome, Ann Lee")
    assert by_header == by_query
    both = client.post(
        "/v1/rulesets/preview-template",
        json={"template_id": "welcome", "template": {"subject": "x", "body": "y"}},
        headers=ADMIN,
    )
    assert both.status_code == 422


def test_a_directory_entry_may_name_its_language(client: TestClient) -> None:
    doc = default_directory_document()
    doc["reps"][0]["locale"] = "en"
    doc["people"][0]["locale"] = "zh-CN"
    assert client.put("/v1/directory", json=doc, headers=ADMIN).status_code == 200
    doc["reps"][1]["locale"] = "zh"
    refused = client.put("/v1/directory", json=doc, headers=ADMIN)
    assert refused.status_code == 422
    assert [d["path"] for d in refused.json()["error"]["details"]] == ["/reps/1/locale"]


def finished_replay(client: TestClient, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        body: dict[str, Any] = client.get(location, headers=ADMIN).json()
        if body["status"] not in ("queued", "running", "cancelling"):
            return body
        assert time.monotonic() < deadline, f"replay still {body['status']} after 60 s"
        time.sleep(0.05)


def test_a_replay_summary_is_in_the_language_it_was_asked_in(client: TestClient) -> None:
    posted = client.post(
        "/v1/replays", json={"ruleset": default_ruleset_document()}, headers=CHINESE
    )
    assert posted.status_code == 202, posted.text
    replay = finished_replay(client, posted.headers["location"])
    assert replay["status"] == "succeeded", replay["error"]
    assert replay["request"]["locale"] == "zh-CN"  # the language chosen, shown back
    assert replay["result"]["summary"] == [
        "全部历史记录：候选规则集对回放的 0 条线索没有任何改变。"
    ]
    english = client.post(
        "/v1/replays",
        json={"ruleset": default_ruleset_document(), "locale": "en"},
        headers=CHINESE,
    )
    replay = finished_replay(client, english.headers["location"])
    assert replay["result"]["summary"] == [
        "Over all recorded history: the candidate would change nothing for the 0 leads replayed."
    ]
