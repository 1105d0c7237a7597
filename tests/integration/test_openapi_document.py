"""The API's description as users get it: `docs/openapi.json` is what the app serves at
`/openapi.json` (regenerated with `make openapi`), every operation says its answers and
errors and the key it needs, and `/docs` and `/redoc` load nothing from another host.

The pages are served without a store (no lifespan): they, the description and the static
files need none. Swagger UI driven in a browser is `tests/e2e/test_api_docs.py`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.openapi_bodies import EVENT_EXAMPLES, openapi_json
from domain.events import parse_event
from leadflow.settings import Settings

DOCUMENT = Path(__file__).parents[2] / "docs" / "openapi.json"
REGENERATE = "make openapi (or: leadflow openapi --output docs/openapi.json)"
APP = create_app(Settings())
SERVED = APP.openapi()
CHECKED_IN: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
# What SPEC §9 lets anyone call: the health checks and the tracking links in emails.
UNAUTHENTICATED = {
    ("get", "/livez"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/t/o/{message_id}"),
    ("get", "/t/c/{message_id}"),
    ("get", "/t/u/{message_id}"),
    ("post", "/t/u/{message_id}"),
    ("post", "/v1/session"),  # signing in
    ("get", "/v1/session/providers"),
}
# The console's own session, by its cookie alone (docs/access.md).
SESSION_ONLY = {("get", "/v1/session"), ("patch", "/v1/session"), ("delete", "/v1/session")}


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }


def differences(checked_in: dict[str, Any], served: dict[str, Any]) -> list[str]:
    """The operations and schemas that differ, to name in the failure."""
    named = []
    for section, old, new in (
        ("paths", checked_in.get("paths", {}), served["paths"]),
        (
            "schemas",
            checked_in.get("components", {}).get("schemas", {}),
            served["components"]["schemas"],
        ),
    ):
        named += [
            f"{section}: {key}" for key in sorted({*old, *new}) if old.get(key) != new.get(key)
        ]
    return named or ["elsewhere (info, security schemes, formatting)"]


def test_docs_openapi_json_is_the_description_the_app_serves() -> None:
    if DOCUMENT.read_text(encoding="utf-8") != openapi_json(SERVED):
        pytest.fail(
            f"docs/openapi.json is out of date; regenerate it with {REGENERATE}. "
            f"It differs in: {', '.join(differences(CHECKED_IN, SERVED)[:20])}",
            pytrace=False,
        )


def test_every_operation_with_a_key_says_so_and_the_scheme_is_http_bearer() -> None:
    schemes = CHECKED_IN["components"]["securitySchemes"]
    assert schemes == {
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": schemes["apiKey"]["description"],
        },
        "session": {
            "type": "apiKey",
            "in": "cookie",
            "name": "leadflow_session",
            "description": schemes["session"]["description"],
        },
    }
    for key, operation in operations(CHECKED_IN).items():
        if key in UNAUTHENTICATED:
            assert "security" not in operation, key
        elif key in SESSION_ONLY:
            assert operation["security"] == [{"session": []}], key
            assert {"401", "403", "429"} <= set(operation["responses"]), key
        else:
            [requirement] = operation["security"]
            assert list(requirement) == ["apiKey"], key
            assert requirement["apiKey"] in (["read"], ["ingest"], ["admin"]), key
            assert {"401", "403", "429"} <= set(operation["responses"]), key


def test_every_operation_declares_its_answer_and_the_error_envelope_for_its_errors() -> None:
    error = {"$ref": "#/components/schemas/Error"}
    for key, operation in operations(CHECKED_IN).items():
        responses = operation["responses"]
        assert "422" in responses, f"{key}: any operation refuses a NUL in its parameters"
        successes = [status for status in responses if status.startswith(("2", "3"))]
        assert len(successes) == 1, key
        content = responses[successes[0]].get("content", {})
        if key[1].startswith("/t/"):
            continue  # a GIF, a redirect, an HTML page
        schema = content["application/json"]["schema"]
        assert "$ref" in schema or all("$ref" in one for one in schema["anyOf"]), key
        for status, response in responses.items():
            if status == "503" and key == ("get", "/readyz"):
                assert response["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/NotReady"
                }
            elif status[0] in "45":
                assert response["content"]["application/json"]["schema"] == error, (key, status)
    # FastAPI's own validation error shape is never what leadflow answers.
    assert "HTTPValidationError" not in CHECKED_IN["components"]["schemas"]
    references = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(CHECKED_IN))
    assert set(references) == set(CHECKED_IN["components"]["schemas"])


def test_the_event_examples_are_events_leadflow_accepts() -> None:
    """Swagger UI's "Try it out" starts from the first: a capture that can be posted as is."""
    body = CHECKED_IN["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    assert list(body["examples"]) == list(EVENT_EXAMPLES)
    assert next(iter(body["examples"].values()))["value"]["type"] == "lead.captured"
    for example in body["examples"].values():
        parse_event(example["value"], now=datetime.now(UTC), phone_region="CN")


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", ["swagger-ui-bundle.js", "swagger-ui.css"]),
        ("/redoc", ["redoc.standalone.js"]),
    ],
)
def test_the_reference_pages_name_only_leadflows_own_files(page: str, assets: list[str]) -> None:
    client = TestClient(APP)  # not entered: no lifespan, no store
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    named = re.findall(r'(?:src|href|spec-url)="([^"]*)"', html)
    assert named and all(url.startswith(("/", "data:")) for url in named), named
    assert "://" not in html, "a URL of another host"
    for asset in assets:
        url = f"/console/static/vendor/{asset}"
        assert url in named
        served = client.get(url)
        assert served.status_code == 200 and len(served.content) > 100_000, url
    assert client.get("/openapi.json").json() == SERVED

    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["content-security-policy"].split(";")
    )
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in scripts
    }
    assert set(policy["script-src"].split()) == {"'self'", *hashes}
    assert policy["connect-src"] == "'self'" and policy["default-src"] == "'self'"
    assert "https:" not in response.headers["content-security-policy"]
