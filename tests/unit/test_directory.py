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


# -- calendars (docs/calendars.md) ------------------------------------------------------

OFFICE = [["09:00", "12:00"], ["13:30", "18:00"]]


def calendar(calendar_id: str = "cn", **fields: Any) -> dict[str, Any]:
    base = {"id": calendar_id, "time_zone": "Asia/Shanghai", "hours": {"mon": OFFICE}}
    return {**base, **fields}


def with_calendars(*calendars: object, team_calendar: str | None = "cn") -> dict[str, Any]:
    east = team("east", calendar=team_calendar) if team_calendar else team("east")
    return {"teams": [east], "reps": [rep("r1")], "people": people(), "calendars": list(calendars)}


def test_the_default_directory_gives_both_teams_the_china_office_calendar() -> None:
    directory = parse_directory(default_directory_doc())
    east, west = directory.team_calendar("east"), directory.team_calendar("west")
    assert east is not None and east is west and east.calendar_id == "cn-business"
    from datetime import date

    assert date(2026, 10, 1) in east.holidays and date(2027, 1, 1) in east.holidays
    assert date(2026, 10, 10) in east.workdays  # the make-up Saturday of National Day
    assert directory.team_calendar(None) is None and directory.team_calendar("ghost") is None


def test_a_calendar_round_trips_and_a_team_without_one_counts_wall_time() -> None:
    doc = with_calendars(
        calendar(
            hours={"mon": OFFICE, "sat": [["10:00:00", "10:00:30"]], "sun": []},
            holidays=[{"date": "2026-10-01", "name": "National Day"}],
            workdays=[{"date": "2026-10-10"}, {"date": "2026-10-11", "hours_of": "sat"}],
        )
    )
    directory = parse_directory(doc)
    dumped = directory.model_dump(mode="json")
    assert dumped["calendars"][0]["workdays"][0] == {"date": "2026-10-10", "hours_of": "mon"}
    assert parse_directory(dumped) == directory
    assert (
        parse_directory(with_calendars(calendar(), team_calendar=None)).team_calendar("east")
        is None
    )


def test_every_bad_calendar_field_is_named_by_its_pointer() -> None:
    doc = with_calendars(
        calendar(
            time_zone="Mars/Olympus",
            hours={
                "mon": [["09:00", "12:00"], ["11:00", "13:00"]],
                "tue": [["10:00", "09:00"]],
                "wed": [["9:00", "24:01"]],
                "thu": [["09:00"]],
                "fun": [],
            },
            holidays=[{"date": "2026-02-30"}, {"date": "2026-10-01"}],
            workdays=[
                {"date": "2026-10-01", "hours_of": "fri"},
                {"date": "2026-10-10", "hours_of": "someday"},
            ],
        ),
        calendar("cn"),
        team_calendar="nowhere",
    )
    errors = errors_of(doc)
    assert set(errors) == {
        "/calendars/0/time_zone",
        "/calendars/0/hours/wed/0/0",
        "/calendars/0/hours/wed/0/1",
        "/calendars/0/hours/thu/0",
        "/calendars/0/hours/fun",
        "/calendars/0/holidays/0/date",
        "/calendars/0/workdays/1/hours_of",
        "/calendars/1/id",
        "/teams/0/calendar",
    }
    assert "IANA time zone" in errors["/calendars/0/time_zone"]
    assert errors["/teams/0/calendar"] == "no calendar 'nowhere'"
    assert errors["/calendars/1/id"].startswith("duplicate id 'cn'")


def test_intervals_out_of_order_a_closed_week_and_a_date_in_both_lists_are_errors() -> None:
    order = calendar(
        hours={"mon": [["09:00", "12:00"], ["11:00", "13:00"]], "tue": [["10:00", "09:00"]]},
        holidays=[{"date": "2026-10-01"}],
        workdays=[{"date": "2026-10-01"}, {"date": "2026-10-10"}, {"date": "2026-10-10"}],
    )
    closed = calendar("closed", hours={"mon": [], "tue": [["12:00", "12:00"]]})
    errors = errors_of(with_calendars(order, closed))
    assert errors == {
        "/calendars/0/hours/mon/1": "overlaps the interval before it (list a day's "
        "intervals in order)",
        "/calendars/0/hours/tue/0": "must end after it starts",
        "/calendars/0/workdays/0/date": "2026-10-01 is also a holiday (/calendars/0/holidays/0)",
        "/calendars/0/workdays/2/date": "2026-10-10 is already a workday (/calendars/0/workdays/1)",
        "/calendars/1/hours/tue/0": "must end after it starts",
        "/calendars/1/hours": "a calendar needs working hours in its week",
    }


def test_calendar_sizes_are_bounded() -> None:
    many = [calendar(f"c{i}") for i in range(51)]
    assert errors_of(with_calendars(*many, team_calendar=None)) == {
        "/calendars": "at most 50 calendars"
    }
    day = [["00:00", "01:00"], ["02:00", "03:00"], ["04:00", "05:00"], ["06:00", "07:00"]]
    busy = calendar(
        hours={"mon": [*day, ["08:00", "09:00"], ["10:00", "11:00"], ["12:00", "13:00"]]}
    )
    holidays = [{"date": "2026-01-01"}] * 2001
    full = calendar(holidays=holidays, workdays=[{"date": "2027-01-02"}] * 2001)
    errors = errors_of(with_calendars(busy, {**full, "id": "full"}))
    assert set(errors) == {
        "/calendars/0/hours/mon",
        "/calendars/1/holidays",
        "/calendars/1/workdays",
    }
    assert "at most 6" in errors["/calendars/0/hours/mon"]
    assert "at most 2000" in errors["/calendars/1/holidays"]
    # At the limits, a calendar is accepted and usable.
    at_limit = calendar(
        hours={"mon": [*day, ["08:00", "09:00"], ["10:00", "24:00"]]},
        holidays=[{"date": f"2026-01-{d:02d}"} for d in range(1, 29)] * 71
        + [{"date": "2030-01-01"}] * 12,
    )
    assert parse_directory(with_calendars(at_limit)).team_calendar("east") is not None
