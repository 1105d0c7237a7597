"""Kill the worker mid-sequence under `leadflow dev` (its supervisor starts it again): no
timer is lost and no email is sent twice, to a real SMTP server started by the test."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from support import free_port, until

if TYPE_CHECKING:
    from conftest import LeadflowDev, Processes

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(300)]

STEPS = ["welcome", "article-1", "article-2", "article-3"]
RULESET: dict[str, Any] = {
    "name": "nurture in seconds",
    "rules": [
        {
            "id": "nurture",
            "when": ["lead.captured"],
            "conditions": {"all": []},
            "actions": [{"name": "enroll_in_sequence", "params": {"sequence": "drip"}}],
        },
    ],
    "sequences": {
        "drip": {
            "steps": [
                {"wait": "PT0S" if i == 0 else "PT4S", "template": t} for i, t in enumerate(STEPS)
            ]
        }
    },
}


class Inbox:
    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        subject = next(
            (
                line[9:]
                for line in content.decode(errors="replace").splitlines()
                if line.startswith("Subject: ")
            ),
            "",
        )
        self.subjects.append(subject)
        return "250 OK"


def worker_pids(dev: LeadflowDev) -> list[int]:
    """The `leadflow worker` processes of this dev instance (its process group)."""
    found = []
    for pid in dev.group.members():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"worker" in cmdline and b"leadflow" in b" ".join(cmdline):
            found.append(pid)
    return found


async def test_killing_the_worker_mid_sequence_loses_no_step_and_sends_none_twice(
    processes: Processes, tmp_path: Path
) -> None:
    inbox = Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        dev = processes.leadflow_dev(
            tmp_path / "data", env={"LEADFLOW_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}"}
        )
        await asyncio.to_thread(dev.wait_ready)
        headers = {"Authorization": f"Bearer {dev.admin_key}"}
        async with httpx.AsyncClient(base_url=dev.api_url, headers=headers, timeout=30) as http:
            version = (await http.post("/v1/rulesets", json=RULESET)).json()["version"]
            assert (await http.post(f"/v1/rulesets/{version}/activate")).status_code == 200
            lead = (
                await http.post(
                    "/v1/events",
                    json={
                        "type": "lead.captured",
                        "data": {
                            "email": "ann@example.com",
                            "name": "Ann",
                            "source": "website",
                            # Reads English (LEADFLOW_LOCALE's default is zh-CN).
                            "attributes": {"locale": "en"},
                        },
                    },
                )
            ).json()["lead_id"]

            async def welcomed() -> bool:
                events = (await http.get(f"/v1/leads/{lead}/events")).json()["events"]
                return any(e["type"] == "nurture.email_sent" for e in events)

            # Between steps, once the welcome is sent and on the log (a crash in the instant
            # between the SMTP server's 250 and the record would send it again: at least once).
            await until(welcomed, "the welcome email recorded", 90, 0.2)
            [worker] = worker_pids(dev)
            os.kill(worker, signal.SIGKILL)  # mid-sequence: the next step is due in 4 s

            async def all_sent() -> bool:
                events = (await http.get(f"/v1/leads/{lead}/events")).json()["events"]
                return sum(e["type"] == "nurture.email_sent" for e in events) == len(STEPS)

            await until(all_sent, "every step's email recorded", 90, 0.2)
            assert worker_pids(dev) and worker_pids(dev) != [worker]  # restarted
            events = (await http.get(f"/v1/leads/{lead}/events")).json()["events"]
        steps = [e["data"]["step"] for e in events if e["type"] == "nurture.email_sent"]
        assert sorted(steps) == [0, 1, 2, 3]  # each step once (late ones may race)
        assert len(inbox.subjects) == len(STEPS)  # none sent twice
        assert inbox.subjects[0] == "Welcome, Ann"
    finally:
        controller.stop()
