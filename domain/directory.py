"""The sales directory (SPEC §6): teams, the reps who take leads, the people who only
manage or receive notifications, the webhook channels teams are reached on, and the
business-hours calendars teams count SLA time in (docs/calendars.md).

`parse_directory` validates a whole `PUT /v1/directory` document and names every bad field
by JSON Pointer. Pure and free of I/O: the lifecycle and the rules read it as a value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Annotated, Any, Literal, get_args
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
)

from domain.calendar import BusinessCalendar, Interval, business_calendar
from domain.errors import FieldError, InvalidDocument
from domain.limits import unsafe_values
from domain.locales import Locale

Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
ChannelKind = Literal["dingtalk", "wecom", "slack", "webhook"]


def _email(text: str) -> str:
    if len(text) > 320 or not re.fullmatch(r"[^@\s]+@[^@\s]+", text):
        raise ValueError("must be an email address")
    return text


def _url(text: str) -> str:
    if len(text) > 2000 or not re.fullmatch(r"https?://\S+", text):
        raise ValueError("must be an http:// or https:// URL")
    return text


Email = Annotated[str, AfterValidator(_email)]

MAX_CALENDARS = 50
MAX_INTERVALS_PER_DAY = 6
MAX_HOLIDAYS = 2000
MAX_WORKDAYS = 2000
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?|24:00(?::00)?", re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    # Looked up in the installed list, never opened by name: a hostile name reads no file.
    return frozenset(available_timezones())


def _time_zone(name: str) -> str:
    if name not in _time_zones():
        raise ValueError(f"{name!r} is not an IANA time zone such as Asia/Shanghai")
    return name


def _clock_time(text: str) -> str:
    if not _TIME.fullmatch(text):
        raise ValueError(f"{text!r} is not a time of day HH:MM or HH:MM:SS (00:00 to 24:00)")
    return text


def _day(text: str) -> str:
    try:
        if not _DATE.fullmatch(text):
            raise ValueError
        date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD") from None
    return text


def seconds_of_day(text: str) -> int:
    """Seconds since midnight of a valid `HH:MM[:SS]` (`24:00` is 86400)."""
    parts = [int(p) for p in text.split(":")]
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)


ClockTime = Annotated[str, AfterValidator(_clock_time)]
DayText = Annotated[str, AfterValidator(_day)]
ClockInterval = Annotated[
    list[ClockTime],
    Field(min_length=2, max_length=2, description='["HH:MM", "HH:MM"]: start, end (24:00 ok)'),
]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Team(_Entry):
    """A sales team; its manager and director are a rep or a person."""

    id: Id
    name: Name
    manager: Id
    director: Id
    regions: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = []
    channel: Id | None = None
    calendar: Id | None = Field(
        None, description="The id of the calendar business-time timers count in (none: wall)"
    )


class Rep(_Entry):
    """A sales rep who takes leads; `capacity` is how many open leads they may hold."""

    id: Id
    name: Name
    email: Email
    team: Id
    capacity: Annotated[int, Field(ge=0)]
    active: bool = True
    # Their DingTalk / WeCom account: how they sign in there and are @-mentioned.
    dingtalk_user_id: str | None = None
    wecom_user_id: str | None = None
    locale: Locale | None = Field(
        None, description="The language of messages to them (none: LEADFLOW_LOCALE)"
    )


class Person(_Entry):
    """Someone who manages or is notified but takes no leads (a manager, a director)."""

    id: Id
    name: Name
    email: Email | None = None
    dingtalk_user_id: str | None = None
    wecom_user_id: str | None = None
    locale: Locale | None = Field(
        None, description="The language of messages to them (none: LEADFLOW_LOCALE)"
    )


class Channel(_Entry):
    """A webhook a team is notified on (DingTalk or WeCom robot, Slack, generic JSON)."""

    id: Id
    kind: ChannelKind
    url: Annotated[str, AfterValidator(_url)]


class Holiday(_Entry):
    """A date the calendar is closed all day."""

    date: DayText
    name: Name | None = None


class Workday(_Entry):
    """A make-up working day (a weekend date worked), with the hours of weekday `hours_of`."""

    date: DayText
    hours_of: Weekday = "mon"


class Calendar(_Entry):
    """Working hours per weekday (a weekday left out is closed) in `time_zone`, with the
    holidays and make-up working days stated as dates (docs/calendars.md)."""

    id: Id
    name: Name | None = None
    time_zone: Annotated[str, AfterValidator(_time_zone), Field(max_length=100)]
    hours: dict[
        Weekday, Annotated[list[ClockInterval], Field(max_length=MAX_INTERVALS_PER_DAY)]
    ] = {}
    holidays: Annotated[list[Holiday], Field(max_length=MAX_HOLIDAYS)] = []
    workdays: Annotated[list[Workday], Field(max_length=MAX_WORKDAYS)] = []

    def intervals(self, weekday: Weekday) -> list[Interval]:
        """The weekday's intervals in seconds since midnight (none: closed)."""
        return [(seconds_of_day(a), seconds_of_day(b)) for a, b in self.hours.get(weekday, [])]

    def business_calendar(self) -> BusinessCalendar:
        """The calendar as `domain.calendar` counts in (the entry must be valid)."""
        return business_calendar(
            self.id,
            self.time_zone,
            {weekday: self.intervals(weekday) for weekday in get_args(Weekday)},
            [date.fromisoformat(h.date) for h in self.holidays],
            {date.fromisoformat(w.date): w.hours_of for w in self.workdays},
        )


class Directory(BaseModel):
    """The whole sales directory, with lookups by id. Build it with `parse_directory`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    teams: list[Team]
    reps: list[Rep]
    people: list[Person] = []
    channels: list[Channel] = []
    calendars: list[Calendar] = []

    _teams: dict[str, Team] = PrivateAttr(default_factory=dict)
    _reps: dict[str, Rep] = PrivateAttr(default_factory=dict)
    _people: dict[str, Person] = PrivateAttr(default_factory=dict)
    _channels: dict[str, Channel] = PrivateAttr(default_factory=dict)
    _calendars: dict[str, BusinessCalendar] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._teams = {t.id: t for t in self.teams}
        self._reps = {r.id: r for r in self.reps}
        self._people = {p.id: p for p in self.people}
        self._channels = {c.id: c for c in self.channels}
        self._calendars = {c.id: c.business_calendar() for c in self.calendars}

    def rep(self, rep_id: str) -> Rep | None:
        """The rep with this id, or None if the directory has no such rep."""
        return self._reps.get(rep_id)

    def team(self, team_id: str) -> Team | None:
        """The team with this id, or None."""
        return self._teams.get(team_id)

    def channel(self, channel_id: str) -> Channel | None:
        """The channel with this id, or None."""
        return self._channels.get(channel_id)

    def calendar(self, calendar_id: str) -> BusinessCalendar | None:
        """The calendar with this id, or None."""
        return self._calendars.get(calendar_id)

    def team_calendar(self, team_id: str | None) -> BusinessCalendar | None:
        """The calendar of the team (business-time timers count in it), or None when there
        is no such team or it names no calendar: then they count wall-clock time."""
        team = self._teams.get(team_id) if team_id is not None else None
        if team is None or team.calendar is None:
            return None
        return self._calendars.get(team.calendar)

    def lead_calendar(self, owner: str | None, team: str | None) -> BusinessCalendar | None:
        """The calendar a lead's business timers count in: its owner's team's when the owner
        is a rep of the directory (a claim or a reassignment leaves the lead's `team` as
        it was), else its team's; None (wall clock) when that team names none."""
        rep = self._reps.get(owner) if owner is not None else None
        return self.team_calendar(rep.team if rep is not None else team)

    def reps_of(self, team_id: str) -> list[Rep]:
        """The team's reps, active or not, in directory order (the round-robin order)."""
        return [r for r in self.reps if r.team == team_id]

    def team_for_region(self, region: str) -> Team | None:
        """The first team, in directory order, whose regions include `region` exactly."""
        return next((t for t in self.teams if region in t.regions), None)

    def person_or_rep(self, person_id: str) -> Person | Rep | None:
        """Whoever has this id: a person in `people` or a rep (ids are unique across both)."""
        return self._people.get(person_id) or self._reps.get(person_id)


@dataclass
class InvalidDirectory(InvalidDocument):
    """The directory document is invalid; the stored directory is unchanged."""

    code = "invalid_directory"
    what = "directory"


_SECTIONS: dict[str, tuple[type[_Entry], bool]] = {
    "teams": (Team, True),
    "reps": (Rep, True),
    "people": (Person, False),
    "channels": (Channel, False),
    "calendars": (Calendar, False),
}


def _pointer(*parts: object) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _pydantic_errors(exc: ValidationError, *prefix: object) -> Iterator[FieldError]:
    for err in exc.errors():
        if err["type"] == "missing":
            message = "required"
        elif err["type"] == "extra_forbidden":
            message = "unknown field"
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
        # A bad key of a mapping (a weekday of `hours`) is named by the key itself.
        loc = [part for part in err["loc"] if part != "[key]"]
        yield FieldError(_pointer(*prefix, *loc), message)


def _raw_ids(entries: list[Any]) -> dict[str, int]:
    """First index of each string id among the raw entries, valid or not, so that one
    bad field in an entry does not make every reference to it look unknown as well."""
    ids: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            ids.setdefault(entry["id"], index)
    return ids


def parse_directory(doc: object) -> Directory:
    """Validate a directory document; raise InvalidDirectory naming every bad field.

    Checks each entry's fields, duplicate ids (rep and person ids share one namespace),
    reps in unknown teams, managers and directors naming nobody, team channels and
    calendars naming none, and each calendar's hours and dates (`_calendar_errors`).
    """
    if not isinstance(doc, dict):
        raise InvalidDirectory([FieldError("", "the directory must be a JSON object")])
    # Names and addresses reach email headers, webhooks and every store: text they cannot
    # carry is refused before anything else is looked at.
    unsafe = unsafe_values(doc)
    if unsafe:
        raise InvalidDirectory(unsafe)
    errors: list[FieldError] = [
        FieldError(_pointer(key), "unknown field") for key in doc if key not in _SECTIONS
    ]
    raw: dict[str, list[Any]] = {}
    parsed: dict[str, list[Any]] = {}
    for section, (model, required) in _SECTIONS.items():
        entries = doc.get(section)
        raw[section], parsed[section] = [], []
        if entries is None:
            if required:
                errors.append(FieldError(_pointer(section), "required (may be an empty list)"))
            continue
        if not isinstance(entries, list):
            errors.append(FieldError(_pointer(section), "must be a list"))
            continue
        if section == "calendars" and len(entries) > MAX_CALENDARS:
            errors.append(FieldError("/calendars", f"at most {MAX_CALENDARS} calendars"))
            continue
        raw[section] = entries
        for index, entry in enumerate(entries):
            try:
                parsed[section].append(model.model_validate(entry))
            except ValidationError as exc:
                errors.extend(_pydantic_errors(exc, section, index))
                continue
            if isinstance(parsed[section][-1], Calendar):
                errors.extend(_calendar_errors(index, parsed[section][-1]))

    ids = {section: _raw_ids(entries) for section, entries in raw.items()}
    for section, entries in raw.items():
        seen: dict[str, int] = {}
        for index, entry in enumerate(entries):
            entry_id = entry.get("id") if isinstance(entry, dict) else None
            if not isinstance(entry_id, str):
                continue
            if entry_id in seen:
                errors.append(
                    FieldError(
                        _pointer(section, index, "id"),
                        f"duplicate id {entry_id!r} (first at {_pointer(section, seen[entry_id])})",
                    )
                )
            else:
                seen[entry_id] = index
            if section == "people" and entry_id in ids["reps"]:
                errors.append(
                    FieldError(
                        _pointer(section, index, "id"),
                        f"{entry_id!r} is already a rep's id; rep and person ids must differ",
                    )
                )

    def references(section: str, key: str) -> Iterator[tuple[int, str]]:
        for index, entry in enumerate(raw[section]):
            value = entry.get(key) if isinstance(entry, dict) else None
            if isinstance(value, str):
                yield index, value

    for index, team_id in references("reps", "team"):
        if team_id not in ids["teams"]:
            errors.append(FieldError(_pointer("reps", index, "team"), f"no team {team_id!r}"))
    for key in ("manager", "director"):
        for index, person_id in references("teams", key):
            if person_id not in ids["reps"] and person_id not in ids["people"]:
                errors.append(
                    FieldError(
                        _pointer("teams", index, key),
                        f"{person_id!r} is neither a rep nor a person in people",
                    )
                )
    for index, channel_id in references("teams", "channel"):
        if channel_id not in ids["channels"]:
            errors.append(
                FieldError(_pointer("teams", index, "channel"), f"no channel {channel_id!r}")
            )

    for index, calendar_id in references("teams", "calendar"):
        if calendar_id not in ids["calendars"]:
            errors.append(
                FieldError(_pointer("teams", index, "calendar"), f"no calendar {calendar_id!r}")
            )

    if errors:
        raise InvalidDirectory(errors)
    return Directory(
        teams=parsed["teams"],
        reps=parsed["reps"],
        people=parsed["people"],
        channels=parsed["channels"],
        calendars=parsed["calendars"],
    )


def _calendar_errors(index: int, calendar: Calendar) -> Iterator[FieldError]:
    """What the field types cannot say: intervals that end before they start, overlap or
    are out of order; a week without working time; a date both a holiday and a workday (or
    a workday twice)."""
    working = False
    for weekday in calendar.hours:
        previous_end = 0
        for position, (start, end) in enumerate(calendar.intervals(weekday)):
            path = _pointer("calendars", index, "hours", weekday, position)
            if end <= start:
                yield FieldError(path, "must end after it starts")
            elif start < previous_end:
                yield FieldError(
                    path, "overlaps the interval before it (list a day's intervals in order)"
                )
            else:
                working = True
            previous_end = max(previous_end, end)
    if not working:
        yield FieldError(
            _pointer("calendars", index, "hours"), "a calendar needs working hours in its week"
        )
    holidays = {h.date: position for position, h in enumerate(calendar.holidays)}
    workdays: dict[str, int] = {}
    for position, workday in enumerate(calendar.workdays):
        path = _pointer("calendars", index, "workdays", position, "date")
        if workday.date in holidays:
            where = _pointer("calendars", index, "holidays", holidays[workday.date])
            yield FieldError(path, f"{workday.date} is also a holiday ({where})")
        elif workday.date in workdays:
            where = _pointer("calendars", index, "workdays", workdays[workday.date])
            yield FieldError(path, f"{workday.date} is already a workday ({where})")
        workdays.setdefault(workday.date, position)
