"""Business-hours calendars (domain/calendar.py): the examples of docs/calendars.md, and
properties checked against a slow reference that steps minute by minute over the wall
clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.calendar import (
    HORIZON,
    WEEKDAYS,
    BusinessCalendar,
    add_business_time,
    business_calendar,
    is_working,
    working_time_between,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
H = 3600
NINE_TO_SIX = [(9 * H, 18 * H)]
CN_OFFICE = [(9 * H, 12 * H), (13 * H + 30 * 60, 18 * H)]


def weekdays(
    intervals: list[tuple[int, int]],
    zone: str = "Asia/Shanghai",
    holidays: list[date] | None = None,
    workdays: dict[date, str] | None = None,
) -> BusinessCalendar:
    """Monday to Friday with `intervals`, closed at the weekend."""
    week = {day: intervals for day in WEEKDAYS[:5]}
    return business_calendar("c", zone, week, holidays or [], workdays)


def local(
    zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=zone)


FRIDAY_17 = local(SHANGHAI, 2026, 12, 4, 17, 0)


def test_friday_17_plus_24_business_hours_of_nine_to_six_is_wednesday_14() -> None:
    due = add_business_time(weekdays(NINE_TO_SIX), FRIDAY_17, timedelta(hours=24))
    assert due == local(SHANGHAI, 2026, 12, 9, 14, 0)
    assert due.tzinfo == UTC


def test_friday_17_plus_24_hours_of_whole_weekdays_is_monday_afternoon() -> None:
    due = add_business_time(weekdays([(0, 24 * H)]), FRIDAY_17, timedelta(hours=24))
    assert due == local(SHANGHAI, 2026, 12, 7, 17, 0)


def test_time_running_out_at_an_interval_end_lands_at_that_end() -> None:
    calendar = weekdays(CN_OFFICE)
    assert add_business_time(calendar, FRIDAY_17, timedelta(hours=1)) == local(
        SHANGHAI, 2026, 12, 4, 18, 0
    )
    morning = local(SHANGHAI, 2026, 12, 4, 11, 0)
    assert add_business_time(calendar, morning, timedelta(hours=1)) == local(
        SHANGHAI, 2026, 12, 4, 12, 0
    )
    # One second more goes on after lunch.
    assert add_business_time(calendar, morning, timedelta(hours=1, seconds=1)) == local(
        SHANGHAI, 2026, 12, 4, 13, 30, 1
    )


def test_zero_duration_is_the_next_working_instant() -> None:
    calendar = weekdays(NINE_TO_SIX)
    assert add_business_time(calendar, FRIDAY_17, timedelta(0)) == FRIDAY_17
    evening = local(SHANGHAI, 2026, 12, 4, 18, 0)  # a window's end is not working time
    assert add_business_time(calendar, evening, timedelta(0)) == local(SHANGHAI, 2026, 12, 7, 9, 0)


def test_a_holiday_is_skipped_and_a_make_up_sunday_is_worked() -> None:
    # 2026-10-01 (Thu) and 10-02 (Fri) closed; Sunday 10-04 worked with Friday's hours.
    calendar = weekdays(
        NINE_TO_SIX,
        holidays=[date(2026, 10, 1), date(2026, 10, 2)],
        workdays={date(2026, 10, 4): "fri"},
    )
    wednesday_17 = local(SHANGHAI, 2026, 9, 30, 17, 0)
    assert add_business_time(calendar, wednesday_17, timedelta(hours=2)) == local(
        SHANGHAI, 2026, 10, 4, 10, 0
    )
    assert not is_working(calendar, local(SHANGHAI, 2026, 10, 1, 10, 0))
    assert is_working(calendar, local(SHANGHAI, 2026, 10, 4, 10, 0))
    assert not is_working(calendar, local(SHANGHAI, 2026, 10, 3, 10, 0))  # Saturday


def test_office_hours_are_wall_clock_hours_across_a_daylight_saving_change() -> None:
    berlin = weekdays(NINE_TO_SIX, "Europe/Berlin")
    # Friday 2026-03-27 17:00 CET; the clocks go forward on Sunday 03-29.
    friday = local(BERLIN, 2026, 3, 27, 17, 0)
    due = add_business_time(berlin, friday, timedelta(hours=2))
    assert due == local(BERLIN, 2026, 3, 30, 10, 0)
    assert due.utcoffset() == timedelta(0) and due == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


def test_whole_days_across_a_change_count_elapsed_time() -> None:
    every_day = business_calendar("c", "Europe/Berlin", {d: [(0, 24 * H)] for d in WEEKDAYS})
    sunday = date(2026, 3, 29)  # 23 hours long in Berlin
    start = local(BERLIN, 2026, 3, 29, 0, 0)
    assert working_time_between(every_day, start, local(BERLIN, 2026, 3, 30, 0, 0)) == timedelta(
        hours=23
    )
    assert add_business_time(every_day, start, timedelta(hours=23)) == local(
        BERLIN, 2026, 3, 30, 0, 0
    )
    # A window through the skipped hour opens at the change (03:00 CEST).
    night = business_calendar("n", "Europe/Berlin", {"sun": [(2 * H + 30 * 60, 4 * H)]})
    assert night.windows_on(sunday) == (
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), datetime(2026, 3, 29, 2, 0, tzinfo=UTC)),
    )
    # In autumn 02:30-04:00 runs from the first 02:30 (CEST) to 04:00 CET: 2.5 hours.
    assert night.windows_on(date(2026, 10, 25)) == (
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 3, 0, tzinfo=UTC)),
    )


def test_a_calendar_closed_for_years_stops_at_the_horizon() -> None:
    start = local(SHANGHAI, 2026, 1, 1, 0, 0)
    closed = [start.date() + timedelta(days=n) for n in range(5000)]
    calendar = weekdays(NINE_TO_SIX, holidays=closed)
    assert add_business_time(calendar, start, timedelta(hours=1)) == start + HORIZON


def test_naive_instants_are_refused() -> None:
    try:
        add_business_time(weekdays(NINE_TO_SIX), datetime(2026, 1, 1), timedelta(hours=1))
    except ValueError as error:
        assert "timezone-aware" in str(error)
    else:
        raise AssertionError("a naive start was accepted")


# -- properties -------------------------------------------------------------------------


def reference_working(calendar: BusinessCalendar, minute: datetime) -> bool:
    """Independent of the windows: is the wall-clock minute inside an interval of its date?"""
    wall = minute.astimezone(calendar.zone)
    seconds = wall.hour * 3600 + wall.minute * 60
    return any(a <= seconds < b for a, b in calendar.intervals_on(wall.date()))


def reference_add(calendar: BusinessCalendar, start: datetime, minutes: int) -> datetime:
    """Step minute by minute; starts and hours are whole minutes."""
    at = start
    if minutes == 0:
        while not reference_working(calendar, at):
            at += timedelta(minutes=1)
        return at
    counted = 0
    while True:
        if reference_working(calendar, at):
            counted += 1
            if counted == minutes:
                return at + timedelta(minutes=1)
        at += timedelta(minutes=1)


# Hours between 06:00 and 24:00, where no zone below changes its clocks, so that the wall
# clock reference and the windows mean the same.
@st.composite
def day_intervals(draw: st.DrawFn) -> list[tuple[int, int]]:
    cuts = draw(st.lists(st.integers(6 * 60, 24 * 60), min_size=0, max_size=6, unique=True))
    cuts = sorted(cuts)
    pairs = [(cuts[i] * 60, cuts[i + 1] * 60) for i in range(0, len(cuts) - 1, 2)]
    return pairs


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    zone = draw(st.sampled_from(["Asia/Shanghai", "UTC", "America/New_York", "Europe/Berlin"]))
    hours = {day: draw(day_intervals()) for day in WEEKDAYS}
    if not any(hours.values()):
        hours["wed"] = [(9 * H, 10 * H)]
    first = date(2026, 3, 20)
    special = draw(st.lists(st.integers(0, 30), max_size=6, unique=True))
    holidays = [first + timedelta(days=n) for n in special[::2]]
    workdays = {first + timedelta(days=n): draw(st.sampled_from(WEEKDAYS)) for n in special[1::2]}
    return business_calendar("p", zone, hours, holidays, workdays)


starts = st.integers(0, 20 * 24 * 60).map(
    lambda m: datetime(2026, 3, 20, tzinfo=UTC) + timedelta(minutes=m)
)
durations = st.integers(0, 3 * 24 * 60)


@settings(max_examples=60, deadline=None)
@given(calendars(), starts, st.integers(0, 900))
def test_the_result_matches_a_minute_by_minute_reference(
    calendar: BusinessCalendar, start: datetime, minutes: int
) -> None:
    expected = reference_add(calendar, start, minutes)
    assert add_business_time(calendar, start, timedelta(minutes=minutes)) == expected


@settings(max_examples=150, deadline=None)
@given(calendars(), starts, durations)
def test_the_working_time_counted_is_the_duration_and_it_lands_in_working_hours(
    calendar: BusinessCalendar, start: datetime, minutes: int
) -> None:
    duration = timedelta(minutes=minutes)
    due = add_business_time(calendar, start, duration)
    assert due >= start
    assert working_time_between(calendar, start, due) == duration
    if minutes == 0:
        assert is_working(calendar, due)
    else:
        # Inside a window, or exactly at its end: the second before it was working time.
        assert is_working(calendar, due - timedelta(seconds=1))


@settings(max_examples=150, deadline=None)
@given(calendars(), starts, starts, durations, durations)
def test_a_later_start_or_a_longer_duration_is_never_due_earlier(
    calendar: BusinessCalendar, a: datetime, b: datetime, m: int, n: int
) -> None:
    early, late = sorted((a, b))
    short, long = sorted((timedelta(minutes=m), timedelta(minutes=n)))
    assert add_business_time(calendar, early, short) <= add_business_time(calendar, late, short)
    assert add_business_time(calendar, early, short) <= add_business_time(calendar, early, long)
