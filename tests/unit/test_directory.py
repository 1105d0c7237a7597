import json
from importlib import resources
from typing import Any

import pytest

from domain.directory import InvalidDirectory, Person, Rep, parse_directory


def default_directory_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        resources.files("rules").joinpath("default_directory.json").read_text()
    )
    return doc


def team(team_id: str, **fields: Any) -> dict[str, Any]:
    base = {"id": team_id, "name": team_id.title(), "manager": "mgr", "director": "dir"}
    return {**base, **fields}


def rep(rep_id: str, team_id: str = "east", **fields: Any) -> dict[str, Any]:
    base = {"id": rep_id, "name": rep_id, "email": f"{rep_id}@example.com", "team": team_id}
    return {**base, "capacity": 10, **fields}


def people() -> list[dict[str, Any]]:
    return [{"id": "mgr", "name": "M"}, {"id": "dir", "name": "D"}]


def errors_of(doc: object) -> dict[str, str]:
    with pytest.raises(InvalidDirectory) as caught:
        parse_directory(doc)
    assert caught.value.code == "invalid_directory"
    return {e.path: e.message for e in caught.value.errors}


def test_the_demo_directory_parses_and_answers_lookups() -> None:
    directory = parse_directory(default_directory_doc())
    east_reps = directory.reps_of("east")
    assert [r.id for r in east_reps] == ["rep-east-1", "rep-east-2"]
    assert directory.team_for_region("west") == directory.team("west")
    assert directory.team_for_region("north") is None
    assert isinstance(directory.person_or_rep("mgr-east"), Person)
    assert isinstance(directory.person_or_rep("rep-west-1"), Rep)
    assert directory.person_or_rep("nobody") is None
    assert directory.rep("rep-east-1") == east_reps[0]
    assert directory.rep("ghost") is None


def test_people_and_channels_are_optional_and_active_defaults_to_true() -> None:
    directory = parse_directory(
        {"teams": [team("east", manager="r1", director="r1")], "reps": [rep("r1")]}
    )
    assert directory.rep("r1") == Rep(
        id="r1", name="r1", email="r1@example.com", team="east", capacity=10, active=True
    )
    assert directory.people == [] and directory.channels == []


def test_a_manager_may_be_a_rep() -> None:
    doc = {
        "teams": [team("east", manager="r1")],
        "reps": [rep("r1")],
        "people": [{"id": "dir", "name": "D"}],
    }
    assert parse_directory(doc).team("east") is not None


def test_duplicate_ids_are_named_at_the_second_one() -> None:
    doc = {
        "teams": [team("east"), team("east")],
        "reps": [rep("a"), rep("b"), rep("c"), rep("a")],
        "people": [*people(), {"id": "b", "name": "also b"}],
    }
    errors = errors_of(doc)
    assert errors["/reps/3/id"] == "duplicate id 'a' (first at /reps/0)"
    assert "/teams/1/id" in errors
    assert "already a rep" in errors["/people/2/id"]
    assert set(errors) == {"/reps/3/id", "/teams/1/id", "/people/2/id"}


def test_references_to_unknown_teams_people_and_channels() -> None:
    doc = {
        "teams": [team("east", manager="ghost", channel="east-robot")],
        "reps": [rep("a"), rep("b", team_id="west")],
        "people": [{"id": "dir", "name": "D"}],
    }
    errors = errors_of(doc)
    assert errors == {
        "/reps/1/team": "no team 'west'",
        "/teams/0/manager": "'ghost' is neither a rep nor a person in people",
        "/teams/0/channel": "no channel 'east-robot'",
    }


def test_field_errors_are_collected_across_entries() -> None:
    doc = {
        "teams": [team("east")],
        "reps": [
            rep("a", capacity=-1),
            rep("b", capacity="3"),
            rep("c", email="not-an-email", active="yes"),
            {"id": "d", "team": "east"},
        ],
        "people": people(),
        "channels": [{"id": "x", "kind": "telegram", "url": "ftp://x"}],
        "colour": "red",
    }
    errors = errors_of(doc)
    assert set(errors) == {
        "/reps/0/capacity",
        "/reps/1/capacity",
        "/reps/2/email",
        "/reps/2/active",
        "/reps/3/name",
        "/reps/3/email",
        "/reps/3/capacity",
        "/channels/0/kind",
        "/channels/0/url",
        "/colour",
    }
    assert errors["/reps/3/name"] == "required"
    assert errors["/colour"] == "unknown field"


def test_an_entry_with_a_bad_field_still_counts_as_existing() -> None:
    # The rep's bad capacity must not also make the team's manager look unknown.
    doc = {
        "teams": [team("east", manager="a")],
        "reps": [rep("a", capacity=-5)],
        "people": people(),
    }
    assert set(errors_of(doc)) == {"/reps/0/capacity"}


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ([], ""),
        ({"reps": []}, "/teams"),
        ({"teams": {}, "reps": []}, "/teams"),
        ({"teams": [1], "reps": []}, "/teams/0"),
    ],
)
def test_malformed_documents(doc: object, path: str) -> None:
    assert path in errors_of(doc)
