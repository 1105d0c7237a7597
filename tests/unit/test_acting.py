"""What a person may append, by role by event by the lead's place (domain.acting)."""

from __future__ import annotations

from itertools import product

import pytest

from domain.access import ROLES, Role
from domain.acting import (
    PERSON_TYPES,
    LeadPlace,
    NotPermitted,
    Person,
    check,
    refusal,
)
from domain.directory import parse_directory

DIRECTORY = parse_directory(
    {
        "teams": [
            {"id": "east", "name": "East", "manager": "mgr-east", "director": "dir"},
            {"id": "west", "name": "West", "manager": "mgr-west", "director": "dir"},
        ],
        "reps": [
            {"id": "rep-a", "name": "A", "email": "a@example.com", "team": "east", "capacity": 30},
            {"id": "rep-b", "name": "B", "email": "b@example.com", "team": "east", "capacity": 30},
            {"id": "rep-c", "name": "C", "email": "c@example.com", "team": "west", "capacity": 30},
            {
                "id": "rep-off",
                "name": "Off",
                "email": "o@example.com",
                "team": "east",
                "capacity": 30,
                "active": False,
            },
        ],
        "people": [
            {"id": "mgr-east", "name": "M East", "email": "me@example.com"},
            {"id": "mgr-west", "name": "M West", "email": "mw@example.com"},
            {"id": "dir", "name": "D", "email": "d@example.com"},
        ],
    }
)

WHO: dict[Role, str] = {"rep": "rep-a", "manager": "mgr-east", "director": "dir", "admin": "dir"}
# The lead's place, by name: owned by the acting rep, by a teammate, by another team, pooled.
PLACES = {
    "own": LeadPlace(owner="rep-a", team="east", in_pool=False),
    "teammate": LeadPlace(owner="rep-b", team="east", in_pool=False),
    "other_team": LeadPlace(owner="rep-c", team="west", in_pool=False),
    "pool": LeadPlace(owner=None, team=None, in_pool=True),
}
# The rep named in `data.rep_id`.
REP_IDS = ["rep-a", "rep-b", "rep-c", "rep-off"]
WORKING = sorted(PERSON_TYPES)


def expected(role: Role, event_type: str, place: str, rep_id: str) -> str | None:
    """The refused field, written as a table of the brief's rules (None: allowed)."""
    if role in ("director", "admin"):
        return None
    east_reps = {"rep-a", "rep-b", "rep-off"}
    as_self = {"rep-a"} if role == "rep" else {"mgr-east"} | east_reps
    may_work = {"own"} if role == "rep" else {"own", "teammate"}
    as_self_types = ("lead.followed_up", "lead.claimed", "lead.released")
    if event_type in as_self_types and rep_id not in as_self:
        return "/data/rep_id"
    if event_type == "lead.claimed":
        return None
    if event_type == "lead.reassigned":
        if role == "rep":
            return "/type"
        if place not in may_work:
            return "/lead_id"
        return None if rep_id in {"rep-a", "rep-b"} else "/data/rep_id"
    return None if place in may_work else "/lead_id"


CASES = list(product(ROLES, WORKING, PLACES, REP_IDS))


@pytest.mark.parametrize(("role", "event_type", "place", "rep_id"), CASES)
def test_each_role_event_and_place(role: Role, event_type: str, place: str, rep_id: str) -> None:
    fault = refusal(
        Person(role, WHO[role]), event_type, {"rep_id": rep_id}, PLACES[place], DIRECTORY
    )
    assert (fault.path if fault else None) == expected(role, event_type, place, rep_id)
    if fault is not None:
        assert role in fault.message  # the sentence says which role is refused


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    "event_type", ["lead.captured", "campaign.spend_recorded", "email.opened", "lead.unsubscribed"]
)
def test_system_events_stay_with_keys(role: Role, event_type: str) -> None:
    fault = refusal(Person(role, WHO[role]), event_type, {}, None, DIRECTORY)
    assert fault is not None and fault.path == "/type"


def test_an_unknown_lead_is_left_to_the_log() -> None:
    """No row: the append answers 404 lead_not_found, as for a key."""
    assert refusal(Person("rep", "rep-a"), "lead.won", {}, None, DIRECTORY) is None


def test_a_manager_works_a_team_lead_without_a_team_through_its_owner() -> None:
    claimed = LeadPlace(owner="rep-b", team=None, in_pool=False)
    assert refusal(Person("manager", "mgr-east"), "lead.qualified", {}, claimed, DIRECTORY) is None
    assert refusal(Person("manager", "mgr-west"), "lead.qualified", {}, claimed, DIRECTORY)


def test_a_person_outside_the_directory_works_nothing() -> None:
    fault = refusal(Person("manager", None), "lead.won", {}, PLACES["teammate"], DIRECTORY)
    assert fault is not None and fault.path == "/lead_id"


def test_check_raises_not_permitted_naming_the_field() -> None:
    with pytest.raises(NotPermitted) as refused:
        check(
            Person("rep", "rep-a"), "lead.claimed", {"rep_id": "rep-b"}, PLACES["pool"], DIRECTORY
        )
    assert refused.value.code == "not_permitted"
    assert refused.value.details == [
        {"path": "/data/rep_id", "message": "a rep may name only yourself here"}
    ]
