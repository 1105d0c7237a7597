"""The `leadflow` CLI against a real data dir (subprocesses, as a user runs it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import venv
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from api.app import create_app
from leadflow.bootstrap import open_store
from leadflow.settings import Settings
from store.keys import KeyStore
from store.leases import PROJECTOR_GROUP, LeaseStore
from store.rulebook import default_ruleset_document
from store.schema import revisions

LEADFLOW = [sys.executable, "-m", "leadflow"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LEADFLOW, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


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


def test_keys_are_listed_revoked_and_rotated_from_the_command_line(tmp_path: Path) -> None:
    data_dir = ["--data-dir", str(tmp_path)]
    first = run("keys", "create", "--scope", "read", "--name", "crm", *data_dir).stdout.strip()
    admin = run("keys", "create", "--scope", "admin", *data_dir).stdout.strip()
    store = open_store(Settings(data_dir=tmp_path))
    try:
        caller = store.keys.lookup(first)
        assert caller is not None and caller.name == "crm"
        key_id = caller.key_id

        listing = run("keys", "list", *data_dir)
        assert listing.returncode == 0, listing.stderr
        [line] = [line for line in listing.stdout.splitlines() if key_id in line]
        assert "crm" in line and first[:8] in line and "active" in line
        assert first not in listing.stdout and admin not in listing.stdout

        rotated = run("keys", "rotate", key_id, *data_dir)
        assert rotated.returncode == 0, rotated.stderr
        second = rotated.stdout.strip()
        assert rotated.stdout == second + "\n" and second.startswith("lf_")
        assert store.keys.lookup(first) is not None  # a day's grace by default
        assert store.keys.lookup(second) is not None

        third = run("keys", "rotate", key_id, "--grace", "0", *data_dir).stdout.strip()
        assert store.keys.lookup(first) is None and store.keys.lookup(second) is None
        assert store.keys.lookup(third) is not None

        revoked = run("keys", "revoke", key_id, *data_dir)
        assert revoked.returncode == 0, revoked.stderr
        assert store.keys.lookup(third) is None
        lines = run("keys", "list", *data_dir).stdout.splitlines()
        assert sum("revoked" in line for line in lines) == 3

        unknown = run("keys", "revoke", "key_nope", *data_dir)
        assert unknown.returncode == 1 and "key_nope" in unknown.stderr
        admin_caller = store.keys.lookup(admin)
        assert admin_caller is not None
        last_admin = run("keys", "revoke", admin_caller.key_id, *data_dir)
        assert last_admin.returncode == 1 and "no active admin key" in last_admin.stderr
        assert store.keys.lookup(admin) is not None
    finally:
        store.close()


def test_a_key_revoked_from_the_command_line_is_refused_by_a_running_api(
    settings: Settings,
) -> None:
    env = {"LEADFLOW_DATABASE_URL": settings.database_url} if settings.database_url else {}
    with TestClient(create_app(settings)) as client:
        created = client.post(
            "/v1/keys", json={"scopes": ["read"]}, headers={"Authorization": "Bearer lf_test_admin"}
        )
        key, key_id = created.json()["key"], created.json()["key_id"]
        headers = {"Authorization": f"Bearer {key}"}
        keys = client.app.state.store.keys  # type: ignore[attr-defined]
        wait_for(lambda: keys.generation.current() is not None)  # PostgreSQL: it listens
        assert client.get("/v1/directory", headers=headers).status_code == 200
        assert keys.remembered(key) is not None  # authenticated without the database
        before = keys.generation.current()
        revoked = run("keys", "revoke", key_id, "--data-dir", str(settings.data_dir), env=env)
        assert revoked.returncode == 0, revoked.stderr
        if settings.database_url is not None:
            # PostgreSQL tells the API by NOTIFY, which lands a moment after the commit.
            wait_for(lambda: keys.generation.current() not in (before, None))
        assert client.get("/v1/directory", headers=headers).status_code == 401


def wait_for(check: Callable[[], bool], seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.001)


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


def test_rules_diff_prints_the_changes_in_words(tmp_path: Path) -> None:
    base, candidate = tmp_path / "base.json", tmp_path / "candidate.json"
    base.write_text(json.dumps(default_ruleset_document()))
    changed = default_ruleset_document()
    [reclaim] = [t for t in changed["timers"] if t["id"] == "reclaim"]
    reclaim["after"] = "PT72H"
    candidate.write_text(json.dumps(changed))
    result = run("rules", "diff", str(base), str(candidate), "--offline")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "changed timer reclaim:",
        "  - runs out after 72 hours instead of 48 hours",
    ]
    assert run("rules", "diff", str(base), str(base), "--offline").stdout == "No changes.\n"
    chinese = run("rules", "diff", str(base), str(candidate), "--offline", "--locale", "zh-CN")
    assert chinese.stdout.splitlines() == [
        "changed timer reclaim:",
        "  - 改为 72 小时后到期（原为 48 小时）",
    ]
    same = run("rules", "diff", str(base), str(base), "--offline", "--locale", "zh-CN")
    assert same.stdout == "没有改动。\n"
    unknown = run("rules", "diff", str(base), str(base), "--offline", "--locale", "fr")
    assert unknown.returncode == 2 and "zh-CN" in unknown.stderr


def test_openapi_prints_the_checked_in_description_and_writes_it(tmp_path: Path) -> None:
    """`make openapi` runs `leadflow openapi --output docs/openapi.json`."""
    checked_in = (Path(__file__).parents[2] / "docs" / "openapi.json").read_text(encoding="utf-8")
    printed = run("openapi")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == checked_in
    written = run("openapi", "--output", str(tmp_path / "openapi.json"))
    assert written.returncode == 0 and written.stdout == "", written.stderr
    assert (tmp_path / "openapi.json").read_text(encoding="utf-8") == checked_in


@pytest.mark.fresh_database
def test_migrate_upgrades_an_old_database_and_prints_its_revision_before_and_after(
    settings: Settings,
) -> None:
    env = {"LEADFLOW_DATABASE_URL": settings.database_url} if settings.database_url else {}
    data_dir = ["--data-dir", str(settings.data_dir)]
    first, *_, last = revisions()

    old = run("migrate", "--to", first, *data_dir, env=env)
    assert old.returncode == 0, old.stderr
    assert old.stdout.splitlines() == ["before: none", f"after:  {first}"]

    # Told not to upgrade, a process refuses the old database and names the command.
    refused = run("keys", "list", *data_dir, env={**env, "LEADFLOW_AUTO_MIGRATE": "false"})
    assert refused.returncode == 1
    assert "leadflow migrate" in refused.stderr and first in refused.stderr

    upgraded = run("migrate", *data_dir, env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.splitlines() == [f"before: {first}", f"after:  {last} (head)"]
    listed = run("keys", "list", *data_dir, env={**env, "LEADFLOW_AUTO_MIGRATE": "false"})
    assert listed.returncode == 0, listed.stderr

    again = run("migrate", *data_dir, env=env)
    assert again.stdout.splitlines() == [f"before: {last}", f"after:  {last} (head)"]
    unknown = run("migrate", "--to", "nonesuch", *data_dir, env=env)
    assert unknown.returncode == 1 and "nonesuch" in unknown.stderr
    downgrade = run("migrate", "--to", first, *data_dir, env=env)
    assert downgrade.returncode == 1 and "does not downgrade" in downgrade.stderr


@pytest.mark.fresh_database
def test_migrate_names_what_differs_from_the_models(settings: Settings) -> None:
    env = {"LEADFLOW_DATABASE_URL": settings.database_url} if settings.database_url else {}
    data_dir = ["--data-dir", str(settings.data_dir)]
    assert run("migrate", *data_dir, env=env).returncode == 0
    engine = create_engine(settings.sqlalchemy_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE leads ADD COLUMN added_by_hand INTEGER"))
    finally:
        engine.dispose()
    differs = run("migrate", *data_dir, env=env)
    assert differs.returncode == 1
    assert "added_by_hand" in differs.stderr


def test_dev_without_the_dev_server_extra_says_what_to_install(tmp_path: Path) -> None:
    # A virtualenv with every package of this one but not the `temporal` binary that the
    # `dev-server` extra puts beside its interpreter: leadflow installed as the image has it.
    if shutil.which("temporal", path="/usr/bin:/bin"):
        pytest.skip("a Temporal CLI is installed system-wide: `leadflow dev` would find it")
    bare = tmp_path / "venv"
    venv.create(bare, with_pip=False)
    packages = {sysconfig.get_paths()[kind] for kind in ("purelib", "platlib")}
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    bare_packages = bare / "lib" / version / "site-packages"
    (bare_packages / "leadflow-packages.pth").write_text(
        "".join(f"import site; site.addsitedir({path!r})\n" for path in sorted(packages))
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith("LEADFLOW_")}
    data_dir = tmp_path / "data"
    result = subprocess.run(
        [str(bare / "bin" / "python"), "-m", "leadflow", "dev", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "PATH": f"{bare / 'bin'}:/usr/bin:/bin", "COLUMNS": "200"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "pip install 'leadflow[dev-server]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not data_dir.exists(), "it failed after writing the data dir"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_projector_started_with_another_partition_count_exits_saying_why(
    settings: Settings, tmp_path: Path
) -> None:
    store = open_store(settings)
    try:
        LeaseStore(store.engine).ensure_partitions(PROJECTOR_GROUP, 4)
    finally:
        store.close()
    assert settings.database_url is not None
    env = {"LEADFLOW_DATABASE_URL": settings.database_url, "LEADFLOW_FOLLOWER_PARTITIONS": "2"}
    refused = run("projector", "--data-dir", str(tmp_path), env=env)
    assert refused.returncode == 2, refused.stderr
    assert "LEADFLOW_FOLLOWER_PARTITIONS=2" in refused.stderr
    assert "set LEADFLOW_FOLLOWER_PARTITIONS=4" in refused.stderr
