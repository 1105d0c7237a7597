"""CSV imports (docs/imports.md): `leadflow import` as a user runs it, the importer on
SQLite and PostgreSQL, and what SLA figures make of imported history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import MetaData, select

from domain.events import parse_event
from domain.identity import identity_index_id
from domain.lead import IdentityIndex
from domain.state import Decision
from intake.importer import run_import
from intake.mapping import InvalidMapping, parse_mapping
from intake.rows import InvalidImportFile
from leadflow.bootstrap import Store, projections
from leadflow.settings import Settings
from projections.assignments import assignments_table
from projections.projector import Projector

LEADFLOW = [sys.executable, "-m", "leadflow"]

MAPPING: dict[str, Any] = {
    "columns": {
        "邮箱": "email",
        "手机": "phone",
        "姓名": "name",
        "地区": "region",
        "意向": "intent",
        "预算": "attributes.budget",
    },
    "constants": {"source": "expo-2025", "campaign_id": "spring"},
    "occurred_at": {"column": "创建时间", "format": "%Y/%m/%d %H:%M"},
}
HEADER = "邮箱,手机,姓名,地区,意向,预算,创建时间"
ROWS = 10_000


def big_csv(rows: int = ROWS) -> tuple[str, list[dict[str, Any]]]:
    """`rows` rows, 3 in every 100 bad (one bad email, one bad time, one bad intent); the
    faults each bad row must be reported with."""
    lines = [HEADER]
    bad: list[dict[str, Any]] = []
    for i in range(rows):
        row = i + 2  # the header is row 1
        email, created, intent = f"lead{i}@example.com", "2025/03/01 09:30", "high"
        if i % 100 == 7:
            email = f"lead{i}-at-example.com"
            bad.append({"row": row, "column": "邮箱", "message": "not a valid email address"})
        elif i % 100 == 41:
            created = "2025-13-01"
            bad.append({"row": row, "column": "创建时间"})
        elif i % 100 == 77:
            intent = "urgent"
            bad.append({"row": row, "column": "意向"})
        lines.append(f"{email},,名字{i},east,{intent},{i * 10},{created}")
    return "\n".join(lines) + "\n", bad


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LEADFLOW, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )


def lead_of(store: Store, email: str) -> UUID:
    index = store.event_log.repository.get(identity_index_id("email", email))
    assert isinstance(index, IdentityIndex)
    return index.lead_id


def test_ten_thousand_rows_import_once_and_a_rerun_imports_nothing(tmp_path: Path) -> None:
    text, bad = big_csv()
    (tmp_path / "leads.csv").write_text(text, encoding="utf-8-sig")  # as Excel saves UTF-8
    (tmp_path / "mapping.json").write_text(json.dumps(MAPPING, ensure_ascii=False))
    command = ["import", str(tmp_path / "leads.csv"), "--mapping", str(tmp_path / "mapping.json")]
    command += ["--data-dir", str(tmp_path / "data"), "--format", "json"]

    first = run_cli(*command)
    assert first.returncode == 1, first.stderr  # some rows are bad
    report = json.loads(first.stdout)
    good = ROWS - len(bad)
    assert (report["rows"], report["imported"], report["new_leads"]) == (ROWS, good, good)
    assert (report["duplicates"], report["bad_rows"]) == (0, len(bad))
    # Exactly the bad rows, each with its CSV column (not the internal field).
    assert [(e["row"], e["column"]) for e in report["errors"]] == [
        (b["row"], b["column"]) for b in bad
    ]
    assert report["errors"][0]["message"] == bad[0]["message"]

    again = run_cli(*command)
    assert again.returncode == 1, again.stderr
    rerun = json.loads(again.stdout)
    assert (rerun["imported"], rerun["new_leads"], rerun["duplicates"]) == (0, 0, good)
    assert rerun["errors"] == report["errors"]

    from leadflow.bootstrap import open_store

    store = open_store(Settings(data_dir=tmp_path / "data"))
    try:
        # One event per good row, nothing more: the re-run appended nothing.
        lead = lead_of(store, "lead12@example.com")
        [captured] = store.event_log.lead_events(lead)
        assert captured.occurred_at == "2025-03-01T01:30:00+00:00"  # 09:30 Asia/Shanghai
        assert captured.data["attributes"] == {"budget": "120"}
        assert captured.data["source"] == "expo-2025"
        assert captured.event_id.startswith("import-")
    finally:
        store.close()


def test_a_dry_run_reports_and_writes_nothing(tmp_path: Path) -> None:
    text, _ = big_csv(1000)
    (tmp_path / "leads.csv").write_text(text)
    (tmp_path / "mapping.json").write_text(json.dumps(MAPPING, ensure_ascii=False))
    data_dir = tmp_path / "data"
    dry = run_cli(
        "import",
        str(tmp_path / "leads.csv"),
        "--mapping",
        str(tmp_path / "mapping.json"),
        "--data-dir",
        str(data_dir),
        "--dry-run",
    )
    assert dry.returncode == 1, dry.stderr
    assert "1,000 rows read. Would import 970, 0 already imported, 30 bad." in dry.stdout
    assert "邮箱" in dry.stdout and "not a valid email address" in dry.stdout
    assert not data_dir.exists()  # not even a database was made


def test_a_bad_mapping_is_refused_naming_each_field(tmp_path: Path) -> None:
    (tmp_path / "leads.csv").write_text(HEADER + "\n")
    (tmp_path / "mapping.json").write_text(
        json.dumps({"columns": {"邮箱": "e-mail"}, "encoding": "latin-1", "extra": 1})
    )
    refused = run_cli(
        "import",
        str(tmp_path / "leads.csv"),
        "--mapping",
        str(tmp_path / "mapping.json"),
        "--data-dir",
        str(tmp_path / "data"),
    )
    assert refused.returncode == 2
    assert "mapping.json:/extra: unknown field" in refused.stderr
    assert "mapping.json:/columns/邮箱: unknown field 'e-mail'" in refused.stderr
    assert "mapping.json:/encoding: one of utf-8, gbk, gb18030" in refused.stderr
    assert not (tmp_path / "data").exists()


def test_a_gbk_file_is_imported_and_missing_columns_are_named(store: Store) -> None:
    mapping = parse_mapping({**MAPPING, "encoding": "gbk"})
    row = "张三@example.com,13800138000,张三,华东,low,5万,2025/01/02 08:00"
    content = f"{HEADER}\n{row}\n".encode("gbk")
    report = run_import(content, mapping, store.append, phone_region="CN")
    assert (report.imported, report.bad_rows) == (1, 0)
    [captured] = store.event_log.lead_events(lead_of(store, "张三@example.com"))
    assert captured.data["name"] == "张三" and captured.data["region"] == "华东"
    assert captured.data["phone"] == "+8613800138000"
    assert captured.data["attributes"] == {"budget": "5万"}

    # The same bytes read as UTF-8: refused whole, naming the encoding to choose.
    with pytest.raises(InvalidImportFile) as not_utf8:
        run_import(content, parse_mapping(MAPPING), store.append, phone_region="CN")
    assert "gbk" in not_utf8.value.errors[0].message
    # A mapped column the file lacks: refused whole, naming the mapping's field.
    with pytest.raises(InvalidMapping) as missing:
        run_import(b"email\nx@y.io\n", parse_mapping(MAPPING), store.append, phone_region="CN")
    assert missing.value.errors[0].path == "/columns/邮箱"
    assert "no column" in missing.value.errors[0].message


def test_a_back_filled_follow_up_never_gives_a_negative_response_time(store: Store) -> None:
    """An imported lead from last year is assigned when leadflow receives it (now); its
    follow-up, back-filled with last year's time, answered it at once: 0 s, within SLA."""
    mapping = parse_mapping(MAPPING)
    content = (HEADER + "\nold@example.com,,Old,east,high,1,2025/03/01 09:30\n").encode()
    run_import(content, mapping, store.append, phone_region="CN")
    lead = lead_of(store, "old@example.com")
    [captured] = store.event_log.lead_events(lead)
    received = datetime.fromisoformat(captured.recorded_at)
    store.event_log.record_once(
        lead,
        Decision("lead.assigned", {"owner": "rep-a", "team": "east", "strategy": "rep"}, "r"),
        event_id="lf:assigned",
        occurred_at=received,  # decisions happen when their trigger was received
        ruleset_version=1,
        caused_by=captured.event_id,
    )
    follow_up = {
        "type": "lead.followed_up",
        "lead_id": str(lead),
        "occurred_at": "2025-03-01T03:00:00Z",
        "data": {"rep_id": "rep-a", "kind": "call"},
    }
    store.append([parse_event(follow_up, now=datetime.now(UTC), phone_region="CN")], [None])
    Projector(store.event_log, store.engine, projections()).catch_up()
    table = assignments_table(MetaData())
    with store.engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.lead_id == str(lead))).mappings().one()
    assert row["first_response_seconds"] == 0.0
    assert row["first_follow_up_at"] is not None and row["sla_missed_at"] is None


def test_rows_that_are_the_same_event_count_once(store: Store) -> None:
    mapping = parse_mapping(MAPPING)
    row = "twin@example.com,,Twin,east,high,1,2025/03/01 09:30"
    content = f"{HEADER}\n{row}\n{row}\n".encode()
    report = run_import(content, mapping, store.append, phone_region="CN")
    assert (report.rows, report.imported, report.duplicates) == (2, 1, 1)
    # Another file holding the same rows (its columns in another order, one more column
    # the mapping ignores) is the same import: nothing new.
    other = f"备注,{HEADER}\nvip,{row}\n,{row}\n".encode()
    again = run_import(other, mapping, store.append, phone_region="CN")
    assert (again.imported, again.duplicates) == (0, 2)
    assert len(store.event_log.lead_events(lead_of(store, "twin@example.com"))) == 1


def test_times_without_an_offset_use_the_mapping_time_zone(store: Store) -> None:
    mapping = parse_mapping(
        {**MAPPING, "occurred_at": {"column": "创建时间", "time_zone": "Europe/Berlin"}}
    )
    content = (HEADER + "\nber@example.com,,B,east,high,1,2025-07-01 12:00\n").encode()
    run_import(content, mapping, store.append, phone_region="CN")
    [captured] = store.event_log.lead_events(lead_of(store, "ber@example.com"))
    assert datetime.fromisoformat(captured.occurred_at) == datetime(2025, 7, 1, 10, 0, tzinfo=UTC)


def test_a_row_the_log_refuses_is_reported_and_the_rest_of_its_batch_imported(
    store: Store,
) -> None:
    """A lead holds at most 200 attributes: a touch adding one more is refused by the log,
    not by validation. That row is bad (no column); the others of its batch go in."""
    names = [f"a{i}" for i in range(200)]
    full = parse_mapping(
        {
            "columns": {"email": "email", **{n: f"attributes.{n}" for n in names}},
            "constants": {"source": "crm"},
        }
    )
    row = "full@example.com," + ",".join("x" for _ in names)
    report = run_import(
        f"email,{','.join(names)}\n{row}\n".encode(), full, store.append, phone_region="CN"
    )
    assert report.imported == 1
    more = parse_mapping(
        {"columns": {"email": "email", "extra": "attributes.extra"}, "constants": {"source": "crm"}}
    )
    content = b"email,extra\nok1@example.com,1\nfull@example.com,1\nok2@example.com,1\n"
    report = run_import(content, more, store.append, phone_region="CN")
    assert (report.imported, report.bad_rows) == (2, 1)
    [error] = report.errors
    assert (error.row, error.column) == (3, None)
    assert "attributes" in error.message
