"""The `leadflow` CLI against a real data dir (subprocesses, as a user runs it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from api.keys import KeyStore
from leadflow.bootstrap import open_store
from leadflow.rulebook import default_ruleset_document
from leadflow.settings import Settings

LEADFLOW = [sys.executable, "-m", "leadflow"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LEADFLOW, *args], capture_output=True, text=True, timeout=60)


def test_keys_create_prints_the_key_alone_and_it_works(tmp_path: Path) -> None:
    created = run("keys", "create", "--scope", "ingest", "--data-dir", str(tmp_path))
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert created.stdout == key + "\n" and key.startswith("lf_")
    store = open_store(Settings(data_dir=tmp_path))
    try:
        caller = KeyStore(store.engine).lookup(key)
    finally:
        store.close()
    assert caller is not None and caller.scopes == {"ingest"}


def test_rules_validate_reports_every_error_with_its_path(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(default_ruleset_document()))
    assert run("rules", "validate", str(good), "--data-dir", str(tmp_path)).returncode == 0

    bad_document = default_ruleset_document()
    bad_document["rules"][0]["conditions"]["all"][0]["operator"] = "is_after"
    bad_document["timers"][1]["after"] = "2 days"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bad_document))
    result = run("rules", "validate", str(bad), "--data-dir", str(tmp_path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"{bad}:/rules/0/conditions/all/0/operator:") for line in lines)
    assert any(line.startswith(f"{bad}:/timers/1/after:") for line in lines)
