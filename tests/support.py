"""What tests and benchmarks share: free ports, waiting for something to hold, and the
processes of a process group. Plain functions, no pytest: `bench/` imports them too
(`from tests.support import ...`; tests import `support`, tests/ being on their path)."""

from __future__ import annotations

import asyncio
import inspect
import random
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")


# Ports are picked below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`,
# 32768-60999 by default). One picked inside it can be taken, between the pick and the
# server's bind, by any outgoing connection on the machine, and stays taken as long as
# that connection lives: seen as a `leadflow dev` whose worker could never bind its
# metrics port while the other tests ran.
PICKED_PORTS = range(20000, 32768)


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports that were free on 127.0.0.1 a moment ago, from
    `PICKED_PORTS` (all bound at once, so they are distinct)."""
    sockets: list[socket.socket] = []
    try:
        while len(sockets) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(("127.0.0.1", random.choice(PICKED_PORTS)))
            except OSError:  # in use: pick another
                sock.close()
                continue
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    [port] = free_ports(1)
    return port


def wait_for_port(port: int, timeout: float) -> None:
    """Return once something listens on 127.0.0.1:`port`; TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


Why = str | Callable[[], str]  # what was awaited, or how things stand (asked on failure)


def _failed(what: Why, seconds: float) -> AssertionError:
    said = what if isinstance(what, str) else what()
    return AssertionError(f"{said}: not within {seconds:.0f}s")


def eventually(
    probe: Callable[[], T | None], what: Why, seconds: float, interval: float = 0.2
) -> T:
    """What `probe` returns once it returns something other than None; AssertionError
    saying `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise _failed(what, seconds)
        time.sleep(interval)


async def settles(
    probe: Callable[[], Awaitable[T | None]], what: Why, seconds: float, interval: float = 0.5
) -> T:
    """`eventually` for a coroutine `probe`, sleeping without blocking the event loop."""
    deadline = time.monotonic() + seconds
    while True:
        found = await probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise _failed(what, seconds)
        await asyncio.sleep(interval)


async def settles_while_progressing(
    probe: Callable[[], Awaitable[T | None]],
    progress: Callable[[], int],
    what: Why,
    stalled_seconds: float,
    interval: float = 0.5,
) -> T:
    """`settles` for a backlog worked off at the pace of a loaded machine: AssertionError
    saying `what` only once `progress()` (how many items are done) has not grown for
    `stalled_seconds`. A stop fails; slowness alone does not (tests assert no timing)."""
    done, moved = progress(), time.monotonic()
    while True:
        found = await probe()
        if found is not None:
            return found
        if progress() > done:
            done, moved = progress(), time.monotonic()
        elif time.monotonic() - moved > stalled_seconds:
            said = what if isinstance(what, str) else what()
            raise AssertionError(f"{said}: none done in the last {stalled_seconds:.0f}s")
        await asyncio.sleep(interval)


async def until(
    check: Callable[[], object], what: str, seconds: float, interval: float = 0.1
) -> None:
    """Return once `check` holds (returns something true; a coroutine function is awaited);
    AssertionError naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        held = check()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened within {seconds:.0f}s: {what}")
        await asyncio.sleep(interval)


def group_members(pgid: int) -> list[int]:
    """Pids of the live (non-zombie) processes in process group `pgid`, read from /proc."""
    members: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it exited while we looked
        # The fields after the command name (which may hold spaces): state, ppid, pgrp, …
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def metric_value(exposition: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name` with exactly `labels` in a Prometheus text
    exposition (`GET /metrics`), None when it has no such sample."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def all_up(readyz: dict[str, Any]) -> bool:
    """A `/readyz` answer says every check is up (its 200 also means degraded: Temporal or
    the worker away, leads in the quarantine)."""
    checks = readyz.get("checks", {})
    return bool(checks) and all(state == "up" for state in checks.values())


def metric_total(exposition: str, name: str) -> float:
    """The sum of every sample named `name` (all label values) in a Prometheus exposition."""
    return sum(
        float(sample.value)
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    )
