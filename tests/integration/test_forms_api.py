"""Form documents over HTTP (docs/forms.md): publish, version, activate, validate, on
SQLite and PostgreSQL; bad documents are refused with every error by JSON Pointer and
nothing is written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from forms_support import ADMIN, contact_form

from api.app import create_app
from leadflow.bootstrap import Store
from leadflow.settings import Settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def read_key(client: TestClient) -> dict[str, str]:
    made = client.post("/v1/keys", json={"scopes": ["read"]}, headers=ADMIN).json()
    return {"Authorization": f"Bearer {made['key']}"}


def test_publish_version_activate_and_roll_back(client: TestClient) -> None:
    first = client.post("/v1/forms", json=contact_form(), headers=ADMIN)
    assert first.status_code == 201 and first.json() == {"form_id": "contact-us", "version": 1}
    # The first version of a new form is live at once; later ones wait for activation.
    changed = contact_form(title={"en": "Talk to us"})
    assert client.post("/v1/forms", json=changed, headers=ADMIN).json()["version"] == 2
    reader = read_key(client)
    active = client.get("/v1/forms/contact-us", headers=reader).json()
    assert active["version"] == 1 and active["active"] is True
    assert active["form"]["title"] == {"en": "Contact us", "zh-CN": "联系我们"}
    activated = client.post("/v1/forms/contact-us/versions/2/activate", headers=ADMIN)
    assert activated.json() == {"form_id": "contact-us", "active_version": 2}
    assert client.get("/v1/forms/contact-us", headers=reader).json()["form"]["title"] == {
        "en": "Talk to us"
    }
    versions = client.get("/v1/forms/contact-us/versions", headers=reader).json()
    assert versions["active_version"] == 2
    assert [(v["version"], v["active"]) for v in versions["versions"]] == [(1, False), (2, True)]
    assert client.get("/v1/forms/contact-us/versions/1", headers=reader).json()["version"] == 1
    # Rollback is activating the earlier version.
    client.post("/v1/forms/contact-us/versions/1/activate", headers=ADMIN)
    listing = client.get("/v1/forms", headers=reader).json()
    assert listing == {
        "forms": [
            {
                "form_id": "contact-us",
                "name": "Contact us",
                "active_version": 1,
                "latest_version": 2,
            }
        ]
    }


def test_a_form_without_an_id_gets_one(client: TestClient) -> None:
    document = contact_form()
    del document["id"]
    published = client.post("/v1/forms", json=document, headers=ADMIN).json()
    assert published["form_id"].startswith("form-") and published["version"] == 1
    assert client.get(f"/v1/forms/{published['form_id']}", headers=ADMIN).status_code == 200


def test_read_keys_read_and_only_admin_keys_write(client: TestClient) -> None:
    reader = read_key(client)
    refused = client.post("/v1/forms", json=contact_form(), headers=reader)
    assert refused.status_code == 403
    assert client.post("/v1/forms", json=contact_form()).status_code == 401
    assert client.get("/v1/forms", headers=reader).json() == {"forms": []}
    assert client.post("/v1/forms/validate", json=contact_form(), headers=reader).json() == {
        "valid": True,
        "errors": [],
    }


def test_unknown_forms_and_versions_are_404(client: TestClient) -> None:
    client.post("/v1/forms", json=contact_form(), headers=ADMIN)
    for path in (
        "/v1/forms/nope",
        "/v1/forms/nope/versions",
        "/v1/forms/contact-us/versions/9",
        "/v1/forms/contact-us/versions/2147483648",
        "/v1/forms/NOT%20AN%20ID",
    ):
        answer = client.get(path, headers=ADMIN)
        assert answer.status_code in (404, 422), path
        assert "error" in answer.json()
    assert client.post("/v1/forms/contact-us/versions/3/activate", headers=ADMIN).status_code == 404
    assert client.post("/v1/forms/nope/versions/1/activate", headers=ADMIN).status_code == 404


BAD_DOCUMENTS = [
    (contact_form(id="Bad Id!"), "/id"),
    (contact_form(fields=[]), "/fields"),
    (contact_form(title={"fr": "Bonjour"}), "/title/fr"),
    (contact_form(unknown=1), "/unknown"),
    (contact_form(min_fill_seconds=-1), "/min_fill_seconds"),
    (contact_form(allowed_origins=["https://example.com/path"]), "/allowed_origins/0"),
    (contact_form(thank_you={"redirect_url": "javascript:alert(1)"}), "/thank_you/redirect_url"),
    (contact_form(thank_you={"message": "hi", "redirect_url": "https://x.example"}), "/thank_you"),
    (contact_form(consent={"version": "1"}), "/consent/text"),
]


def field_change(index: int, **changes: object) -> dict[str, object]:
    form = contact_form()
    form["fields"][index].update(changes)
    return form


BAD_DOCUMENTS += [
    (field_change(4, pattern="(a+)+\\1"), "/fields/4/pattern"),
    (field_change(4, pattern="(?=lookahead)"), "/fields/4/pattern"),
    (field_change(0, maps_to="colour"), "/fields/0/maps_to"),
    (field_change(0, maps_to="attributes.utm_source"), "/fields/0/maps_to"),
    (field_change(0, name="email"), "/fields/1/name"),
    (field_change(0, name="homepage"), "/fields/0/name"),
    (field_change(1, type="text"), "/fields/1/maps_to"),
    (field_change(5, maps_to="name"), "/fields/5/maps_to"),
    (field_change(3, options=[]), "/fields/3/options"),
    (field_change(0, max_length=201), "/fields/0/max_length"),
    (field_change(0, label="x" * 301), "/fields/0/label"),
    (field_change(0, label="bad\u0000label"), "/fields/0/label"),
]


@pytest.mark.parametrize(("document", "path"), BAD_DOCUMENTS)
def test_a_bad_document_is_refused_naming_the_field_and_nothing_is_written(
    client: TestClient, document: dict[str, object], path: str
) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    before = store.event_log.max_position()
    answer = client.post("/v1/forms", json=document, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    body = answer.json()["error"]
    assert body["code"] == "invalid_form"
    assert path in [d["path"] for d in body["details"]], body
    assert store.event_log.max_position() == before
    validated = client.post("/v1/forms/validate", json=document, headers=ADMIN).json()
    assert validated["valid"] is False and path in [e["path"] for e in validated["errors"]]


def test_every_error_of_a_document_is_listed_at_once(client: TestClient) -> None:
    document = contact_form(source="", fields=[{"name": "x", "type": "radio"}])
    answer = client.post("/v1/forms", json=document, headers=ADMIN).json()
    paths = {d["path"] for d in answer["error"]["details"]}
    assert {"/source", "/fields/0/type", "/fields/0/maps_to", "/fields/0/label"} <= paths


def test_a_document_that_is_not_an_object_or_not_json_is_refused(client: TestClient) -> None:
    assert client.post("/v1/forms", json=[1, 2], headers=ADMIN).status_code == 422
    malformed = client.post(
        "/v1/forms", content=b"{", headers={**ADMIN, "content-type": "application/json"}
    )
    assert malformed.status_code == 400
