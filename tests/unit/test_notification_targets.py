"""Who `notify {to, channel?}` reaches, and what its templates say about the lead."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from domain.directory import Directory, parse_directory
from domain.recipients import NoRecipient, Target, message_fields, resolve_targets
from domain.state import LeadState
from rules.builtin_templates import BUILTIN_TEMPLATES
from rules.templates import LeadflowUrl, render

DINGTALK_URL = "https://oapi.dingtalk.com/robot/send?access_token=east"
WECOM_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=west"
SLACK_URL = "https://hooks.slack.com/services/T0/B0/xyz"


def directory_doc() -> dict[str, Any]:
    return {
        "teams": [
            {
                "id": "east",
                "name": "East",
                "manager": "mgr-east",
                "director": "dir-sales",
                "regions": ["east"],
                "channel": "east-robot",
            },
            # West is managed by one of its reps; its director has no email address.
            {
                "id": "west",
                "name": "West",
                "manager": "rep-w1",
                "director": "dir-nomail",
                "regions": ["west"],
            },
        ],
        "reps": [
            {"id": "rep-a", "name": "Ann", "email": "a@example.com", "team": "east", "capacity": 5},
            {
                "id": "rep-b",
                "name": "Bo",
                "email": "b@example.com",
                "team": "east",
                "capacity": 5,
                "active": False,
            },
            {"id": "rep-c", "name": "Cy", "email": "c@example.com", "team": "east", "capacity": 0},
            {
                "id": "rep-w1",
                "name": "Wu",
                "email": "w1@example.com",
                "team": "west",
                "capacity": 5,
            },
        ],
        "people": [
            {
                "id": "mgr-east",
                "name": "Mei",
                "email": "mei@example.com",
                "dingtalk_user_id": "ding-mei",
                "wecom_user_id": "wecom-mei",
            },
            {"id": "dir-sales", "name": "Sun", "email": "sun@example.com"},
            {"id": "dir-nomail", "name": "Nobody"},
        ],
        "channels": [
            {"id": "east-robot", "kind": "dingtalk", "url": DINGTALK_URL},
            {"id": "west-robot", "kind": "wecom", "url": WECOM_URL},
            {"id": "sales-slack", "kind": "slack", "url": SLACK_URL},
        ],
    }


@pytest.fixture
def directory() -> Directory:
    return parse_directory(directory_doc())


EAST_LEAD = LeadState(
    lead_id="lead-1",
    created_at="2026-12-07T06:00:00+00:00",
    owner="rep-a",
    team="east",
    name="Ann Lee",
    email="ann@customer.io",
    company="Acme",
    source="website",
    region="east",
)


def test_owner_is_reached_by_email(directory: Directory) -> None:
    targets = resolve_targets("owner", None, EAST_LEAD, directory)
    assert targets == [Target("email", "a@example.com", "rep-a")]


def test_manager_and_director_of_the_leads_team_are_people_reached_by_email(
    directory: Directory,
) -> None:
    assert resolve_targets("manager", None, EAST_LEAD, directory) == [
        Target("email", "mei@example.com", "mgr-east")
    ]
    assert resolve_targets("director", "email", EAST_LEAD, directory) == [
        Target("email", "sun@example.com", "dir-sales")
    ]


def test_a_manager_who_is_a_rep_is_reached_by_the_reps_email(directory: Directory) -> None:
    west_lead = replace(EAST_LEAD, owner=None, team="west")
    assert resolve_targets("manager", None, west_lead, directory) == [
        Target("email", "w1@example.com", "rep-w1")
    ]


def test_a_pool_lead_keeps_its_team_so_its_manager_hears_of_the_reclaim(
    directory: Directory,
) -> None:
    reclaimed = replace(EAST_LEAD, owner=None, in_pool=True, pool_reason="no_follow_up_48h")
    assert resolve_targets("manager", None, reclaimed, directory)[0].recipient == "mgr-east"


def test_a_claimed_lead_without_a_team_uses_its_owners_team(directory: Directory) -> None:
    claimed = replace(EAST_LEAD, team=None, owner="rep-w1")
    assert resolve_targets("manager", None, claimed, directory)[0].recipient == "rep-w1"


def test_team_is_reached_on_its_channel(directory: Directory) -> None:
    assert resolve_targets("team", None, EAST_LEAD, directory) == [
        Target("dingtalk", DINGTALK_URL, "east-robot")
    ]


def test_team_by_email_reaches_its_active_reps(directory: Directory) -> None:
    targets = resolve_targets("team", "email", EAST_LEAD, directory)
    assert targets == [
        Target("email", "a@example.com", "rep-a"),
        Target("email", "c@example.com", "rep-c"),
    ]


def test_named_rep_is_reached_by_email_even_when_inactive(directory: Directory) -> None:
    assert resolve_targets("rep:rep-b", None, EAST_LEAD, directory) == [
        Target("email", "b@example.com", "rep-b")
    ]


def test_a_directory_channel_overrides_email_and_mentions_the_person_on_it(
    directory: Directory,
) -> None:
    assert resolve_targets("manager", "east-robot", EAST_LEAD, directory) == [
        Target("dingtalk", DINGTALK_URL, "mgr-east", mention="ding-mei")
    ]
    assert resolve_targets("manager", "west-robot", EAST_LEAD, directory) == [
        Target("wecom", WECOM_URL, "mgr-east", mention="wecom-mei")
    ]
    # Reps have no chat user ids in the directory, and Slack takes no mention.
    assert resolve_targets("owner", "sales-slack", EAST_LEAD, directory) == [
        Target("slack", SLACK_URL, "rep-a")
    ]
    assert resolve_targets("team", "sales-slack", EAST_LEAD, directory) == [
        Target("slack", SLACK_URL, "sales-slack")
    ]


@pytest.mark.parametrize(
    ("to", "channel", "lead", "reason"),
    [
        ("owner", None, replace(EAST_LEAD, owner=None), "the lead has no owner"),
        ("owner", None, replace(EAST_LEAD, owner="rep-gone"), "'rep-gone' is not in"),
        ("manager", None, replace(EAST_LEAD, team=None, owner=None), "the lead has no team"),
        ("director", None, replace(EAST_LEAD, team="north"), "team 'north' is not in"),
        ("team", None, replace(EAST_LEAD, team=None, owner=None), "the lead has no team"),
        ("team", None, replace(EAST_LEAD, team="west"), "team 'west' has no channel"),
        ("rep:rep-gone", None, EAST_LEAD, "rep 'rep-gone' is not in"),
        ("director", None, replace(EAST_LEAD, team="west"), "'dir-nomail' has no email"),
        ("owner", "no-such-robot", EAST_LEAD, "channel 'no-such-robot' is not in"),
    ],
)
def test_unreachable_recipients_raise_no_recipient_with_a_reason(
    directory: Directory, to: str, channel: str | None, lead: LeadState, reason: str
) -> None:
    with pytest.raises(NoRecipient) as caught:
        resolve_targets(to, channel, lead, directory)
    assert caught.value.code == "no_recipient"
    assert reason in caught.value.message


def test_team_by_email_with_no_active_reps_is_no_recipient() -> None:
    doc = directory_doc()
    doc["reps"] = [{**r, "active": False} for r in doc["reps"]]
    with pytest.raises(NoRecipient, match="no active reps"):
        resolve_targets("team", "email", EAST_LEAD, parse_directory(doc))


def test_follow_up_overdue_names_the_lead_and_its_company(directory: Directory) -> None:
    fields = message_fields(
        EAST_LEAD, {"lead_url": LeadflowUrl("https://crm.example.com/leads/lead-1")}
    )
    message = render(BUILTIN_TEMPLATES["follow-up-overdue"], fields)
    assert message.subject == "First follow-up overdue: Ann Lee (Acme)"
    # Captured at 06:00 UTC: 14:00 on the sales floor's clock (Asia/Shanghai by default).
    assert message.body.startswith(
        "Lead Ann Lee from Acme (captured 2026-12-07 14:00) was assigned to you"
    )
    assert message.body.endswith("\n\nhttps://crm.example.com/leads/lead-1")


def test_every_builtin_template_renders_without_leftover_placeholders(
    directory: Directory,
) -> None:
    fields = message_fields(EAST_LEAD, directory=directory)
    for template_id, template in BUILTIN_TEMPLATES.items():
        message = render(template, fields)
        assert "{" not in message.subject + message.body, template_id
        assert "Ann Lee" in message.subject + message.body, template_id


def test_fields_cover_the_lead_the_directory_and_extras(directory: Directory) -> None:
    lead = replace(
        EAST_LEAD,
        tags=("vip", "trade-show"),
        attributes={"budget": "50k"},
        variants={"subject-test": "B"},
    )
    fields = message_fields(lead, {"owner": "overridden"}, directory=directory)
    assert fields["lead_id"] == "lead-1"
    assert (fields["email"], fields["source"], fields["region"]) == (
        "ann@customer.io",
        "website",
        "east",
    )
    assert (fields["owner_name"], fields["team"], fields["team_name"]) == ("Ann", "east", "East")
    assert fields["owner"] == "overridden"
    assert fields["tags"] == "vip, trade-show"
    assert fields["attributes.budget"] == "50k"
    assert fields["variant.subject-test"] == "B"
    assert fields["stage"] == "new"


def test_a_lead_without_a_name_is_called_by_its_email() -> None:
    lead = LeadState(lead_id="lead-2", email="x@y.io")
    message = render(BUILTIN_TEMPLATES["lead-idle"], message_fields(lead, {}))
    assert message.subject.startswith("Idle lead returned to the pool: x@y.io")
    assert "Previous owner: , team: ." in message.body  # unknown fields render empty
