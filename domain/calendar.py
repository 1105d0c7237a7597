"""Business-hours calendars: when a team works, and business time added to an instant.

A `BusinessCalendar` holds working hours per weekday as wall-clock intervals in a time zone,
the holidays (closed all day) and the make-up working days (a date worked with the hours of
a named weekday), exactly as the directory states them (docs/calendars.md). Pure: the dates
come in with the directory, never from a package at decision time, so a decision and its
replay agree; zoneinfo only reads the time zone rules.

Meaning of a working window: the interval `[start, end)` of a date runs from the first
instant the wall clock of the zone shows `start` on that date to the first instant it shows
`end` (`24:00` is the next midnight). A time a daylight-saving change skips (02:30 on
Berlin's spring change) is read as the change itself; a repeated hour (autumn) is worked
once per pass of the clock, from its first pass to the first time the clock shows `end`.
Business time is elapsed (UTC) time inside the windows, so a 09:00-18:00 day always has
nine hours of it, while a 00:00-24:00 day has 23 or 25 on a change day.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How far ahead a business-time addition looks for working time. A valid calendar has some
# every week, but holidays may close years of it; past this the answer is the horizon
# itself (a timer that fires after 11 years, i.e. in practice never).
HORIZON = timedelta(days=4018)
_DAY = timedelta(days=1)
_CACHED_DAYS = 20_000  # windows kept per calendar (about 55 years of dates)

Interval = tuple[int, int]  # seconds since local midnight: [start, end), end ≤ 86400
Window = tuple[datetime, datetime]  # UTC instants: [start, end)


@dataclass(frozen=True)
class BusinessCalendar:
    """When a team works. Build it from the directory's calendar entry; it is assumed valid
    (sorted, non-overlapping intervals; some working time in the week; a date is not both a
    holiday and a workday), which `domain.directory.parse_directory` checks."""

    calendar_id: str
    zone: ZoneInfo
    week: tuple[tuple[Interval, ...], ...]  # seven entries, Monday first
    holidays: frozenset[date] = frozenset()
    workdays: Mapping[date, int] = field(default_factory=dict)  # date → weekday of its hours
    # UTC windows per date, worked out once (a calendar is immutable).
    _windows: dict[date, tuple[Window, ...]] = field(
        default_factory=dict, repr=False, compare=False, hash=False
    )

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        """The wall-clock working intervals of `day`: none on a holiday, the named weekday's
        on a make-up working day, else its weekday's."""
        if day in self.holidays:
            return ()
        return self.week[self.workdays.get(day, day.weekday())]

    def windows_on(self, day: date) -> tuple[Window, ...]:
        """The working windows of `day` as UTC instants, in order, none empty."""
        cached = self._windows.get(day)
        if cached is None:
            if len(self._windows) >= _CACHED_DAYS:
                self._windows.clear()
            cached = self._windows[day] = tuple(self._utc_windows(day))
        return cached

    def _utc_windows(self, day: date) -> Iterator[Window]:
        last_end: datetime | None = None
        for start, end in self.intervals_on(day):
            opens = _first_instant(self.zone, day, start)
            closes = _first_instant(self.zone, day, end)
            if last_end is not None and opens < last_end:
                opens = last_end  # a skipped hour can pull a window onto the previous one
            if opens < closes:
                yield opens, closes
                last_end = closes


def _first_instant(zone: ZoneInfo, day: date, seconds: int) -> datetime:
    """The first UTC instant at which the wall clock of `zone` shows `seconds` after the
    midnight of `day` (or later, when a daylight-saving change skips that time)."""
    if seconds >= 86400:
        day, seconds = day + _DAY, seconds - 86400
    local = datetime.combine(day, time(seconds // 3600, seconds // 60 % 60, seconds % 60))
    early = local.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the first pass
    if early.astimezone(zone).replace(tzinfo=None) == local:
        return early
    # Skipped by a change: the clock jumps over `local` at a whole second between the
    # readings with the offsets before and after the change; find it by bisection.
    late = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = sorted((int(early.timestamp()), int(late.timestamp())))
    before = datetime.fromtimestamp(low, UTC).astimezone(zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def business_calendar(
    calendar_id: str,
    time_zone: str,
    hours: Mapping[str, Sequence[Interval]],
    holidays: Sequence[date] = (),
    workdays: Mapping[date, str] | None = None,
) -> BusinessCalendar:
    """A calendar from weekday names (`mon`..`sun`, a missing one is closed) to intervals
    in seconds since midnight, holiday dates, and make-up working days → weekday name."""
    return BusinessCalendar(
        calendar_id=calendar_id,
        zone=ZoneInfo(time_zone),
        week=tuple(tuple(hours.get(name, ())) for name in WEEKDAYS),
        holidays=frozenset(holidays),
        workdays={day: WEEKDAYS.index(name) for day, name in (workdays or {}).items()},
    )


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("a business-time instant must be timezone-aware")
    return instant.astimezone(UTC)


def is_working(calendar: BusinessCalendar, instant: datetime) -> bool:
    """Whether `instant` (aware) is inside a working window (a window's end is not)."""
    at = _utc(instant)
    day = at.astimezone(calendar.zone).date()
    return any(opens <= at < closes for opens, closes in calendar.windows_on(day))


def add_business_time(calendar: BusinessCalendar, start: datetime, duration: timedelta) -> datetime:
    """The instant (UTC) at which `duration` of working time has passed since `start`
    (aware, any zone).

    - Working time that runs out exactly at a window's end lands at that end (18:00),
      never at the next window's start.
    - A zero duration gives the next working instant: `start` itself inside a window, the
      next window's start outside one (a window's end counts as outside).
    - The search walks whole days (each date's windows worked out once per calendar) and
      stops at `start + HORIZON`, which it returns if the calendar has too little working
      time before then.

    Monotonic: a later start or a longer duration never gives an earlier instant.
    """
    if duration < timedelta(0):
        raise ValueError("a business duration cannot be negative")
    cursor = _utc(start)
    horizon = cursor + HORIZON
    remaining = duration
    day = cursor.astimezone(calendar.zone).date()
    last_day = horizon.astimezone(calendar.zone).date()
    while day <= last_day:
        for opens, closes in calendar.windows_on(day):
            if closes <= cursor:
                continue
            begin = max(opens, cursor)
            available = closes - begin
            if remaining <= available:
                return min(begin + remaining, horizon)
            remaining -= available
            cursor = closes
        day += _DAY
    return horizon


def working_time_between(calendar: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    """The working time inside `[start, end)`: what `add_business_time` counts."""
    begin, finish = _utc(start), _utc(end)
    total = timedelta(0)
    if finish <= begin:
        return total
    day = begin.astimezone(calendar.zone).date()
    last = finish.astimezone(calendar.zone).date()
    while day <= last:
        for opens, closes in calendar.windows_on(day):
            overlap = min(closes, finish) - max(opens, begin)
            if overlap > timedelta(0):
                total += overlap
        day += _DAY
    return total
