"""`POST /v1/rulesets/preview-template`: the rule builder's live preview is the real
rendering (placeholders filled from a sample lead, the owner named from the directory,
lead data defanged), refuses a bad request naming the field, and needs a read key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from leadflow.bootstrap import open_store
from leadflow.settings import Settings

ADMIN = {"Authorization": "Bearer lf_test_admin"}
PREVIEW = "/v1/rulesets/preview-template"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_a_template_renders_on_the_sample_lead(client: TestClient, settings: Settings) -> None:
    store = open_store(settings)
    reader = {"Authorization": f"Bearer {store.keys.create(['read'])}"}
    store.close()
    template = {
        "subject": "Welcome, {name} from {company}",
        "body": "Your rep is {owner_name} ({team_name}). {nope} https://example.com/o?l={lead_id}",
    }
    answer = client.post(PREVIEW, json={"template": template}, headers=reader)
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["subject"] == "Welcome, Ann Lee from Acme Trading Co"
    lead_id = preview["fields"]["lead_id"]
    # The owner is named from the default directory; an unknown placeholder stays visible.
    assert preview["body"] == (
        f"Your rep is Li Wei (East). {{nope}} https://example.com/o?l={lead_id}"
    )
    assert preview["links"] == [f"https://example.com/o?l={lead_id}"]
    assert {"name", "company", "owner_name", "lead_url", "unsubscribe_url"} <= set(
        preview["fields"]
    )


def test_lead_fields_replace_the_sample_and_are_defanged(client: TestClient) -> None:
    body = {
        "template": {
            "subject": "Hi {name}",
            "body": "From {company}",
            "subject_variants": {"B": "Hello {name}"},
        },
        "lead": {"name": "Bo", "company": "evil.example"},
        "variant": "B",
    }
    preview = client.post(PREVIEW, json=body, headers=ADMIN).json()
    assert (preview["subject"], preview["body"]) == ("Hello Bo", "From evil[.]example")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"template": {"subject": "x"}}, "/template/body"),
        ({"template": {"subject": "x", "body": "y", "colour": 1}}, "/template/colour"),
        ({"template": {"subject": "x", "body": "y"}, "lead": {"name": ["Bo"]}}, "/lead/name"),
        ({}, "/template"),
    ],
)
def test_a_bad_request_is_refused_naming_the_field(
    client: TestClient, body: dict[str, object], path: str
) -> None:
    answer = client.post(PREVIEW, json=body, headers=ADMIN)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_preview_request"
    assert path in [d["path"] for d in error["details"]]


def test_the_preview_needs_a_key(client: TestClient, settings: Settings) -> None:
    template = {"template": {"subject": "x", "body": "y"}}
    assert client.post(PREVIEW, json=template).status_code == 401
    store = open_store(settings)
    ingest = {"Authorization": f"Bearer {store.keys.create(['ingest'])}"}
    store.close()
    assert client.post(PREVIEW, json=template, headers=ingest).status_code == 403
