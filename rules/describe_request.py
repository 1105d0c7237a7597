"""The body of `POST /v1/rulesets/describe`, checked: the candidate ruleset, the version
to compare it with, and the language to word it in (`rules.describe` words it)."""

from __future__ import annotations

from dataclasses import dataclass

from domain.directory import Directory
from domain.errors import FieldError
from domain.locales import Locale, UnknownLocale, parse_locale
from rules.model import Ruleset
from rules.validation import InvalidRuleset, parse_ruleset

_REQUEST_KEYS = {"candidate", "base_version", "locale"}


@dataclass(frozen=True)
class DescribeRequest:
    """`POST /v1/rulesets/describe`: the candidate, the version to compare it with
    (None: the active one), and the language of the sentences (None: the request's
    `Accept-Language`, else en)."""

    candidate: Ruleset
    base_version: int | None
    locale: Locale | None = None


def parse_describe_request(body: object, directory: Directory | None) -> DescribeRequest:
    """`{"candidate": <ruleset document>, "base_version": int | null, "locale": "zh-CN" |
    "en" | null}`; raises
    InvalidRuleset naming every bad field, the candidate's errors (those
    `POST /v1/rulesets/validate` reports) under `/candidate`."""
    if not isinstance(body, dict):
        raise InvalidRuleset([FieldError("", "expected a JSON object")])
    errors = [FieldError(f"/{key}", "unknown field") for key in body if key not in _REQUEST_KEYS]
    candidate: Ruleset | None = None
    if "candidate" not in body:
        errors.append(FieldError("/candidate", "required: the candidate ruleset document"))
    else:
        try:
            candidate = parse_ruleset(body["candidate"], directory)
        except InvalidRuleset as invalid:
            errors += [FieldError("/candidate" + e.path, e.message) for e in invalid.errors]
    base = body.get("base_version")
    if base is not None and (type(base) is not int or base < 1):
        errors.append(FieldError("/base_version", "expected a ruleset version (an integer ≥ 1)"))
    locale: Locale | None = None
    if body.get("locale") is not None:
        try:
            locale = parse_locale(str(body["locale"]))
        except UnknownLocale as unknown:
            errors.append(FieldError("/locale", str(unknown)))
    if errors or candidate is None:
        raise InvalidRuleset(errors)
    return DescribeRequest(candidate, base, locale)
