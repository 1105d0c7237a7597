"""Consent in the pure core: what sets and lifts a lead's do-not-contact flag, that no
nurture email is queued for a lead on it or without an email address (and the log says
why), and the List-Unsubscribe headers of a nurture email."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from domain.directory import parse_directory
from domain.errors import DoNotContactUnchanged, InvalidEvent
from domain.events import parse_event
from domain.lifecycle import ActiveRuleset
from domain.machine import LeadMachine
from domain.state import LeadState, LoggedEvent, apply_event, check_external_event, fold
from domain.tracking import list_unsubscribe_headers, unsubscribe_mailbox
from leadflow.settings import Settings
from projections.leads import state_of
from rules.compile import compile_ruleset
from rules.evaluate import facts_for
from rules.validation import parse_ruleset

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DIRECTORY = parse_directory({"teams": [], "reps": []})


class NoLoad:
    def open_leads(self, rep_id: str) -> int:
        return 0

    def last_assigned(self, team_id: str) -> str | None:
        return None


LEAD = "6f1c1b7e-2a5d-4c44-9a7b-0c1f5b1f0c11"


def ev(sequence: int, type_: str, data: dict[str, Any] | None = None) -> LoggedEvent:
    at = (T0 + timedelta(seconds=sequence)).isoformat()
    return LoggedEvent(LEAD, sequence, f"e{sequence}", type_, at, at, data or {})


def flag(*events: tuple[str, dict[str, Any]]) -> tuple[bool, str | None]:
    state = fold(LEAD, [ev(i, t, d) for i, (t, d) in enumerate(events, start=1)])
    return state.do_not_contact, state.do_not_contact_reason


CAPTURED = ("lead.captured", {"email": "ann@x.io", "source": "web"})


def test_what_sets_and_lifts_the_flag() -> None:
    assert flag(CAPTURED) == (False, None)
    assert flag(CAPTURED, ("lead.unsubscribed", {})) == (True, "unsubscribed")
    assert flag(CAPTURED, ("email.bounced", {"message_id": "m", "kind": "hard"})) == (
        True,
        "hard_bounce",
    )
    # A soft bounce, and a bounce stored before `kind` existed, leave it alone.
    assert flag(CAPTURED, ("email.bounced", {"message_id": "m", "kind": "soft"})) == (False, None)
    assert flag(CAPTURED, ("email.bounced", {"message_id": "m"})) == (False, None)
    admin = ("lead.do_not_contact_set", {"reason": "asked on the phone", "by": "key-1"})
    lifted = ("lead.do_not_contact_lifted", {"reason": "signed up again", "by": "key-1"})
    assert flag(CAPTURED, admin) == (True, "admin")
    assert flag(CAPTURED, admin, lifted) == (False, None)
    # The first reason stays; a lift clears whatever set it, and the unsubscribe stays a fact.
    assert flag(CAPTURED, ("lead.unsubscribed", {}), admin) == (True, "unsubscribed")
    state = fold(LEAD, [ev(1, *CAPTURED), ev(2, "lead.unsubscribed"), ev(3, *lifted)])
    assert (state.do_not_contact, state.unsubscribed) == (False, True)


def test_an_admin_change_that_changes_nothing_is_a_conflict() -> None:
    free = LeadState(lead_id=LEAD)
    flagged = apply_event(free, ev(1, "lead.unsubscribed"))
    with pytest.raises(DoNotContactUnchanged, match="already"):
        check_external_event(flagged, "lead.do_not_contact_set", {"reason": "x"})
    with pytest.raises(DoNotContactUnchanged, match="not on"):
        check_external_event(free, "lead.do_not_contact_lifted", {"reason": "x"})
    check_external_event(free, "lead.do_not_contact_set", {"reason": "x"})
    check_external_event(flagged, "lead.do_not_contact_lifted", {"reason": "x"})


def parse(body: dict[str, Any]) -> dict[str, Any]:
    return parse_event(body, now=T0, phone_region="CN").data


def test_a_bounce_says_hard_or_soft_and_admin_events_are_not_posted_as_events() -> None:
    bounced = {"type": "email.bounced", "lead_id": LEAD, "data": {"message_id": "m"}}
    assert parse(bounced) == {"message_id": "m"}
    hard = {**bounced, "data": {"message_id": "m", "kind": "hard"}}
    assert parse(hard) == {"message_id": "m", "kind": "hard"}
    with pytest.raises(InvalidEvent) as bad:
        parse({**bounced, "data": {"message_id": "m", "kind": "permanent"}})
    assert [e.path for e in bad.value.errors] == ["/data/kind"]
    for admin in ("lead.do_not_contact_set", "lead.do_not_contact_lifted"):
        with pytest.raises(InvalidEvent) as refused:
            parse({"type": admin, "lead_id": LEAD, "data": {"reason": "x"}})
        assert [e.path for e in refused.value.errors] == ["/type"]
        assert "do-not-contact" in refused.value.errors[0].message


def test_the_rule_variable() -> None:
    flagged = fold(LEAD, [ev(1, *CAPTURED), ev(2, "lead.unsubscribed")])
    assert facts_for(flagged, T0, {})["do_not_contact"] is True
    assert facts_for(fold(LEAD, [ev(1, *CAPTURED)]), T0, {})["do_not_contact"] is False


# A sequence with seconds between its steps; its exit_on does not list bounces, so what
# ends it on a hard bounce is the flag.
NURTURE = parse_ruleset(
    {
        "name": "nurture",
        "rules": [
            {
                "id": "enrol",
                "when": ["lead.captured"],
                "conditions": {"all": []},
                "actions": [{"name": "enroll_in_sequence", "params": {"sequence": "drip"}}],
            }
        ],
        "sequences": {
            "drip": {
                "steps": [
                    {"wait": "PT0S", "template": "welcome"},
                    {"wait": "PT10S", "template": "article-1"},
                    {"wait": "PT10S", "template": "article-2"},
                ],
                "exit_on": ["email.replied"],
            }
        },
    },
    DIRECTORY,
)


def nurtured(**capture: Any) -> LeadMachine:
    m = LeadMachine(LEAD, ActiveRuleset(1, NURTURE, compile_ruleset(NURTURE)), DIRECTORY, NoLoad())
    m.receive("lead.captured", {"source": "web", **capture}, T0)
    m.advance(T0)  # the first step, due at once
    return m


def emails(m: LeadMachine) -> list[str]:
    return [e.data["template"] for e in m.log if e.type == "notification.queued"]


def exits(m: LeadMachine) -> list[tuple[str, str, str | None]]:
    return [
        (e.data["sequence"], e.data["reason"], e.rule_id)
        for e in m.log
        if e.type == "nurture.exited"
    ]


def test_a_phone_only_lead_is_not_enrolled_and_the_log_says_why() -> None:
    m = nurtured(phone="+8613800138000")
    m.advance(T0 + timedelta(minutes=1))
    assert emails(m) == [] and m.state.sequences == ()
    assert "nurture.enrolled" not in [e.type for e in m.log]
    assert exits(m) == [("drip", "no_email", "enrol")]
    # Once it has an address (a later capture), the rule enrols it.
    m.receive("lead.captured", {"source": "web", "email": "ann@x.io"}, T0 + timedelta(minutes=2))
    m.advance(T0 + timedelta(minutes=3))
    assert emails(m) == ["welcome", "article-1", "article-2"]


@pytest.mark.parametrize(
    ("event", "data", "reason"),
    [
        ("lead.do_not_contact_set", {"reason": "asked", "by": "key-1"}, "do_not_contact"),
        ("email.bounced", {"message_id": "m", "kind": "hard"}, "do_not_contact"),
        ("lead.unsubscribed", {}, "lead.unsubscribed"),
    ],
)
def test_the_flag_ends_a_running_sequence_before_its_next_step(
    event: str, data: dict[str, Any], reason: str
) -> None:
    m = nurtured(email="ann@x.io")
    assert emails(m) == ["welcome"]
    m.receive(event, data, T0 + timedelta(seconds=5))
    m.advance(T0 + timedelta(minutes=1))
    assert emails(m) == ["welcome"]
    assert exits(m) == [("drip", reason, None)]
    assert m.timers == {}


def test_a_soft_bounce_lets_the_sequence_go_on() -> None:
    m = nurtured(email="ann@x.io")
    m.receive("email.bounced", {"message_id": "m", "kind": "soft"}, T0 + timedelta(seconds=5))
    m.advance(T0 + timedelta(minutes=1))
    assert emails(m) == ["welcome", "article-1", "article-2"]
    assert exits(m) == [("drip", "completed", None)]


def test_a_lead_on_do_not_contact_is_not_enrolled_until_the_flag_is_lifted() -> None:
    m = nurtured(email="ann@x.io")
    m.receive("lead.do_not_contact_set", {"reason": "asked", "by": "k"}, T0 + timedelta(seconds=1))
    later = T0 + timedelta(minutes=1)
    m.receive("lead.captured", {"source": "web", "email": "ann@x.io"}, later)
    assert exits(m)[-1] == ("drip", "do_not_contact", "enrol")
    m.receive("lead.do_not_contact_lifted", {"reason": "again", "by": "k"}, later)
    m.receive("lead.captured", {"source": "web", "email": "ann@x.io"}, later)
    m.advance(later + timedelta(minutes=1))
    assert emails(m) == ["welcome", "welcome", "article-1", "article-2"]


def test_the_list_unsubscribe_headers() -> None:
    headers = list_unsubscribe_headers("https://lf.example.com/", "m-1", "news@example.com")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # What a mail client reads from the sent message: both URIs, the https one first.
    message = EmailMessage(policy=default)
    for name, value in headers.items():
        message[name] = value
    parsed = message_from(message.as_bytes())
    https, mailto = [u.strip().strip("<>") for u in parsed["List-Unsubscribe"].split(",")]
    assert https == "https://lf.example.com/t/u/m-1"
    address = urlsplit(mailto)
    assert (address.scheme, address.path) == ("mailto", "news@example.com")
    assert parse_qs(address.query) == {"subject": ["unsubscribe m-1"]}
    assert list_unsubscribe_headers("https://lf", "m-1", None)["List-Unsubscribe"] == (
        "<https://lf/t/u/m-1>"
    )
    assert unsubscribe_mailbox("Leadflow <news@example.com>") == "news@example.com"
    assert unsubscribe_mailbox("news@example.com") == "news@example.com"


def message_from(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_the_mailto_comes_from_the_sender_unless_set_and_empty_means_none() -> None:
    sender = Settings(mail_from="Leadflow <news@example.com>")
    assert sender.unsubscribe_mailbox == "news@example.com"
    own = Settings(mail_from="news@example.com", unsubscribe_mailto="optout@example.com")
    assert own.unsubscribe_mailbox == "optout@example.com"
    assert Settings(unsubscribe_mailto="").unsubscribe_mailbox is None
    for bad in ("not an address", "a@b>, <mailto:x@y", "a@b?subject=x"):
        with pytest.raises(ValidationError, match="unsubscribe_mailto"):
            Settings(unsubscribe_mailto=bad)


def test_a_leads_row_folded_before_the_flag_existed_reads_it_from_unsubscribed() -> None:
    before = {"lead_id": LEAD, "unsubscribed": True, "email": "ann@x.io"}
    upgraded = state_of(json.dumps(before))
    assert (upgraded.do_not_contact, upgraded.do_not_contact_reason) == (True, "unsubscribed")
    never = {**before, "unsubscribed": False}
    assert state_of(json.dumps(never)).do_not_contact is False
    lifted = {**before, "do_not_contact": False, "do_not_contact_reason": None}
    assert state_of(json.dumps(lifted)).do_not_contact is False
