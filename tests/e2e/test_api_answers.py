"""The answers of a real `leadflow dev` holding a lead with a history (assigned by a rule,
followed up, qualified, won, a campaign's spend, a notification) are the ones
`docs/openapi.json` declares: each read operation's body is valid against the schema of
its status, so a client generated from the description can read every field.

The fuzz test (`tests/integration/test_fuzz_api.py`) checks the same on an app with no
worker or projector, where reports have few rows and no lead is ever assigned.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import jsonschema_rs
import pytest
from support import eventually

if TYPE_CHECKING:
    from conftest import LeadflowDev

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(300)]

DESCRIPTION: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "docs" / "openapi.json").read_text(encoding="utf-8")
)
SETTLE_SECONDS = 90.0


def declared(method: str, path: str, status: int) -> jsonschema_rs.Draft202012Validator:
    """A validator of the JSON body `path` declares for `status`."""
    media = DESCRIPTION["paths"][path][method]["responses"][str(status)]["content"]
    root = {**media["application/json"]["schema"], "components": DESCRIPTION["components"]}
    return jsonschema_rs.Draft202012Validator(root)


def conforms(response: httpx.Response, method: str, path: str) -> dict[str, Any]:
    """The response's JSON, after checking it against what `path` declares for its status."""
    validator = declared(method, path, response.status_code)
    body: dict[str, Any] = response.json()
    errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, f"{method.upper()} {response.url} {response.status_code}: {errors}"
    return body


def test_the_answers_of_a_lead_with_a_history_are_the_declared_ones(
    shared_dev: LeadflowDev,
) -> None:
    with httpx.Client(
        base_url=shared_dev.api_url,
        headers={"Authorization": f"Bearer {shared_dev.admin_key}"},
        timeout=30,
    ) as http:

        def post(body: dict[str, Any]) -> dict[str, Any]:
            return conforms(http.post("/v1/events", json=body), "post", "/v1/events")

        captured = post(
            {
                "type": "lead.captured",
                "data": {
                    "email": "ann@example.com",
                    "name": "Ann",
                    "source": "website",
                    "region": "east",
                    "campaign_id": "spring",
                    "intent": "low",
                    "attributes": {"budget": 1200},
                },
            }
        )
        lead_id = captured["lead_id"]

        def lead() -> dict[str, Any]:
            return conforms(http.get(f"/v1/leads/{lead_id}"), "get", "/v1/leads/{lead_id}")

        eventually(lambda: lead()["owner"] or None, "the lead assigned", SETTLE_SECONDS)
        for body in (
            {"type": "lead.followed_up", "lead_id": lead_id, "data": {"rep_id": "rep-east-1"}},
            {"type": "lead.qualified", "lead_id": lead_id, "data": {"stage": "MQL"}},
            {"type": "lead.won", "lead_id": lead_id, "data": {"amount": 800, "currency": "CNY"}},
        ):
            post(body)
        batch = http.post(
            "/v1/events/batch",
            json={
                "events": [
                    {
                        "type": "campaign.spend_recorded",
                        "data": {"campaign_id": "spring", "amount": 100},
                    }
                ]
            },
        )
        conforms(batch, "post", "/v1/events/batch")

        def won_on_the_board() -> bool | None:
            board = http.get("/v1/reports/leaderboard").json()
            return True if board["rows"] else None

        eventually(won_on_the_board, "the won deal in the reports", SETTLE_SECONDS)
        assert lead()["stage"] == "won"

        events = conforms(
            http.get(f"/v1/leads/{lead_id}/events"), "get", "/v1/leads/{lead_id}/events"
        )
        assert {"lead.assigned", "lead.task_created"} <= {e["type"] for e in events["events"]}
        conforms(http.get("/v1/leads", params={"owner": "rep-east-1"}), "get", "/v1/leads")
        conforms(
            http.get("/v1/notifications", params={"lead_id": lead_id}), "get", "/v1/notifications"
        )
        reads = [
            "/livez",
            "/healthz",
            "/readyz",
            "/v1/status",
            "/v1/projections",
            "/v1/rulesets",
            "/v1/rulesets/active",
            "/v1/rulesets/schema",
            "/v1/directory",
            "/v1/keys",
            "/v1/quarantine",
            *(
                f"/v1/reports/{name}"
                for name in (
                    "sources",
                    "funnel",
                    "campaign-roi",
                    "leaderboard",
                    "follow-up-efficiency",
                    "kpis",
                    "experiments",
                    "definitions",
                )
            ),
        ]
        for path in reads:
            conforms(http.get(path), "get", path)
        conforms(http.get("/v1/rulesets/1"), "get", "/v1/rulesets/{version}")
        refused = http.get("/v1/rulesets/999")
        assert refused.status_code == 404
        conforms(refused, "get", "/v1/rulesets/{version}")

        # Export and erasure (docs/erasure.md), on a lead of their own.
        export_path, erase_path = "/v1/leads/{lead_id}/export", "/v1/leads/{lead_id}/erase"
        exported = conforms(http.get(f"/v1/leads/{lead_id}/export"), "get", export_path)
        assert exported["state"]["email"] == "ann@example.com"
        forget = {"email": "forget-me.e2e@example.com", "source": "ads"}
        other = post({"type": "lead.captured", "data": forget})
        erased = conforms(http.post(f"/v1/leads/{other['lead_id']}/erase"), "post", erase_path)
        assert erased["erased"] is True
        after = conforms(http.get(f"/v1/leads/{other['lead_id']}/export"), "get", export_path)
        assert after["erased"] is True and after["state"]["email"] is None
        missing = http.get("/v1/leads/00000000-0000-4000-8000-000000000000/export")
        assert missing.status_code == 404
        conforms(missing, "get", export_path)
