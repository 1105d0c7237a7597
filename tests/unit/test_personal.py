"""What may travel where it would outlive an erasure (Temporal): events and states without
their personal data, everything else as it was."""

from __future__ import annotations

from domain.events import EXTERNAL_DATA
from domain.personal import PERSONAL_FIELDS, state_without_personal_data, without_personal_data
from domain.state import LeadState, LoggedEvent, apply_event

LEAD = "0b7e4a52-2c4e-5d8a-9f3e-6a1d2c3b4e5f"
AT = "2026-01-01T00:00:00+00:00"


def event(type_: str, data: dict[str, object]) -> LoggedEvent:
    return LoggedEvent(LEAD, 1, "e1", type_, AT, AT, data)


def test_an_event_loses_its_personal_fields_and_keeps_the_rest() -> None:
    captured = event(
        "lead.captured",
        {
            "email": "ann@x.io",
            "phone": "+8613800138000",
            "name": "Ann",
            "company": "ACME",
            "attributes": {"k": "v"},
            "source": "web",
            "region": "east",
        },
    )
    stripped = without_personal_data(captured)
    assert stripped.data == {"source": "web", "region": "east"}
    assert (stripped.lead_id, stripped.sequence, stripped.type) == (LEAD, 1, "lead.captured")
    assert captured.data["email"] == "ann@x.io"  # the original is left alone
    note = event("lead.followed_up", {"rep_id": "rep-a", "note": "called Ann at home"})
    assert without_personal_data(note).data == {"rep_id": "rep-a"}
    sent = event("notification.sent", {"status": "failed", "recipient": "lead", "reason": "x"})
    assert without_personal_data(sent).data == {"status": "failed"}
    won = event("lead.won", {"amount": "900"})
    assert without_personal_data(won) is won


def test_a_state_loses_its_personal_fields_and_keeps_what_rules_need() -> None:
    state = apply_event(
        LeadState(lead_id=LEAD),
        event(
            "lead.captured",
            {"email": "ann@x.io", "phone": "+86138", "name": "Ann", "attributes": {"k": 1}},
        ),
    )
    stripped = state_without_personal_data(state)
    assert (stripped.email, stripped.phone, stripped.name, stripped.attributes) == (
        None,
        None,
        None,
        {},
    )
    assert (stripped.email_domain, stripped.has_phone, stripped.touch_count) == ("x.io", True, 1)
    assert state_without_personal_data(stripped) is stripped


def test_every_personal_field_is_one_an_event_can_carry() -> None:
    """The catalogue names fields of real event types (a typo would seal nothing)."""
    for type_, names in PERSONAL_FIELDS.items():
        model = EXTERNAL_DATA.get(type_)
        if model is not None:
            assert set(names) <= set(model.model_fields), type_
