"""`POST /v1/imports` (docs/imports.md): an upload becomes a job whose progress and report
any replica reads; every bad upload is a 4xx naming the field, and nothing is recorded."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_imports import HEADER, MAPPING, big_csv

from api.app import create_app
from intake.jobs import MAX_UPLOAD_BYTES, ImportJobs, Upload
from intake.mapping import parse_mapping
from leadflow.bootstrap import Store
from leadflow.settings import Settings

ADMIN = {"Authorization": "Bearer lf_test_admin"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def upload(client: TestClient, content: bytes, mapping: Any = MAPPING, **fields: str) -> Any:
    return client.post(
        "/v1/imports",
        headers=ADMIN,
        files={"file": ("leads.csv", content, "text/csv")},
        data={"mapping": json.dumps(mapping, ensure_ascii=False), **fields},
    )


def finished(client: TestClient, import_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = client.get(f"/v1/imports/{import_id}", headers=ADMIN)
        assert found.status_code == 200, found.text
        body: dict[str, Any] = found.json()
        if body["status"] in ("succeeded", "failed"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"import {import_id} did not finish")


def store_of(client: TestClient) -> Store:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    return store


def test_an_upload_is_imported_as_a_job_and_posting_it_again_imports_nothing(
    client: TestClient,
) -> None:
    text, bad = big_csv(2000)
    posted = upload(client, text.encode())
    assert posted.status_code == 202, posted.text
    import_id = posted.json()["import_id"]
    assert posted.headers["location"] == f"/v1/imports/{import_id}"
    body = finished(client, import_id)
    assert body["status"] == "succeeded", body["error"]
    assert body["progress"] == {"done": 2000, "total": 2000}
    assert body["file_name"] == "leads.csv" and body["dry_run"] is False
    assert body["mapping"]["occurred_at"]["time_zone"] == "Asia/Shanghai"  # the default
    report = body["report"]
    assert (report["rows"], report["imported"], report["bad_rows"]) == (2000, 1940, 60)
    assert [(e["row"], e["column"]) for e in report["errors"]] == [
        (b["row"], b["column"]) for b in bad
    ]

    again = finished(client, upload(client, text.encode()).json()["import_id"])
    assert (again["report"]["imported"], again["report"]["duplicates"]) == (0, 1940)
    listed = client.get("/v1/imports", headers=ADMIN).json()["items"]
    assert [item["import_id"] for item in listed] == [again["import_id"], import_id]
    assert "report" not in listed[0]


def test_a_dry_run_job_writes_nothing(client: TestClient) -> None:
    store = store_of(client)
    before = store.event_log.max_position()
    text, _ = big_csv(300)
    body = finished(client, upload(client, text.encode(), dry_run="true").json()["import_id"])
    assert body["status"] == "succeeded" and body["dry_run"] is True
    assert (body["report"]["imported"], body["report"]["bad_rows"]) == (291, 9)
    assert store.event_log.max_position() == before


def test_bad_uploads_are_refused_naming_the_field_and_nothing_is_recorded(
    client: TestClient,
) -> None:
    csv = (HEADER + "\na@example.com,,A,east,high,1,2025/03/01 09:30\n").encode()

    def refused(response: Any, status: int, path: str | None = None) -> str:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        if path is not None:
            assert path in [d["path"] for d in error["details"]], error
        return str(error["code"])

    assert client.post("/v1/imports", files={"file": ("a.csv", csv)}).status_code == 401
    bad_column = {**MAPPING, "columns": {"邮箱": "e-mail"}}
    assert refused(upload(client, csv, bad_column), 422, "/mapping/columns/邮箱") == (
        "invalid_mapping"
    )
    assert refused(
        upload(client, csv, {**MAPPING, "encoding": "latin-1"}), 422, "/mapping/encoding"
    )
    not_json = client.post(
        "/v1/imports", headers=ADMIN, files={"file": ("a.csv", csv)}, data={"mapping": "{"}
    )
    refused(not_json, 422, "/mapping")
    deep_mapping = {"mapping": "[" * 100_000}
    the_file = {"file": ("a.csv", csv)}
    deep = client.post("/v1/imports", headers=ADMIN, files=the_file, data=deep_mapping)
    refused(deep, 422, "/mapping")
    nul = upload(client, csv, {**MAPPING, "constants": {"source": "a\u0000b"}})
    refused(nul, 422, "/mapping/constants/source")
    no_file = client.post("/v1/imports", headers=ADMIN, data={"mapping": json.dumps(MAPPING)})
    refused(no_file, 422, "/file")
    refused(upload(client, csv, dry_run="maybe"), 422, "/dry_run")
    gbk = (HEADER + "\n张三@example.com,,张三,华东,low,1,2025/01/02 08:00\n").encode("gbk")
    assert refused(upload(client, gbk), 422, "/file") == "invalid_import_file"
    refused(upload(client, b"email,name\nx@y.io,X\n"), 422, "/mapping/columns/邮箱")
    json_body = client.post("/v1/imports", headers=ADMIN, json={"file": "x", "mapping": {}})
    refused(json_body, 422, "/file")
    huge = upload(client, b"x" * (MAX_UPLOAD_BYTES + 1))
    assert refused(huge, 413) == "body_too_large"
    assert client.get("/v1/imports", headers=ADMIN).json() == {"items": []}
    missing = client.get("/v1/imports/no-such-import", headers=ADMIN)
    assert refused(missing, 404) == "import_not_found"


def test_an_import_whose_process_stopped_is_shown_failed(client: TestClient) -> None:
    jobs = ImportJobs(store_of(client).engine)
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    content = (HEADER + "\n").encode()
    import_id = jobs.create(
        Upload(content, "a.csv", parse_mapping(MAPPING), False), "gone", long_ago
    )
    body = client.get(f"/v1/imports/{import_id}", headers=ADMIN).json()
    assert body["status"] == "failed"
    assert body["error"].startswith("interrupted") and body["finished_at"] is not None


def test_a_row_of_a_known_lead_is_a_touch_on_it_as_a_posted_capture_is(
    client: TestClient,
) -> None:
    posted = client.post(
        "/v1/events",
        headers=ADMIN,
        json={"type": "lead.captured", "data": {"email": "LEAD5@example.com", "source": "web"}},
    )
    assert posted.status_code == 202, posted.text
    lead = posted.json()["lead_id"]
    text, _ = big_csv(100)
    report = finished(client, upload(client, text.encode()).json()["import_id"])["report"]
    assert (report["imported"], report["new_leads"]) == (97, 96)
    events = client.get(f"/v1/leads/{lead}/events", headers=ADMIN).json()["events"]
    captures = [e for e in events if e["type"] == "lead.captured"]
    assert [c["data"]["source"] for c in captures] == ["web", "expo-2025"]


def test_a_process_holding_its_most_imports_answers_429_and_records_nothing(
    client: TestClient,
) -> None:
    runner = client.app.state.imports  # type: ignore[attr-defined]
    content = (HEADER + "\n").encode()
    now = datetime.now(UTC)
    held = [  # recorded as this process's, never handed to its worker: they stay queued
        runner.jobs.create(
            Upload(content, "a.csv", parse_mapping(MAPPING), False), runner.runner, now
        )
        for _ in range(2)
    ]
    full = upload(client, content)
    assert full.status_code == 429, full.text
    assert full.json()["error"]["code"] == "too_many_imports"
    assert full.headers["retry-after"] == "30"
    listed = client.get("/v1/imports", headers=ADMIN).json()["items"]
    assert sorted(item["import_id"] for item in listed) == sorted(held)
