"""The baseline run's forked child dies with the process that forked it, even one killed
outright: a real process (a script on the repository's code) replays a history big
enough to take seconds, the test kills it with SIGKILL and the child is gone at once,
instead of replaying on for nobody with the API's listening socket in hand."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from replay.whatif import can_fork

# The replay `answer` makes once it has read the history: the baseline in a forked child,
# the candidate here. 40,000 leads captured a minute apart (reminders and reclaims fire
# between them) take each process several seconds on the 2-core VM.
SCRIPT = textwrap.dedent(
    """
    import multiprocessing
    from datetime import UTC, datetime, timedelta

    from domain.directory import parse_directory
    from domain.lifecycle import ActiveRuleset
    from domain.state import LoggedEvent
    from store.rulebook import default_directory_document, default_ruleset_document
    from replay.simulator import fixed
    from replay.whatif import replay_runs
    from rules.compile import compile_ruleset
    from rules.validation import parse_ruleset

    directory = parse_directory(default_directory_document())
    ruleset = parse_ruleset(default_ruleset_document(), directory)
    active = ActiveRuleset(1, ruleset, compile_ruleset(ruleset))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    history = []
    for n in range(40_000):
        at = (start + timedelta(minutes=n)).isoformat()
        data = {"email": f"{n}@x.io", "source": "website", "region": ("east", "west")[n % 2]}
        history.append(LoggedEvent(f"lead-{n}", 1, f"lead-{n}/1", "lead.captured", at, at, data))
    announced = []

    def report(phase, done, total):
        if not announced:
            [child] = multiprocessing.active_children()
            print(child.pid, flush=True)
            announced.append(child.pid)

    replay_runs(history, fixed(active), fixed(active), directory, None, report, parallel=True)
    print("finished", flush=True)
    """
)


def alive(pid: int) -> bool:
    """Whether `pid` still runs (an exited process nobody has reaped yet does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.skipif(not can_fork() or sys.platform != "linux", reason="Linux's prctl, /proc")
@pytest.mark.timeout(120)
def test_a_replay_child_dies_with_its_parent_killed_outright(tmp_path: Path) -> None:
    script = tmp_path / "replay_then_get_killed.py"
    script.write_text(SCRIPT)
    replaying = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    child = None
    try:
        assert replaying.stdout is not None
        child = int(replaying.stdout.readline())
        assert alive(child) and parent_of(child) == replaying.pid  # replaying the baseline

        os.kill(replaying.pid, signal.SIGKILL)
        replaying.wait(timeout=10)
        deadline = time.monotonic() + 2  # its run alone has seconds to go
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.02)

        assert not alive(child), "the replay's child outlived its killed parent"
    finally:
        replaying.kill()
        replaying.wait()
        if child is not None and alive(child):
            os.kill(child, signal.SIGKILL)
