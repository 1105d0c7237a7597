"""Property-based fuzzing of every operation in the OpenAPI description users get,
`docs/openapi.json` (schemathesis), on the in-process app over the real SQLite and
PostgreSQL stores, with the admin key: no answer is a 5xx, every answer has a status the
description lists for the operation and a body its schema for that status describes, and
no 4xx answer writes anything (the log, or leadflow's own tables).

Each operation gets schemathesis' coverage phase (boundary and wrongly typed values,
missing and unknown fields, unexpected methods) and a derandomized fuzzing phase whose
strings and integers are often values that broke leadflow before (`HOSTILE_TEXT`,
`HOSTILE_INTEGERS`). No operation is left out; the console's pages and files are not in
the description. A failure prints the request that reproduces it, as a curl command.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import create_engine, func, select, table, text
from sqlalchemy.engine import Connection, make_url

from api.app import create_app
from api.auth_failures import FailedAuthentications
from domain.events import EXTERNAL_DATA
from leadflow.bootstrap import Store
from leadflow.settings import Settings
from replay.jobs import replays
from store.keys import api_keys, key_generation
from store.positions import log_positions
from store.quarantine import quarantine
from store.saved_views import saved_views
from store.users import user_sessions, users

ADMIN_KEY = "lf_test_admin"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}

# Text and numbers each hop behind the door has choked on: NUL (PostgreSQL refuses it),
# times that leave datetime's range once converted to UTC, numbers past 64 bits.
HOSTILE_TEXT = [
    "\x00",
    "lead\x00id",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01",
    "9999-12-31",
    "NaN",
    "-Infinity",
    "1e400",
    "00000000-0000-0000-0000-000000000000",
    "9223372036854775808",
]
HOSTILE_INTEGERS = [2**63 - 1, 2**63, -(2**63) - 1, 2**64, 2**53 + 1, 10**30]


def optional_text_parameters(document: dict[str, Any]) -> set[str]:
    """The query parameters described as `anyOf` text or null, as FastAPI describes an
    optional `str`: schemathesis' dictionaries bound by type only see a top-level `type`,
    so these are bound by name."""
    return {
        parameter["name"]
        for operations in document["paths"].values()
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query"
        and "string" in {choice.get("type") for choice in parameter["schema"].get("anyOf", [])}
    }


def body_text_fields(document: dict[str, Any]) -> set[str]:
    """`body.<path>` of every text field of the request bodies, `[*]` for any item of a
    list: schemathesis' dictionaries bound by type reach parameters, not bodies."""
    components = document["components"]["schemas"]

    def walk(schema: dict[str, Any], path: str, seen: frozenset[str]) -> Iterator[str]:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:  # a ruleset's conditions nest themselves
                yield from walk(components[name], path, seen | {name})
            return
        if schema.get("type") == "string" and path:
            yield path
        for name, field in schema.get("properties", {}).items():
            yield from walk(field, f"{path}.{name}" if path else name, seen)
        if isinstance(schema.get("items"), dict):
            yield from walk(schema["items"], f"{path}[*]", seen)
        for keyword in ("oneOf", "anyOf", "allOf"):
            for choice in schema.get(keyword, []):
                yield from walk(choice, path, seen)

    return {
        f"body.{field}"
        for operations in document["paths"].values()
        for operation in operations.values()
        for content in operation.get("requestBody", {}).get("content", {}).values()
        for field in walk(content["schema"], "", frozenset())
    }


# The checked-in description (test_openapi_document.py keeps it the app's own).
DESCRIPTION: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "docs" / "openapi.json").read_text(encoding="utf-8")
)
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 0,  # with `derandomize` below: the same requests on every run
        "dictionaries": {
            "hostile-text": {"values": HOSTILE_TEXT},
            "hostile-integers": {"values": HOSTILE_INTEGERS},
        },
        "generation": {
            # The key is ours to send (below); 401s are not what this test is about.
            "with-security-parameters": False,
            "dictionaries": {
                "string": {"dictionary": "hostile-text", "probability": 0.25},
                "integer": {"dictionary": "hostile-integers", "probability": 0.25},
            },
        },
        "parameters": {
            key: {"dictionary": "hostile-text", "probability": 0.25}
            for key in (
                {f"query.{name}" for name in optional_text_parameters(DESCRIPTION)}
                | body_text_fields(DESCRIPTION)
            )
        },
        # Wrongly typed and missing values are the coverage phase's; fuzzing sends values
        # the description allows, hostile ones among them.
        "phases": {"fuzzing": {"generation": {"mode": "positive"}}},
    }
)
schema = schemathesis.openapi.from_dict(DESCRIPTION, config=CONFIG)


@contextlib.contextmanager
def _database_url(store: str) -> Iterator[str | None]:
    """None (SQLite in the data dir) or a new PostgreSQL database, dropped afterwards."""
    if store == "sqlite":
        yield None
        return
    base = os.environ.get("LEADFLOW_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("LEADFLOW_TEST_POSTGRES_URL is not set")
    server = make_url(Settings(database_url=base).sqlalchemy_url)
    name = f"leadflow_fuzz_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastAPI]:
    """One running app per store for all operations, so state accumulates as it would in
    production (and each operation does not pay for a new store and app). The lifespan is
    run by FastAPI's TestClient: schemathesis' own would be ended after every test. The
    requests then run on schemathesis' event loop, which works here: the writer settles
    each append on the loop of the request that awaits it, and with Temporal unreachable
    no client is bound to the lifespan's loop."""
    with _database_url(request.param) as database_url:
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("fuzz") / "data",
            database_url=database_url,
            bootstrap_admin_key=ADMIN_KEY,
            temporal_address="127.0.0.1:1",  # nothing listens: no worker, no deliveries
            task_queue=f"leadflow-fuzz-{uuid.uuid4().hex[:8]}",
        )
        fuzzed = create_app(settings)
        with TestClient(fuzzed):
            yield fuzzed


@pytest.fixture
def client(app: FastAPI) -> asgi.ASGIClient:
    """schemathesis' in-process client, not entered: entering it would start a second
    lifespan of the app."""
    store: Store = app.state.store
    # The app is shared: had an operation revoked the key, the later ones would be void.
    assert store.keys.lookup(ADMIN_KEY) is not None, "an earlier operation revoked the admin key"
    # Fuzzed sign-ins fail by the dozen: the next operation starts with a clean slate
    # rather than behind the throttle (429) they would put the test client's address.
    app.state.failed_authentications = FailedAuthentications()
    return asgi.get_client(app)


def written(conn: Connection, store: Store) -> dict[str, Any]:
    """What a request could have written: the log's last position, every row of
    leadflow's own tables (no worker or projector runs here to write them), and the number
    of replays (a queued replay's row is updated by its runner thread as it goes, so only
    new rows are a request's)."""
    return {
        "log": store.event_log.max_position(),
        # `last_used_at` is bookkeeping on any authenticated request, whatever its answer.
        "api_keys": sorted(
            conn.execute(select(*(c for c in api_keys.c if c.name != "last_used_at"))).all()
        ),
        "api_key_generation": conn.execute(select(key_generation)).all(),
        "quarantine": sorted(conn.execute(select(quarantine)).all(), key=repr),
        "log_positions": sorted(conn.execute(select(log_positions)).all()),
        "users": sorted(conn.execute(select(users)).all()),
        "user_sessions": sorted(conn.execute(select(user_sessions)).all()),
        "replays": conn.execute(select(func.count()).select_from(replays)).scalar_one(),
        "saved_views": sorted(conn.execute(select(saved_views)).all(), key=repr),
        # The log's snapshots of long streams (eventsourcing's table beside the events).
        "snapshots": conn.execute(
            select(func.count()).select_from(table("leadflow_snapshots"))
        ).scalar_one(),
    }


def snapshot(store: Store) -> dict[str, Any]:
    with store.engine.connect() as conn:
        return written(conn, store)


def readiness_without_temporal(case: Any, response: Any) -> bool:
    """`/readyz` answers 503 by design while Temporal and a worker are unreachable, as they
    are here (the settings point at a closed port): that answer, and only it, is no bug."""
    if case.operation.path != "/readyz" or response.status_code != 503:
        return False
    return bool(
        response.json()["checks"] == {"database": "up", "temporal": "down", "worker": "down"}
    )


@schema.parametrize()
@hypothesis_settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    # The strategies are schemathesis', built from the description; they filter a lot.
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_5xx_or_writes_on_4xx(case: Any, client: Any) -> None:
    store: Store = client.app.state.store
    before = snapshot(store)
    response = case.call(session=client, headers=ADMIN)
    if readiness_without_temporal(case, response):
        return
    case.validate_response(
        response,
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )
    if 400 <= response.status_code < 500:
        assert snapshot(store) == before, (
            f"{case.method} {case.formatted_path} answered {response.status_code} "
            f"and wrote: {response.text[:500]}"
        )


# The routes that read a JSON body (through `api.deps.body_for` or `json_body`), or an
# upload (multipart/form-data).
READ_A_BODY = {
    ("post", "/v1/imports"),
    ("post", "/v1/events"),
    ("post", "/v1/events/batch"),
    ("post", "/v1/rulesets/validate"),
    ("post", "/v1/rulesets/describe"),
    ("post", "/v1/rulesets/preview-template"),
    ("post", "/v1/rulesets"),
    ("post", "/v1/rulesets/{version}/canary"),
    ("put", "/v1/directory"),
    ("post", "/v1/replays"),
    ("post", "/v1/keys"),
    ("post", "/v1/keys/{key_id}/rotate"),
    ("post", "/v1/forms"),
    ("post", "/v1/forms/validate"),
    ("post", "/v1/leads/{lead_id}/do-not-contact"),
    ("post", "/v1/leads/{lead_id}/do-not-contact/lift"),
    ("post", "/v1/session"),
    ("patch", "/v1/session"),
    ("post", "/v1/users"),
    ("patch", "/v1/users/{user_id}"),
    ("post", "/v1/leads/reassign"),
    ("post", "/v1/views"),
    # Not JSON: empty, or the RFC 8058 one-click form.
    ("post", "/t/u/{message_id}"),
}


def test_the_description_gives_the_bodies_routes_read_and_the_key_each_operation_needs() -> None:
    """What a client generated from `/openapi.json` relies on (and the fuzzing above)."""
    operations = {
        (method, path): operation
        for path, methods in DESCRIPTION["paths"].items()
        for method, operation in methods.items()
    }
    assert {key for key, operation in operations.items() if "requestBody" in operation} == (
        READ_A_BODY
    )
    refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(DESCRIPTION))
    assert set(refs) <= set(DESCRIPTION["components"]["schemas"])
    event = DESCRIPTION["components"]["schemas"]["Event"]
    assert [variant["properties"]["type"]["const"] for variant in event["oneOf"]] == list(
        EXTERNAL_DATA
    )
    assert DESCRIPTION["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert operations[("post", "/v1/events")]["security"] == [{"apiKey": ["ingest"]}]
    assert operations[("get", "/v1/leads")]["security"] == [{"apiKey": ["read"]}]
    assert operations[("post", "/v1/keys")]["security"] == [{"apiKey": ["admin"]}]
    assert "security" not in operations[("get", "/t/o/{message_id}")]
