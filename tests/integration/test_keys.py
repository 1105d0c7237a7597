"""API keys over a real store (SQLite and PostgreSQL): their lifecycle over HTTP, revocation
seen at once by every API on the database, the bootstrap key, the upgrade of an older
`api_keys` table, failed authentications, and authentication before any body is read."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Column, DateTime, MetaData, String, Table, create_engine

from api.app import create_app
from leadflow.bootstrap import open_store
from leadflow.settings import Settings
from store.keys import hash_key, key_generation
from store.schema import current_revision, head

ADMIN_KEY = "lf_test_admin"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def issue(client: TestClient, *scopes: str, name: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"scopes": list(scopes)}
    if name is not None:
        body["name"] = name
    created = client.post("/v1/keys", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    issued: dict[str, Any] = created.json()
    return issued


def listed(client: TestClient, key_id: str, admin: dict[str, str] = ADMIN) -> list[dict[str, Any]]:
    response = client.get("/v1/keys", headers=admin)
    assert response.status_code == 200
    return [secret for secret in response.json()["keys"] if secret["key_id"] == key_id]


def reads(client: TestClient, key: str) -> int:
    """The status of a read that needs the `read` scope."""
    return client.get("/v1/directory", headers=bearer(key)).status_code


def remembers(client: TestClient, key: str) -> bool:
    """Whether this API authenticates `key` without asking the database, which it does
    only while it can tell that no key changed since it read it (PostgreSQL: once it
    listens for key changes)."""
    deadline = time.monotonic() + 10
    while generation(client) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reads(client, key) == 200
    keys = client.app.state.store.keys  # type: ignore[attr-defined]
    return keys.remembered(key) is not None


def test_keys_are_issued_listed_and_revoked_over_http_without_showing_a_secret(
    client: TestClient,
) -> None:
    issued = issue(client, "read", name="crm")
    key = issued["key"]
    assert issued["key_id"].startswith("key_") and key.startswith("lf_")
    assert (issued["name"], issued["scopes"], issued["status"]) == ("crm", ["read"], "active")
    assert issued["prefix"] == key[:8]
    assert reads(client, key) == 200

    listing = client.get("/v1/keys", headers=ADMIN)
    key_ids = {secret["key_id"] for secret in listing.json()["keys"]}
    assert key_ids == {"bootstrap", issued["key_id"]}
    for secret in (key, hash_key(key), ADMIN_KEY, hash_key(ADMIN_KEY)):
        assert secret not in listing.text
    assert all("key" not in secret for secret in listing.json()["keys"])

    revoked = client.post(f"/v1/keys/{issued['key_id']}/revoke", headers=ADMIN)
    assert revoked.status_code == 200
    assert [secret["status"] for secret in revoked.json()["keys"]] == ["revoked"]
    refused = client.get("/v1/directory", headers=bearer(key))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthenticated"


def test_unknown_keys_are_404_and_bad_requests_422_writing_nothing(client: TestClient) -> None:
    for action in ("revoke", "rotate"):
        missing = client.post(f"/v1/keys/key_nope/{action}", headers=ADMIN)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "key_not_found"

    def keys() -> list[dict[str, object]]:
        # Without last_used_at: the admin key's own use is recorded again after a minute,
        # which a loaded machine can take to run this test.
        listed = client.get("/v1/keys", headers=ADMIN).json()["keys"]
        return [{k: v for k, v in key.items() if k != "last_used_at"} for key in listed]

    before = keys()
    bad_requests = [
        ({"scopes": ["read", "owner"]}, ["/scopes/1"]),
        ({"scopes": []}, ["/scopes"]),
        ({"scopes": "read"}, ["/scopes"]),
        ({"scopes": ["read"], "nmae": "crm"}, ["/nmae"]),
        ({"scopes": ["read"], "name": ""}, ["/name"]),
        (["read"], [""]),
        # No store can hold these (a NUL was a 500 on PostgreSQL, a lone surrogate on both).
        ({"scopes": ["read"], "name": "crm\u0000"}, ["/name"]),
        ({"scopes": ["read"], "name": "crm\ud800"}, ["/name"]),
    ]
    for body, paths in bad_requests:
        # As JSON text, so the lone surrogate goes out as its `\ud800` escape.
        content = json.dumps(body).encode()
        response = client.post("/v1/keys", content=content, headers=ADMIN)
        assert response.status_code == 422, body
        assert [d["path"] for d in response.json()["error"]["details"]] == paths, body
    for body in ({"grace_seconds": -1}, {"grace_seconds": "1h"}, {"grace_seconds": True}):
        response = client.post("/v1/keys/bootstrap/rotate", json=body, headers=ADMIN)
        assert response.status_code == 422, body
        assert response.json()["error"]["details"][0]["path"] == "/grace_seconds"
    # An unknown field is named; one named with a lone surrogate was a 500 (no UTF-8 answer
    # carries it): it shows as U+FFFD.
    response = client.post(
        "/v1/keys/bootstrap/rotate", content=b'{"grace\\ud800": 1}', headers=ADMIN
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "/grace\ufffd"
    assert keys() == before


def test_the_last_active_admin_key_cannot_be_revoked(client: TestClient) -> None:
    refused = client.post("/v1/keys/bootstrap/revoke", headers=ADMIN)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "last_admin_key"
    assert reads(client, ADMIN_KEY) == 200

    reader = issue(client, "read")
    assert client.post(f"/v1/keys/{reader['key_id']}/revoke", headers=ADMIN).status_code == 200

    second_admin = issue(client, "admin")
    assert client.post("/v1/keys/bootstrap/revoke", headers=ADMIN).status_code == 200
    assert reads(client, ADMIN_KEY) == 401
    last = client.post(
        f"/v1/keys/{second_admin['key_id']}/revoke", headers=bearer(second_admin["key"])
    )
    assert last.status_code == 409 and last.json()["error"]["code"] == "last_admin_key"
    assert reads(client, second_admin["key"]) == 200


def test_a_rotated_secret_works_for_its_grace_then_is_refused(client: TestClient) -> None:
    issued = issue(client, "read", name="crm")
    key_id, first = issued["key_id"], issued["key"]

    rotated = client.post(f"/v1/keys/{key_id}/rotate", json={"grace_seconds": 1}, headers=ADMIN)
    assert rotated.status_code == 201
    second = rotated.json()
    assert (second["key_id"], second["name"], second["scopes"]) == (key_id, "crm", ["read"])
    assert reads(client, first) == 200 and reads(client, second["key"]) == 200
    statuses = [secret["status"] for secret in listed(client, key_id)]
    assert statuses == ["expiring", "active"]
    time.sleep(1.1)
    assert reads(client, first) == 401  # though it was authenticated a moment ago
    assert reads(client, second["key"]) == 200

    # Without a body: the default grace of a day.
    third = client.post(f"/v1/keys/{key_id}/rotate", headers=ADMIN)
    assert third.status_code == 201
    old = listed(client, key_id)[1]
    expires_at = datetime.fromisoformat(old["expires_at"])
    assert abs(expires_at - datetime.now(UTC) - timedelta(days=1)) < timedelta(minutes=1)

    # Grace 0: every older secret is refused at once.
    fourth = client.post(f"/v1/keys/{key_id}/rotate", json={"grace_seconds": 0}, headers=ADMIN)
    assert fourth.status_code == 201
    assert reads(client, second["key"]) == 401 and reads(client, third.json()["key"]) == 401
    assert reads(client, fourth.json()["key"]) == 200

    assert client.post(f"/v1/keys/{key_id}/revoke", headers=ADMIN).status_code == 200
    dead = client.post(f"/v1/keys/{key_id}/rotate", headers=ADMIN)
    assert dead.status_code == 409 and dead.json()["error"]["code"] == "key_not_active"


def generation(client: TestClient) -> int | None:
    keys = client.app.state.store.keys  # type: ignore[attr-defined]
    current: int | None = keys.generation.current()
    return current


def hears_of_a_change(client: TestClient, before: int | None, settings: Settings) -> None:
    """Wait until this API can tell that keys changed since `before`. SQLite: at once (it
    reads the generation). PostgreSQL: once the NOTIFY reaches it, which takes ~0.1 ms, or
    a few ms on a loaded machine, after the change commits."""
    if settings.database_url is None:
        assert generation(client) != before
        return
    deadline = time.monotonic() + 5
    while generation(client) in (before, None):
        assert time.monotonic() < deadline, "the API never heard of the change"
        time.sleep(0.001)


def test_a_key_revoked_through_one_api_is_refused_by_another_on_its_next_request(
    settings: Settings,
) -> None:
    with TestClient(create_app(settings)) as a, TestClient(create_app(settings)) as b:
        revoked = issue(a, "read")
        assert remembers(b, revoked["key"])
        before = generation(b)
        assert a.post(f"/v1/keys/{revoked['key_id']}/revoke", headers=ADMIN).status_code == 200
        hears_of_a_change(b, before, settings)
        assert reads(b, revoked["key"]) == 401

        rotated = issue(a, "read")
        assert remembers(b, rotated["key"])
        before = generation(b)
        renewed = a.post(
            f"/v1/keys/{rotated['key_id']}/rotate", json={"grace_seconds": 0}, headers=ADMIN
        )
        hears_of_a_change(b, before, settings)
        assert reads(b, rotated["key"]) == 401
        assert reads(b, renewed.json()["key"]) == 200

        # Keys nobody changed are still remembered by both.
        kept = issue(a, "read")
        assert remembers(a, kept["key"]) and remembers(b, kept["key"])


def test_on_sqlite_a_change_nobody_marked_is_still_seen_within_the_recheck(
    settings: Settings,
) -> None:
    """SQLite reads the key generation only when the marker file says keys changed, or
    once `RECHECK_SECONDS` passed: a change whose writer died before marking it (here: the
    row moved by hand) is seen by the recheck, a marked one at once."""
    if settings.database_url is not None:
        pytest.skip("the marker file is SQLite's; PostgreSQL listens for NOTIFY")
    with TestClient(create_app(settings)) as client:
        kept = issue(client, "read")
        assert remembers(client, kept["key"])
        keys = client.app.state.store.keys  # type: ignore[attr-defined]
        with keys.engine.begin() as conn:
            conn.execute(key_generation.update().values(generation=key_generation.c.generation + 1))
        assert keys.remembered(kept["key"]) is not None  # unmarked: the last read stands
        keys.generation.RECHECK_SECONDS = 0.0  # as once a second has passed
        assert keys.remembered(kept["key"]) is None  # read again: asked of the database
        assert reads(client, kept["key"]) == 200 and keys.remembered(kept["key"]) is not None
        keys.generation.RECHECK_SECONDS = 3600.0
        before = generation(client)
        with keys.engine.begin() as conn:
            conn.execute(key_generation.update().values(generation=key_generation.c.generation + 1))
        keys.generation.changed()  # a marked change is read at once
        assert before is not None and generation(client) == before + 1


def test_a_revoked_bootstrap_key_stays_revoked_after_a_restart(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        other_admin = issue(client, "admin")
        assert client.post("/v1/keys/bootstrap/revoke", headers=ADMIN).status_code == 200
    with TestClient(create_app(settings)) as client:
        assert reads(client, ADMIN_KEY) == 401
        assert reads(client, other_admin["key"]) == 200
        [bootstrap] = listed(client, "bootstrap", bearer(other_admin["key"]))
        assert bootstrap["status"] == "revoked"


def _old_api_keys(engine: Any) -> Table:
    """The `api_keys` table as the first release of leadflow created it."""
    table = Table(
        "api_keys",
        MetaData(),
        Column("key_hash", String(64), primary_key=True),
        Column("scopes", String(100), nullable=False),
        Column("name", String(200), nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    table.create(engine)
    return table


@pytest.mark.fresh_database
def test_a_database_with_the_old_keys_table_keeps_its_keys_working(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True)
    old_key = "lf_from_the_first_release"
    engine = create_engine(settings.sqlalchemy_url)
    old_row = {
        "key_hash": hash_key(old_key),
        "scopes": "ingest",
        "name": "crm",
        "created_at": datetime.now(UTC),
    }
    with engine.begin() as conn:
        conn.execute(_old_api_keys(engine).insert().values(**old_row))
    engine.dispose()

    with TestClient(create_app(settings)) as client:
        capture = {"type": "lead.captured", "data": {"email": "a@x.io", "source": "web"}}
        assert client.post("/v1/events", json=capture, headers=bearer(old_key)).status_code == 202
        key_id = "key_" + hash_key(old_key)[:12]
        [secret] = listed(client, key_id)
        assert (secret["name"], secret["scopes"], secret["prefix"]) == ("crm", ["ingest"], None)
        assert client.post(f"/v1/keys/{key_id}/revoke", headers=ADMIN).status_code == 200
        assert client.post("/v1/events", json=capture, headers=bearer(old_key)).status_code == 401


@pytest.mark.fresh_database
def test_processes_starting_at_once_upgrade_the_old_keys_table_once(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True)
    engine = create_engine(settings.sqlalchemy_url)
    try:
        _old_api_keys(engine)
        with ThreadPoolExecutor(4) as pool:
            stores = list(pool.map(lambda _: open_store(settings), range(4)))
        assert current_revision(engine) == head()
    finally:
        engine.dispose()
    try:
        for store in stores:
            assert [secret.key_id for secret in store.keys.secrets()] == ["bootstrap"]
            assert store.keys.lookup(ADMIN_KEY) is not None
    finally:
        for store in stores:
            store.close()


def test_failed_authentications_are_logged_and_limited_per_address(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    reader = issue(client, "read")
    # Neither a missing key nor a missing scope is a guess: neither counts.
    for _ in range(25):
        assert client.get("/v1/directory").status_code == 401
        assert client.post("/v1/keys", json={}, headers=bearer(reader["key"])).status_code == 403

    wrong_key = "lf_wrongkey_" + "x" * 30
    with caplog.at_level(logging.WARNING, logger="api.deps"):
        for _ in range(20):
            assert reads(client, wrong_key) == 401
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 20
    assert all("testclient" in w and "lf_wrong" in w and wrong_key not in w for w in warnings)

    limited = client.get("/v1/directory", headers=ADMIN)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "too_many_failed_authentications"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60

    # Another address is not affected (same app, same process).
    elsewhere = TestClient(client.app, client=("10.1.2.3", 40000))
    assert elsewhere.get("/v1/directory", headers=ADMIN).status_code == 200


def test_a_key_records_when_it_was_last_used_at_most_once_a_minute(client: TestClient) -> None:
    issued = issue(client, "read")
    assert listed(client, issued["key_id"])[0]["last_used_at"] is None
    assert reads(client, issued["key"]) == 200
    deadline = time.monotonic() + 10
    while (first := listed(client, issued["key_id"])[0]["last_used_at"]) is None:
        assert time.monotonic() < deadline, "last_used_at was never written"
        time.sleep(0.05)
    time.sleep(0.01)
    assert reads(client, issued["key"]) == 200
    time.sleep(0.5)
    assert listed(client, issued["key_id"])[0]["last_used_at"] == first


# Every route that reads a body, with the scope it needs and a key that lacks it.
BODY_ROUTES = [
    ("POST", "/v1/events", "read"),
    ("POST", "/v1/events/batch", "read"),
    ("POST", "/v1/rulesets", "read"),
    ("POST", "/v1/rulesets/validate", "ingest"),
    ("POST", "/v1/rulesets/describe", "ingest"),
    ("POST", "/v1/rulesets/preview-template", "ingest"),
    ("POST", "/v1/rulesets/1/activate", "read"),
    ("PUT", "/v1/directory", "read"),
    ("POST", "/v1/replays", "read"),
    ("POST", "/v1/keys", "read"),
    ("POST", "/v1/keys/bootstrap/rotate", "read"),
    ("POST", "/v1/keys/bootstrap/revoke", "read"),
]


def test_every_route_authenticates_before_it_reads_the_body(client: TestClient) -> None:
    lacking = {scope: issue(client, scope)["key"] for scope in ("read", "ingest")}
    deep = "[" * 10_000
    json_headers = {"Content-Type": "application/json"}
    for method, path, wrong_scope in BODY_ROUTES:
        for body in ("{", deep):
            anonymous = client.request(method, path, content=body, headers=json_headers)
            assert anonymous.status_code == 401, (method, path, body[:3], anonymous.text)
            forbidden = client.request(
                method, path, content=body, headers={**json_headers, **bearer(lacking[wrong_scope])}
            )
            assert forbidden.status_code == 403, (method, path, body[:3], forbidden.text)
    # With the right key the body is read and checked as before.
    for method, path, _ in BODY_ROUTES:
        if path.endswith(("/activate", "/revoke")):
            continue
        malformed = client.request(method, path, content="{", headers={**json_headers, **ADMIN})
        assert malformed.status_code == 400, (method, path, malformed.text)
        assert json.loads(malformed.text)["error"]["code"] == "malformed_json"
