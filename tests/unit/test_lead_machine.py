"""The seed's process on a virtual clock, with the built-in ruleset and demo directory:
every path of a lead's life (deadlines just before and after, pool, cool-down, idle
restarts, each way out of a nurture sequence), in microseconds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest

from domain.directory import parse_directory
from domain.errors import ClaimCooldown, DailyClaimLimitReached, LeadNotInPool, RepAtCapacity
from domain.lifecycle import ActiveRuleset
from domain.machine import LeadMachine
from domain.pool import check_claim
from rules.compile import compile_ruleset
from rules.model import PoolPolicy
from rules.validation import parse_ruleset

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)
DIRECTORY = parse_directory(
    json.loads(resources.files("rules").joinpath("default_directory.json").read_text())
)
DEFAULT = parse_ruleset(
    json.loads(resources.files("rules").joinpath("default_ruleset.json").read_text()), DIRECTORY
)
ACTIVE = ActiveRuleset(1, DEFAULT, compile_ruleset(DEFAULT))


class NoLoad:
    def open_leads(self, rep_id: str) -> int:
        return 0

    def last_assigned(self, team_id: str) -> str | None:
        return None


def machine() -> LeadMachine:
    return LeadMachine("lead-1", ACTIVE, DIRECTORY, NoLoad())


def capture(m: LeadMachine, at: datetime = T0, **data: Any) -> None:
    m.receive(
        "lead.captured", {"email": "ann@x.io", "source": "website", "region": "east", **data}, at
    )


def follow_up(m: LeadMachine, at: datetime) -> None:
    m.receive("lead.followed_up", {"rep_id": "rep-east-1", "kind": "call"}, at)


def happened(m: LeadMachine) -> list[tuple[str, Any]]:
    """(type, detail) of every decided event, in order."""
    detail = ("timer", "reason", "template", "sequence")
    return [
        (e.type, next((e.data[k] for k in detail if k in e.data), None))
        for e in m.log
        if e.caused_by is not None
    ]


def test_a_follow_up_just_before_24_h_means_no_reminder_and_no_reclaim() -> None:
    m = machine()
    capture(m)
    assert m.state.owner == "rep-east-1"
    assert set(m.timers) == {"first_follow_up", "reclaim", "reclaim_warning"}
    follow_up(m, T0 + 24 * H - timedelta(seconds=1))
    assert set(m.timers) == {"idle"}
    m.advance(T0 + 3 * D)
    assert "lead.reminder_sent" not in dict(happened(m))
    assert m.state.owner == "rep-east-1" and not m.state.in_pool


def test_just_after_24_h_the_owner_is_reminded_and_a_follow_up_then_saves_the_lead() -> None:
    m = machine()
    capture(m)
    m.advance(T0 + 24 * H)
    assert happened(m)[-3:] == [
        ("lead.timer_fired", "first_follow_up"),
        ("notification.queued", "follow-up-overdue"),
        ("lead.reminder_sent", "first_follow_up"),
    ]
    follow_up(m, T0 + 30 * H)
    m.advance(T0 + 3 * D)
    assert not m.state.in_pool and "lead.returned_to_pool" not in dict(happened(m))


def test_a_warning_at_40_h_then_at_48_h_the_pool_and_the_manager() -> None:
    m = machine()
    capture(m)
    m.advance(T0 + 48 * H - timedelta(seconds=1))
    assert ("notification.queued", "reclaim-warning") in happened(m)
    assert not m.state.in_pool
    m.advance(T0 + 48 * H)
    assert happened(m)[-3:] == [
        ("lead.timer_fired", "reclaim"),
        ("lead.returned_to_pool", "no_follow_up_48h"),
        ("notification.queued", "lead-reclaimed"),
    ]
    queued = [e for e in m.log if e.type == "notification.queued"][-1]
    assert queued.data["to"] == "manager"
    assert (m.state.in_pool, m.state.owner, m.timers) == (True, None, {})


def test_idle_after_7_days_is_restarted_by_each_follow_up() -> None:
    m = machine()
    capture(m)
    follow_up(m, T0 + H)
    follow_up(m, T0 + 6 * D)  # restarts the 7-day idle timer
    m.advance(T0 + 13 * D - timedelta(seconds=1))
    assert not m.state.in_pool
    m.advance(T0 + 13 * D)
    assert happened(m)[-2:] == [
        ("lead.returned_to_pool", "idle_7d"),
        ("notification.queued", "lead-idle"),
    ]
    assert [e for e in m.log if e.type == "notification.queued"][-1].data["to"] == "director"


def test_a_claim_from_the_pool_starts_the_owners_clock_again() -> None:
    m = machine()
    capture(m)
    m.advance(T0 + 48 * H)
    assert m.state.in_pool
    m.receive("lead.claimed", {"rep_id": "rep-east-2"}, T0 + 50 * H)
    assert m.state.owner == "rep-east-2"
    assert {t: v.due for t, v in m.timers.items()} == {
        "first_follow_up": T0 + 74 * H,
        "reclaim": T0 + 98 * H,
        "reclaim_warning": T0 + 90 * H,
    }


def test_claim_rules_cool_down_limit_capacity() -> None:
    m = machine()
    capture(m)
    m.advance(T0 + 48 * H)
    lead = m.state
    rep = DIRECTORY.rep("rep-east-1")
    policy = DEFAULT.pool
    assert policy == PoolPolicy(claim_cooldown="P2D", daily_claim_limit=20)
    lost = T0 + 48 * H
    with pytest.raises(ClaimCooldown):
        check_claim(lead, "rep-east-1", rep, 0, 0, policy, lost + 2 * D - timedelta(seconds=1))
    check_claim(lead, "rep-east-1", rep, 0, 0, policy, lost + 2 * D)
    check_claim(lead, "rep-east-2", DIRECTORY.rep("rep-east-2"), 0, 0, policy, lost)
    with pytest.raises(DailyClaimLimitReached):
        check_claim(lead, "rep-east-2", DIRECTORY.rep("rep-east-2"), 0, 20, policy, lost)
    with pytest.raises(RepAtCapacity):
        check_claim(lead, "rep-east-2", DIRECTORY.rep("rep-east-2"), 30, 0, policy, lost)
    m.receive("lead.claimed", {"rep_id": "rep-east-2"}, lost + H)
    with pytest.raises(LeadNotInPool):
        check_claim(m.state, "rep-west-1", DIRECTORY.rep("rep-west-1"), 0, 0, policy, lost + H)


def test_the_weekly_nurture_sends_five_emails_over_28_days() -> None:
    m = machine()
    capture(m, intent="low", region="north")  # → west team, nurtured
    m.advance(T0 + 60 * D)
    sent = [
        (e.occurred_at, e.data["template"])
        for e in m.log
        if e.type == "notification.queued" and e.data.get("to") == "lead"
    ]
    assert [t for _, t in sent] == ["welcome", "article-1", "article-2", "article-3", "article-4"]
    assert [datetime.fromisoformat(at) - T0 for at, _ in sent] == [
        timedelta(days=d) for d in (0, 7, 14, 21, 28)
    ]
    assert ("nurture.exited", "completed") in happened(m)
    exited = [e for e in m.log if e.type == "nurture.exited"]
    assert exited[0].data["reason"] == "completed" and m.state.sequences == ()


@pytest.mark.parametrize(
    ("event", "data"),
    [
        ("lead.followed_up", {"rep_id": "rep-west-1"}),
        ("lead.unsubscribed", {}),
        ("email.replied", {"message_id": "m"}),
        ("email.bounced", {"message_id": "m"}),
        ("lead.won", {"amount": "100"}),
        ("lead.lost", {"reason": "budget"}),
    ],
)
def test_each_exit_event_ends_the_sequence(event: str, data: dict[str, Any]) -> None:
    m = machine()
    capture(m, intent="low", region="north")
    m.advance(T0 + 8 * D)  # welcome and article-1 are out
    m.receive(event, data, T0 + 9 * D)
    assert [e.data for e in m.log if e.type == "nurture.exited"] == [
        {"sequence": "weekly-30d", "reason": event}
    ]
    assert not any(t.startswith("nurture:") for t in m.timers)
    m.advance(T0 + 60 * D)
    emails = [e for e in m.log if e.type == "notification.queued" and e.data.get("to") == "lead"]
    assert len(emails) == 2


def watching_the_welcome_email() -> ActiveRuleset:
    """The built-in ruleset plus "tag leads that did not open the email within 4 days"."""
    document = json.loads(resources.files("rules").joinpath("default_ruleset.json").read_text())
    document["timers"].append(
        {
            "id": "no_open",
            "start_on": ["nurture.email_sent"],
            "cancel_on": ["email.opened"],
            "after": "P4D",
        }
    )
    document["rules"].append(
        {
            "id": "tag-no-open",
            "when": ["timer.no_open"],
            "conditions": {"all": []},
            "actions": [{"name": "add_tag", "params": {"tag": "no-open"}}],
        }
    )
    ruleset = parse_ruleset(document, DIRECTORY)
    return ActiveRuleset(2, ruleset, compile_ruleset(ruleset))


def test_a_timer_started_by_a_delivered_email_fires_unless_the_email_is_opened() -> None:
    unopened = LeadMachine("lead-1", watching_the_welcome_email(), DIRECTORY, NoLoad())
    capture(unopened, intent="low")
    unopened.advance(T0 + 3 * D)
    assert [e.type for e in unopened.log].count("nurture.email_sent") == 1
    assert "no-open" not in unopened.state.tags
    unopened.advance(T0 + 4 * D)
    assert "no-open" in unopened.state.tags

    opened = LeadMachine("lead-2", watching_the_welcome_email(), DIRECTORY, NoLoad())
    capture(opened, intent="low")
    opened.advance(T0)  # the welcome email's step is due at once
    [sent] = [e for e in opened.log if e.type == "nurture.email_sent"]
    opened.receive("email.opened", {"message_id": "welcome"}, T0 + 1 * D)
    opened.advance(T0 + 6 * D)
    assert "no-open" not in opened.state.tags
    assert sent.data["notification_id"] in {e.event_id for e in opened.log}


def test_without_timers_on_deliveries_nothing_is_simulated_for_them() -> None:
    m = machine()
    capture(m, intent="low")
    m.advance(T0 + 8 * D)
    assert not {"notification.sent", "nurture.email_sent"} & {e.type for e in m.log}
