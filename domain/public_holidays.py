"""Public holidays and make-up working days of a country's year, from the `holidays`
package: what fills a directory calendar's `holidays` and `workdays`
(`GET /v1/directory/holidays`, docs/calendars.md).

Only this lookup reads the package. Decisions count in the dates the directory states, so
a decision and its replay agree whatever version of the package is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import holidays

from domain.errors import DomainError

FIRST_YEAR = 2000
LAST_YEAR = 2100


class NoPublicHolidays(DomainError):
    """The package has no holidays for this country or year (HTTP 422 naming `parameter`)."""

    code = "invalid_request"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class PublicHolidays:
    country: str
    year: int
    holidays: list[dict[str, str]] = field(default_factory=list)  # {"date", "name"}
    workdays: list[dict[str, str]] = field(default_factory=list)  # {"date", "hours_of"}


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    return frozenset(holidays.list_supported_countries())


def public_holidays(country: str, year: int) -> PublicHolidays:
    """The days off of `country` (ISO 3166-1 alpha-2, any case) in `year`, in English where
    the package has it, several names of one date joined by "; ", and the make-up working
    days (weekend dates worked, as mainland China publishes them) with Monday's hours.
    Raises NoPublicHolidays for a country the package does not know or a year outside
    2000..2100 and the package's own range for the country."""
    code = country.strip().upper()
    if code not in _countries():
        raise NoPublicHolidays(
            "country", f"{country!r}: no public holidays known for this country code"
        )
    cls = type(holidays.country_holidays(code))
    first = max(FIRST_YEAR, getattr(cls, "start_year", FIRST_YEAR))
    last = min(LAST_YEAR, getattr(cls, "end_year", LAST_YEAR))
    if not first <= year <= last:
        raise NoPublicHolidays("year", f"must be a year from {first} to {last} for {code}")
    language = "en_US" if "en_US" in getattr(cls, "supported_languages", ()) else None
    days = holidays.country_holidays(code, years=year, language=language)
    made_up = sorted(d for d in getattr(days, "weekend_workdays", ()) if d.year == year)
    return PublicHolidays(
        country=code,
        year=year,
        holidays=[
            {"date": day.isoformat(), "name": "; ".join(days.get_list(day))}
            for day in sorted(d for d in days if isinstance(d, date) and d.year == year)
        ],
        workdays=[{"date": day.isoformat(), "hours_of": "mon"} for day in made_up],
    )
