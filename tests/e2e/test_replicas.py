"""Replicas on PostgreSQL: two `leadflow api`, two `leadflow worker` and two `leadflow
projector` processes with the same settings, the log in four partitions that the projectors
share, leads posted to both APIs, and one projector killed -9 mid-run: the survivor takes
its partitions over within the lease's length, every lead is assigned exactly once, every
partition catches up and every read model equals a fresh rebuild from the log."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select
from support import free_ports, settles
from test_faults import (
    ASSIGN_EVERYONE,
    assert_decided_once,
    capture,
    open_loop,
    set_up_rules,
    wait_until_owned,
)

from leadflow.bootstrap import open_store, projections
from leadflow.settings import Settings
from projections.projector import Projector

if TYPE_CHECKING:
    from conftest import Processes, ProcessGroup

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(400)]

LEASE_SECONDS = 3
PARTITIONS = 4
LEADS_BEFORE, LEADS_AFTER = 30, 30


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_replicas_share_the_log_and_a_killed_projector_is_taken_over(
    processes: Processes, tmp_path: Path, database_url: str
) -> None:
    temporal = processes.temporal_server(tmp_path / "temporal.db")
    env = {
        "LEADFLOW_DATABASE_URL": database_url,
        "LEADFLOW_TEMPORAL_ADDRESS": temporal.address,
        "LEADFLOW_FOLLOWER_LEASE_SECONDS": str(LEASE_SECONDS),
        "LEADFLOW_FOLLOWER_PARTITIONS": str(PARTITIONS),
    }
    ports = free_ports(2)
    apis = [
        processes.leadflow(
            f"api-{i}",
            "api",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / f"api-{i}"),
            env=env,
        )
        for i, port in enumerate(ports)
    ]
    for i in range(2):
        processes.leadflow(f"worker-{i}", "worker", "--data-dir", str(tmp_path / f"w-{i}"), env=env)
    projectors = [
        processes.leadflow(
            f"projector-{i}", "projector", "--data-dir", str(tmp_path / f"p-{i}"), env=env
        )
        for i in range(2)
    ]
    key = apis[0].env["LEADFLOW_BOOTSTRAP_ADMIN_KEY"]
    clients = [
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        for port in ports
    ]
    try:
        for http in clients:
            await settles(lambda http=http: _ready(http), "both APIs ready", 90)
        await set_up_rules(clients[0], {"name": "replicas", "rules": [ASSIGN_EVERYONE]})

        # Both projectors follow, half of the partitions each.
        await settles(lambda: _shared(clients[1]), "the projectors sharing the partitions", 60)
        holders = await _holders(clients[1])
        following = _group_of(projectors, holders[0])
        survivor = next(group for group in projectors if group is not following)

        bodies = [capture(f"replica-{i}@example.com") for i in range(LEADS_BEFORE + LEADS_AFTER)]
        # Alternately to each API, in an open loop.
        first = await asyncio.gather(
            open_loop(clients[0], bodies[0:LEADS_BEFORE:2], 10),
            open_loop(clients[1], bodies[1:LEADS_BEFORE:2], 10),
        )
        following.kill_group()
        second = await asyncio.gather(
            open_loop(clients[0], bodies[LEADS_BEFORE::2], 10),
            open_loop(clients[1], bodies[LEADS_BEFORE + 1 :: 2], 10),
        )
        posts = [post for batch in (*first, *second) for post in batch]

        async def taken_over() -> bool | None:
            holders = await _holders(clients[0])
            alive = all(holder and _group_of(projectors, holder) is survivor for holder in holders)
            return True if alive else None

        await settles(taken_over, "the survivor holding every partition", 4 * LEASE_SECONDS + 10)
        await wait_until_owned(clients[1], [post.answer["lead_id"] for post in posts])
        await assert_decided_once(clients[0], posts)
        await settles(lambda: _caught_up(clients[0]), "every follower caught up", 60)
    finally:
        for http in clients:
            await http.aclose()

    _assert_read_models_equal_a_rebuild(database_url)


async def _ready(http: httpx.AsyncClient) -> bool | None:
    try:
        return True if (await http.get("/readyz")).status_code == 200 else None
    except httpx.TransportError:
        return None


async def _status(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/v1/status")
    assert response.status_code in (200,), response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _holders(http: httpx.AsyncClient) -> list[str | None]:
    """Who follows each partition, in partition order (none before a projector joined)."""
    followers = (await _status(http))["followers"]
    assert [f["partition"] for f in followers] in ([], list(range(PARTITIONS))), followers
    return [f["holder"] for f in followers]


async def _shared(http: httpx.AsyncClient) -> bool | None:
    holders = await _holders(http)
    shares = Counter(holders)
    return True if None not in shares and sorted(shares.values()) == [2, 2] else None


async def _caught_up(http: httpx.AsyncClient) -> bool | None:
    answer = await _status(http)
    lags = [c["lag_events"] for c in answer["components"] if c["lag_events"] is not None]
    partitions = [f["lag_events"] for f in answer["followers"]]
    return True if lags and not any(lags) and partitions and not any(partitions) else None


def _group_of(groups: list[ProcessGroup], holder: str) -> ProcessGroup:
    """The projector group whose process is `holder` (host:pid:nonce)."""
    pid = int(holder.split(":")[1])
    [found] = [group for group in groups if group.popen is not None and group.popen.pid == pid]
    return found


def _assert_read_models_equal_a_rebuild(database_url: str) -> None:
    """Each read model's rows are those a fresh projection of the whole log makes."""
    store = open_store(Settings(database_url=database_url, bootstrap_admin_key=None))
    try:
        fresh = projections("__fresh")
        for projection in fresh:
            with store.engine.begin() as conn:
                projection.metadata.create_all(conn)
        projector = Projector(store.event_log, store.engine, fresh)
        while projector.project_once():
            pass
        for live, rebuilt in zip(projections(), fresh, strict=True):
            with store.engine.connect() as conn:
                rows = sorted(map(tuple, conn.execute(select(live.table))), key=repr)
                copied = sorted(map(tuple, conn.execute(select(rebuilt.table))), key=repr)
            assert rows == copied, f"{live.name} differs from a rebuild of the log"
            assert rows or live.name not in ("leads", "lead_stages"), live.name
    finally:
        store.close()
