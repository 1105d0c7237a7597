"""Business-hours calendars end to end: the directory's calendars and the public holidays
lookup over HTTP, and a business timer on a real Temporal dev server with the real worker,
in a calendar whose working hours exclude the present moment."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from leadflow.settings import Settings

if TYPE_CHECKING:
    from conftest import RunPipeline

ADMIN = {"Authorization": "Bearer lf_test_admin"}
DEFAULT_DIRECTORY: dict[str, Any] = json.loads(
    resources.files("rules").joinpath("default_directory.json").read_text()
)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def query_errors(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert all(d.get("in") == "query" for d in details)
    return {d["path"]: d["message"] for d in details}


def test_the_public_holidays_of_china_2026_fill_a_calendar(client: TestClient) -> None:
    answer = client.get("/v1/directory/holidays?country=cn&year=2026", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["country"] == "CN" and body["year"] == 2026
    holidays = {h["date"]: h["name"] for h in body["holidays"]}
    assert holidays["2026-10-01"] == "National Day"
    assert {"date": "2026-10-10", "hours_of": "mon"} in body["workdays"]
    # What it answers is a valid calendar as it is.
    directory = copy.deepcopy(DEFAULT_DIRECTORY)
    directory["calendars"][0].update(holidays=body["holidays"], workdays=body["workdays"])
    assert client.put("/v1/directory", json=directory, headers=ADMIN).status_code == 200


def test_an_unknown_country_or_a_year_out_of_range_is_named(client: TestClient) -> None:
    get = client.get
    assert query_errors(get("/v1/directory/holidays?country=XX&year=2026", headers=ADMIN)) == {
        "/country": "'XX': no public holidays known for this country code"
    }
    assert "/year" in query_errors(
        get("/v1/directory/holidays?country=CN&year=2101", headers=ADMIN)
    )
    assert "/year" in query_errors(
        get("/v1/directory/holidays?country=CN&year=1999", headers=ADMIN)
    )
    assert "/country" in query_errors(
        get("/v1/directory/holidays?country=../../etc&year=2026", headers=ADMIN)
    )
    assert get("/v1/directory/holidays?country=CN&year=2026").status_code == 401


def test_a_bad_calendar_is_refused_by_pointer_and_the_directory_is_unchanged(
    client: TestClient,
) -> None:
    before = client.get("/v1/directory", headers=ADMIN).json()
    assert before["calendars"][0]["id"] == "cn-business"
    bad = copy.deepcopy(DEFAULT_DIRECTORY)
    bad["calendars"][0]["time_zone"] = "Asia/Atlantis"
    bad["calendars"][0]["hours"]["mon"] = [["13:00", "12:00"]]
    bad["calendars"][0]["holidays"] = [{"date": "2026-01-01"}] * 2001
    bad["teams"][1]["calendar"] = "nowhere"
    refused = client.put("/v1/directory", json=bad, headers=ADMIN)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_directory"
    assert {d["path"] for d in error["details"]} == {
        "/calendars/0/time_zone",
        "/calendars/0/holidays",
        "/teams/1/calendar",
    }
    assert client.get("/v1/directory", headers=ADMIN).json() == before


# -- a business timer on Temporal --------------------------------------------------------

OPENS_IN = timedelta(seconds=10)  # time for the capture to be decided before the window
ZONES = ("UTC", "Asia/Shanghai", "America/New_York", "Asia/Kolkata")


def window_today(now: datetime) -> tuple[ZoneInfo, datetime, datetime]:
    """A zone where now and the coming minute share a local date (never two zones 12 h
    apart near midnight at once), and today's only window there: opening `OPENS_IN` from
    now (whole seconds) for a minute."""
    for name in ZONES:
        zone = ZoneInfo(name)
        local = now.astimezone(zone)
        if time(0, 5) <= local.time() <= time(23, 55):
            opens = (now + OPENS_IN).replace(microsecond=0) + timedelta(seconds=1)
            return zone, opens, opens + timedelta(minutes=1)
    raise AssertionError("every zone is near midnight")  # not with zones 12 h apart


SECONDS_RULESET: dict[str, Any] = {
    "name": "business seconds",
    "timers": [
        {
            "id": "sla",
            "start_on": ["lead.assigned"],
            "cancel_on": ["lead.followed_up"],
            "after": "PT2S",
            "calendar": "business",
        },
        {
            # Planned by the deliveries activity once the owner's email is delivered.
            "id": "no_reply",
            "start_on": ["notification.sent"],
            "after": "PT3S",
            "calendar": "business",
        },
    ],
    "rules": [
        {
            "id": "assign",
            "when": ["lead.captured"],
            "actions": [
                {"name": "assign_to_rep", "params": {"rep": "rep-east-1"}},
                {"name": "notify", "params": {"to": "owner", "template": "follow-up-overdue"}},
            ],
        },
        {
            "id": "overdue",
            "when": ["timer.sla"],
            "actions": [{"name": "add_tag", "params": {"tag": "sla-missed"}}],
        },
        {
            "id": "unanswered",
            "when": ["timer.no_reply"],
            "actions": [{"name": "add_tag", "params": {"tag": "no-reply"}}],
        },
    ],
}


async def test_business_timers_wait_for_the_window_then_count_their_seconds(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    zone, opens, closes = window_today(datetime.now(UTC))
    local_opens, local_closes = opens.astimezone(zone), closes.astimezone(zone)
    weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local_opens.weekday()]
    directory = copy.deepcopy(DEFAULT_DIRECTORY)
    directory["calendars"] = [
        {
            "id": "now-and-then",
            "time_zone": zone.key,
            "hours": {
                weekday: [[local_opens.strftime("%H:%M:%S"), local_closes.strftime("%H:%M:%S")]]
            },
        }
    ]
    for team in directory["teams"]:
        team["calendar"] = "now-and-then"
    async with run_pipeline(temporal_settings) as pipeline:
        rulebook, now = pipeline.store.rulebook, datetime.now(UTC)
        rulebook.install_defaults(now)
        rulebook.replace_directory(directory, "test", now)
        rulebook.activate(rulebook.publish(SECONDS_RULESET, "test", now), "test", now)
        lead = pipeline.capture("ann@x.io")

        def events() -> list[Any]:
            return pipeline.store.event_log.lead_events(lead)

        def tagged(tag: str) -> Any:
            return next((e for e in events() if e.data.get("tag") == tag), None)

        await pipeline.until(
            lambda: tagged("sla-missed") and tagged("no-reply"), "both timers' rules", seconds=40
        )
        sent = next(e for e in events() if e.type == "notification.sent")
        assert datetime.fromisoformat(sent.recorded_at) < opens, "delivered too late to test"
        fired = {e.data["timer"]: e for e in events() if e.type == "lead.timer_fired"}
        due = {timer: datetime.fromisoformat(str(e.data["due_at"])) for timer, e in fired.items()}
        assert due == {
            "sla": opens + timedelta(seconds=2),
            "no_reply": opens + timedelta(seconds=3),
        }
        # They fired no earlier: the workflow slept until the calendar's due instants.
        assert datetime.fromisoformat(tagged("sla-missed").recorded_at) >= due["sla"]
        assert datetime.fromisoformat(tagged("no-reply").recorded_at) >= due["no_reply"]
