from datetime import UTC, datetime
from typing import Any

import pytest

from domain.errors import InvalidEvent
from domain.events import DECIDED_TYPES, parse_event

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEAD = "6f1c1b7e-2a5d-4c44-9a7b-0c1f5b1f0c11"


def parse(body: object) -> Any:
    return parse_event(body, now=NOW, phone_region="CN")


def paths(body: object) -> dict[str, str]:
    with pytest.raises(InvalidEvent) as caught:
        parse(body)
    return {e.path: e.message for e in caught.value.errors}


def test_a_capture_is_normalised_and_stamped() -> None:
    event = parse(
        {
            "type": "lead.captured",
            "data": {"email": " A@X.io", "phone": "13800138000", "source": "web"},
        }
    )
    assert event.identities == {"email": "a@x.io", "phone": "+8613800138000"}
    assert event.data["email"] == "a@x.io"
    assert event.occurred_at == NOW
    assert event.lead_id is None


def test_a_capture_needs_source_and_a_way_to_reach_the_lead() -> None:
    errors = paths({"type": "lead.captured", "data": {"name": "Ann"}})
    assert "/data/source" in errors
    assert "email or phone is required" in errors["/data"]


def test_every_bad_field_is_named_by_json_pointer() -> None:
    errors = paths(
        {
            "type": "lead.captured",
            "occurred_at": "yesterday",
            "colour": "red",
            "data": {"email": "nope", "source": "web", "intent": "urgent", "extra": 1},
        }
    )
    assert set(errors) == {"/occurred_at", "/colour", "/data/email", "/data/intent", "/data/extra"}


@pytest.mark.parametrize("decided", sorted(DECIDED_TYPES))
def test_decided_types_cannot_be_posted(decided: str) -> None:
    errors = paths({"type": decided, "lead_id": LEAD, "data": {}})
    assert "decided by leadflow" in errors["/type"]


def test_unknown_type() -> None:
    assert "unknown event type" in paths({"type": "lead.teleported", "data": {}})["/type"]


def test_lead_id_rules() -> None:
    assert "/lead_id" in paths({"type": "lead.followed_up", "data": {"rep_id": "r"}})
    assert "/lead_id" in paths(
        {"type": "lead.followed_up", "lead_id": "42", "data": {"rep_id": "r"}}
    )
    assert "/lead_id" in paths(
        {"type": "lead.captured", "lead_id": LEAD, "data": {"email": "a@b.co", "source": "x"}}
    )
    event = parse({"type": "lead.followed_up", "lead_id": LEAD, "data": {"rep_id": "r"}})
    assert str(event.lead_id) == LEAD


def test_timestamps_need_an_offset_and_are_stored_in_utc() -> None:
    naive = {"type": "lead.lost", "lead_id": LEAD, "occurred_at": "2026-01-01T09:00:00"}
    assert "offset" in paths(naive)["/occurred_at"]
    event = parse({**naive, "occurred_at": "2026-01-01T09:00:00+08:00"})
    assert event.occurred_at == datetime(2026, 1, 1, 1, 0, tzinfo=UTC)


def test_amounts_and_currencies() -> None:
    errors = paths({"type": "lead.won", "lead_id": LEAD, "data": {"amount": -5, "currency": "usd"}})
    assert set(errors) == {"/data/amount", "/data/currency"}
    won = parse({"type": "lead.won", "lead_id": LEAD, "data": {"amount": "1200.50"}})
    assert won.data == {"amount": "1200.50"}


def test_spend_belongs_to_no_lead_and_its_period_must_be_in_order() -> None:
    errors = paths(
        {
            "type": "campaign.spend_recorded",
            "data": {
                "campaign_id": "c1",
                "amount": 10,
                "period_start": "2026-02-01",
                "period_end": "2026-01-01",
            },
        }
    )
    assert "period_end is before period_start" in errors["/data"]


def test_non_objects_are_rejected() -> None:
    assert "" in paths(["not", "an", "object"])
    assert "/data" in paths({"type": "lead.unsubscribed", "lead_id": LEAD, "data": []})


def test_the_fingerprint_ignores_the_event_id_but_not_the_payload() -> None:
    body = {"type": "lead.lost", "lead_id": LEAD, "data": {"reason": "budget"}}
    a = parse({**body, "event_id": "1"})
    b = parse({**body, "event_id": "2"})
    c = parse({**body, "data": {"reason": "timing"}})
    assert a.fingerprint == b.fingerprint != c.fingerprint
