"""The languages leadflow words things in (zh-CN and en), how a request or a recipient
picks one, and how money and moments read in a message (docs/languages.md).

Pure: no I/O. `Locale` values are the BCP 47 tags a client sends; `parse_locale` reads
them exactly (a directory entry, a query parameter), `negotiate` reads an
`Accept-Language` header leniently (`zh`, `zh-Hans-CN` and `zh-TW` all mean zh-CN here,
the one Chinese leadflow speaks; `en-GB` means en).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Literal, get_args
from zoneinfo import ZoneInfo

Locale = Literal["zh-CN", "en"]
LOCALES: tuple[Locale, ...] = get_args(Locale)
# What the API words in when a request names no language: English, as it always has.
API_DEFAULT_LOCALE: Locale = "en"


class UnknownLocale(ValueError):
    """A language leadflow does not speak."""

    def __init__(self, text: str) -> None:
        super().__init__(f"{text!r} is not a language leadflow speaks: one of {', '.join(LOCALES)}")


def parse_locale(text: str) -> Locale:
    """`zh-CN` or `en` (any letter case); raises UnknownLocale for anything else."""
    for locale in LOCALES:
        if text.lower() == locale.lower():
            return locale
    raise UnknownLocale(text)


def _language(tag: str) -> Locale | None:
    primary = tag.strip().lower().split("-")[0]
    return "zh-CN" if primary == "zh" else "en" if primary == "en" else None


def negotiate(accept_language: str | None) -> Locale | None:
    """The language an `Accept-Language` header prefers among those leadflow speaks
    (highest `q` first, the header's order among equals), or None when it names none of
    them (or `*` only)."""
    if not accept_language:
        return None
    ranked: list[tuple[float, int, Locale]] = []
    for index, item in enumerate(accept_language.split(",")[:50]):
        tag, _, params = item.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        locale = _language(tag)
        if locale is not None and quality > 0:
            ranked.append((-quality, index, locale))
    return min(ranked)[2] if ranked else None


# Currencies a Chinese sales team meets, by their usual sign; any other reads by its code.
CURRENCY_SIGNS = {
    "CNY": "¥",
    "USD": "US$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "JP¥",
    "HKD": "HK$",
    "TWD": "NT$",
    "SGD": "S$",
}
DEFAULT_CURRENCY = "CNY"


def money(amount: object, currency: str | None = None) -> str:
    """An amount with its currency and thousands grouped, the same in both languages (a
    Chinese team writes ¥1,200,000 too): `money("1200000")` → "¥1,200,000",
    `money("99.5", "USD")` → "US$99.50", `money(10, "CHF")` → "CHF 10". Cents show only
    when there are any. No currency: CNY. An amount that is no number reads as itself."""
    try:
        number = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    if not number.is_finite():
        return str(amount)
    code = (currency or DEFAULT_CURRENCY).upper()
    digits = f"{number:,.2f}"
    if digits.endswith(".00"):
        digits = digits[:-3]
    sign = CURRENCY_SIGNS.get(code)
    return f"{sign}{digits}" if sign else f"{code} {digits}"


def local_time(moment: str | datetime | None, time_zone: str, locale: Locale) -> str | None:
    """An instant as a person in `time_zone` reads it: "2026-12-08 14:00" in en,
    "2026年12月8日 14:00" in zh-CN; None stays None and a text that is no RFC 3339
    instant reads as itself. A naive datetime is taken as UTC."""
    if moment is None:
        return None
    if isinstance(moment, str):
        try:
            instant = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    else:
        instant = moment
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    local = instant.astimezone(ZoneInfo(time_zone))
    if locale == "zh-CN":
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
    return f"{local:%Y-%m-%d %H:%M}"
