"""`leadflow users` against a real data dir (subprocesses, as an operator runs it): a user
created with a password from stdin, or with one generated and printed, signs in."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from leadflow.bootstrap import open_store
from leadflow.settings import Settings

LEADFLOW = [sys.executable, "-m", "leadflow"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LEADFLOW, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


def signs_in(data_dir: Path, login: str, password: str) -> str | None:
    store = open_store(Settings(data_dir=data_dir))
    try:
        user = store.users.authenticate(login, password)
    finally:
        store.close()
    return None if user is None else user.role


def test_users_are_created_from_stdin_or_with_a_generated_password_and_listed(
    tmp_path: Path,
) -> None:
    data_dir = ["--data-dir", str(tmp_path)]
    store = open_store(Settings(data_dir=tmp_path))
    try:  # as the API does at its first start: the demo directory names rep-east-1
        store.rulebook.install_defaults(datetime.now(UTC))
    finally:
        store.close()
    typed = run(
        "users",
        "create",
        "--login",
        "Li@Example.com",
        "--role",
        "rep",
        "--person",
        "rep-east-1",
        *data_dir,
        stdin="a typed password\n",
    )
    assert typed.returncode == 0, typed.stderr
    assert typed.stdout == ""  # nothing generated, nothing to print
    assert signs_in(tmp_path, "li@example.com", "a typed password") == "rep"

    generated = run("users", "create", "--login", "root", "--role", "admin", *data_dir, stdin="")
    assert generated.returncode == 0, generated.stderr
    password = generated.stdout.strip()
    assert generated.stdout == password + "\n" and len(password) >= 16
    assert signs_in(tmp_path, "root", password) == "admin"

    listed = run("users", "list", *data_dir)
    assert listed.returncode == 0, listed.stderr
    assert "li@example.com" in listed.stdout and "Li Wei" in listed.stdout
    assert "root" in listed.stdout and "a typed password" not in listed.stdout


def test_a_bad_user_is_refused_naming_each_field(tmp_path: Path) -> None:
    refused = run(
        "users",
        "create",
        "--login",
        "x@example.com",
        "--role",
        "boss",
        "--person",
        "ghost",
        "--data-dir",
        str(tmp_path),
        stdin="short\n",
    )
    assert refused.returncode == 1
    for field in ("role:", "person_id:", "password:"):
        assert field in refused.stderr
