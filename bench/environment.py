"""What every benchmark prints first: the machine, the versions measured and the load it
started under, so a number in BENCHMARKS.md can be traced to where it came from."""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path


def machine_info(packages: Iterable[str]) -> str:
    """One line: leadflow's commit, cores and CPU model, Python, SQLite, the given
    packages' versions and the load average at the start."""
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in packages)
    try:
        commit = subprocess.run(
            ["git", "-C", str(Path(__file__).parent), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    return (
        f"leadflow {commit}; {os.cpu_count()} cores ({model}), Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, {versions}; "
        f"load average at start {load}"
    )


def work_dir(stack: contextlib.ExitStack, asked: Path | None, prefix: str) -> Path:
    """Where a run keeps its data and logs: `asked` (a new folder, kept afterwards, to read
    the logs), else a temporary one removed when `stack` closes."""
    if asked is not None:
        folder = asked.resolve()
        folder.mkdir(parents=True, exist_ok=False)
        return folder
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
