"""A hosted form as a document: its fields, what lead field each fills, its consent, its
thank-you, the origins that may embed it. `validate_form` lists every fault by JSON
Pointer (as rulesets' validation does); `parse_form` returns the `Form` or raises
`InvalidForm`. Pure: no I/O, no clock.

Field patterns are run by RE2 (`rules.compile.compile_regex`), anchored to the whole value,
so a hostile pattern cannot backtrack for seconds on a visitor's text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from domain.errors import FieldError, InvalidDocument, json_pointer
from domain.limits import unsafe_values
from rules.compile import InvalidRegex, compile_regex

Language = Literal["en", "zh-CN"]
LANGUAGES: tuple[Language, ...] = ("en", "zh-CN")
FieldType = Literal["text", "email", "phone", "select", "checkbox", "hidden"]
FIELD_TYPES = ("text", "email", "phone", "select", "checkbox", "hidden")

# The lead.captured data fields a form field may fill (`source`, `channel`, `campaign_id`
# and `form_id` come from the form itself), with the longest text each takes.
CAPTURE_FIELDS: dict[str, int] = {
    "email": 320,
    "phone": 40,
    "name": 200,
    "company": 200,
    "region": 100,
    "industry": 100,
    "company_size": 50,
    "intent": 10,
}
INTENTS = ("low", "medium", "high")
ATTRIBUTE_PREFIX = "attributes."
# Attributes the submission itself writes (docs/forms.md, "What a submission records").
SUBMISSION_ATTRIBUTES = frozenset(
    {
        "form_version",
        "page_url",
        "referrer",
        "consent",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
    }
)
# Names a visitor's browser sends beside the form's own fields.
RESERVED_NAMES = frozenset(
    {"homepage", "consent", "campaign", "channel", "page_url", "referrer", "lang"}
)

FORM_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")
# An origin as browsers send it: scheme, host, optional port; no path.
ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)

MAX_FIELDS = 40
MAX_OPTIONS = 100
MAX_ORIGINS = 20
MAX_LABEL_CHARS = 300
MAX_TEXT_CHARS = 2000  # descriptions, consent text, thank-you message
MAX_VALUE_CHARS = 1000  # a field's default max length
MAX_FIELD_CHARS = 5000  # the longest any field may allow
MAX_PATTERN_CHARS = 500
MAX_FILL_SECONDS = 600
DEFAULT_MIN_FILL_SECONDS = 3
MAX_URL_CHARS = 2000
DEFAULT_THANKS = {
    "en": "Thank you! We will be in touch.",
    "zh-CN": "感谢您的留言。我们会尽快与您联系。",
}

_TOP_KEYS = {
    "id",
    "name",
    "title",
    "description",
    "source",
    "channel",
    "campaign_id",
    "fields",
    "consent",
    "thank_you",
    "allowed_origins",
    "min_fill_seconds",
    "submit_label",
}
_FIELD_KEYS = {
    "name",
    "type",
    "maps_to",
    "label",
    "placeholder",
    "required",
    "pattern",
    "max_length",
    "options",
    "value",
}


class InvalidForm(InvalidDocument):
    """A form document with bad fields (HTTP 422 `invalid_form`): every one, by pointer."""

    code = "invalid_form"
    what = "form"


Text = dict[str, str]  # language → text; at least one of LANGUAGES


def in_language(text: Mapping[str, str], language: str) -> str:
    """`text` in `language`, or in the other language when it has none."""
    return text.get(language) or next(iter(text.values()), "")


@dataclass(frozen=True)
class Option:
    value: str
    label: Text


@dataclass(frozen=True)
class FormField:
    name: str
    type: FieldType
    maps_to: str
    label: Text
    placeholder: Text | None = None
    required: bool = False
    pattern: str | None = None
    max_length: int = MAX_VALUE_CHARS
    options: tuple[Option, ...] = ()
    value: str | None = None  # a hidden field's value

    @property
    def attribute(self) -> str | None:
        """The attribute this field fills, or None for a capture field."""
        if self.maps_to.startswith(ATTRIBUTE_PREFIX):
            return self.maps_to.removeprefix(ATTRIBUTE_PREFIX)
        return None

    def matches(self, value: str) -> bool:
        """Whether `value` satisfies the field's pattern (the whole value), or it has none."""
        if self.pattern is None:
            return True
        return _anchored(self.pattern)(value)


@dataclass(frozen=True)
class Consent:
    required: bool
    version: str
    text: Text


@dataclass(frozen=True)
class ThankYou:
    message: Text | None = None
    redirect_url: str | None = None


@dataclass(frozen=True)
class Form:
    """A validated form document (one published version)."""

    id: str
    name: str
    title: Text
    source: str
    fields: tuple[FormField, ...]
    thank_you: ThankYou
    description: Text | None = None
    channel: str | None = None
    campaign_id: str | None = None
    consent: Consent | None = None
    allowed_origins: tuple[str, ...] = ()
    min_fill_seconds: int = DEFAULT_MIN_FILL_SECONDS
    submit_label: Text = field(default_factory=lambda: {"en": "Submit", "zh-CN": "提交"})


_PATTERNS: dict[str, Callable[[str], bool]] = {}


def _anchored(pattern: str) -> Callable[[str], bool]:
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        compiled = _PATTERNS[pattern] = compile_regex(rf"\A(?:{pattern})\z")
    return compiled


Path = tuple[str | int, ...]


class _Checker:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, path: Path, message: str) -> None:
        self.errors.append(FieldError(json_pointer(path), message))

    def obj(self, path: Path, value: object, allowed: set[str], required: set[str]) -> bool:
        if not isinstance(value, dict):
            self.fail(path, "must be a JSON object")
            return False
        for key in value:
            if key not in allowed:
                self.fail((*path, key), "unknown field")
        for key in sorted(required - value.keys()):
            self.fail((*path, key), "required")
        return True

    def text(
        self, path: Path, value: object, limit: int, pattern: re.Pattern[str] | None = None
    ) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, "must be a non-empty string")
            return None
        if len(value) > limit:
            self.fail(path, f"at most {limit} characters")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(path, f"must match {pattern.pattern}")
            return None
        return value

    def localized(self, path: Path, value: object, limit: int) -> Text | None:
        """A text in each language: `{"en": ..., "zh-CN": ...}` (one may be left out),
        or one string for both."""
        if isinstance(value, str):
            text = self.text(path, value, limit)
            return None if text is None else dict.fromkeys(LANGUAGES, text)
        if not isinstance(value, dict) or not value:
            self.fail(path, 'must be a string or {"en": ..., "zh-CN": ...}')
            return None
        result: Text = {}
        for key, item in value.items():
            if key not in LANGUAGES:
                self.fail((*path, key), "unknown language: use en or zh-CN")
                continue
            text = self.text((*path, key), item, limit)
            if text is not None:
                result[key] = text
        return result or None

    def form(self, doc: object) -> Form | None:
        if not self.obj((), doc, _TOP_KEYS, {"title", "source", "fields"}):
            return None
        assert isinstance(doc, dict)
        form_id = self.text(("id",), doc.get("id"), 63, FORM_ID) if "id" in doc else None
        title = self.localized(("title",), doc.get("title"), MAX_LABEL_CHARS)
        name = doc.get("name")
        if name is not None:
            name = self.text(("name",), name, 200)
        description = None
        if doc.get("description") is not None:
            description = self.localized(("description",), doc["description"], MAX_TEXT_CHARS)
        source = self.text(("source",), doc.get("source"), 100)
        channel = campaign = None
        if doc.get("channel") is not None:
            channel = self.text(("channel",), doc["channel"], 100)
        if doc.get("campaign_id") is not None:
            campaign = self.text(("campaign_id",), doc["campaign_id"], 100)
        submit = {"en": "Submit", "zh-CN": "提交"}
        if doc.get("submit_label") is not None:
            submit = self.localized(("submit_label",), doc["submit_label"], 100) or submit
        fields = self.fields(doc.get("fields"))
        consent = self.consent(doc["consent"]) if doc.get("consent") is not None else None
        thank_you = self.thank_you(doc.get("thank_you"))
        origins = self.origins(doc.get("allowed_origins", []))
        min_fill = doc.get("min_fill_seconds", DEFAULT_MIN_FILL_SECONDS)
        if (
            not isinstance(min_fill, int)
            or isinstance(min_fill, bool)
            or not 0 <= min_fill <= MAX_FILL_SECONDS
        ):
            self.fail(("min_fill_seconds",), f"must be a whole number from 0 to {MAX_FILL_SECONDS}")
            min_fill = DEFAULT_MIN_FILL_SECONDS
        if self.errors:
            return None
        assert title is not None and source is not None and fields is not None
        assert thank_you is not None
        return Form(
            id=form_id or "",
            name=name or in_language(title, "en"),
            title=title,
            description=description,
            source=source,
            channel=channel,
            campaign_id=campaign,
            fields=fields,
            consent=consent,
            thank_you=thank_you,
            allowed_origins=origins,
            min_fill_seconds=min_fill,
            submit_label=submit,
        )

    def fields(self, value: object) -> tuple[FormField, ...] | None:
        path: Path = ("fields",)
        if not isinstance(value, list) or not value:
            self.fail(path, "must be a non-empty list of fields")
            return None
        if len(value) > MAX_FIELDS:
            self.fail(path, f"a form has at most {MAX_FIELDS} fields")
            return None
        parsed: list[FormField] = []
        names: dict[str, int] = {}
        targets: dict[str, int] = {}
        for index, item in enumerate(value):
            one = self.field((*path, index), item)
            if one is None:
                continue
            if one.name in names:
                self.fail((*path, index, "name"), f"duplicate field name (field {names[one.name]})")
            names.setdefault(one.name, index)
            if one.maps_to in targets:
                self.fail(
                    (*path, index, "maps_to"),
                    f"field {targets[one.maps_to]} already fills {one.maps_to}",
                )
            targets.setdefault(one.maps_to, index)
            parsed.append(one)
        if not {"email", "phone"} & targets.keys() and len(parsed) == len(value):
            self.fail(path, "a lead needs an email or a phone: some field must map to one")
        return tuple(parsed)

    def field(self, path: Path, value: object) -> FormField | None:
        if not self.obj(path, value, _FIELD_KEYS, {"name", "type", "maps_to", "label"}):
            return None
        assert isinstance(value, dict)
        before = len(self.errors)
        name = self.text((*path, "name"), value.get("name"), 63, FIELD_NAME)
        if name is not None and (name in RESERVED_NAMES or name.startswith("utm_")):
            self.fail((*path, "name"), f"{name!r} is reserved for what the page itself sends")
        kind = value.get("type")
        if kind not in FIELD_TYPES:
            self.fail((*path, "type"), f"must be one of {', '.join(FIELD_TYPES)}")
        maps_to = self.target((*path, "maps_to"), value.get("maps_to"), kind)
        label = self.localized((*path, "label"), value.get("label"), MAX_LABEL_CHARS)
        placeholder = None
        if value.get("placeholder") is not None:
            placeholder = self.localized((*path, "placeholder"), value["placeholder"], 200)
        required = value.get("required", False)
        if not isinstance(required, bool):
            self.fail((*path, "required"), "must be true or false")
        limit = min(MAX_FIELD_CHARS, CAPTURE_FIELDS.get(str(maps_to), MAX_FIELD_CHARS))
        max_length = value.get("max_length", min(MAX_VALUE_CHARS, limit))
        if not isinstance(max_length, int) or isinstance(max_length, bool):
            self.fail((*path, "max_length"), "must be a whole number")
        elif not 1 <= max_length <= limit:
            self.fail((*path, "max_length"), f"must be from 1 to {limit} for {maps_to}")
        pattern = value.get("pattern")
        if pattern is not None:
            pattern = self.pattern((*path, "pattern"), pattern)
        options = self.options((*path, "options"), value.get("options"), kind, maps_to)
        hidden_value = value.get("value")
        if hidden_value is not None:
            if kind != "hidden":
                self.fail((*path, "value"), "only a hidden field has a fixed value")
            else:
                hidden_value = self.text((*path, "value"), hidden_value, MAX_VALUE_CHARS)
        if kind == "checkbox" and value.get("pattern") is not None:
            self.fail((*path, "pattern"), "a checkbox has no pattern")
        if len(self.errors) > before:
            return None
        assert name is not None and maps_to is not None and label is not None
        return FormField(
            name=name,
            type=kind,  # type: ignore[arg-type]
            maps_to=maps_to,
            label=label,
            placeholder=placeholder,
            required=required,
            pattern=pattern,
            max_length=max_length,
            options=options,
            value=hidden_value,
        )

    def target(self, path: Path, value: object, kind: object) -> str | None:
        if not isinstance(value, str):
            self.fail(path, "must name a lead field (email, phone, ...) or attributes.<name>")
            return None
        if value.startswith(ATTRIBUTE_PREFIX):
            attribute = value.removeprefix(ATTRIBUTE_PREFIX)
            if not ATTRIBUTE_NAME.fullmatch(attribute):
                self.fail(path, f"attribute names must match {ATTRIBUTE_NAME.pattern}")
                return None
            if attribute in SUBMISSION_ATTRIBUTES:
                self.fail(path, f"attributes.{attribute} is written by the submission itself")
                return None
            return value
        if value not in CAPTURE_FIELDS:
            known = ", ".join(CAPTURE_FIELDS)
            self.fail(path, f"unknown lead field {value!r}: one of {known}, or attributes.<name>")
            return None
        if kind == "checkbox":
            self.fail(path, "a checkbox fills an attribute (true/false), not a lead field")
            return None
        if value == "email" and kind not in ("email", "hidden"):
            self.fail(path, "email is filled by a field of type email")
            return None
        if value == "phone" and kind not in ("phone", "hidden"):
            self.fail(path, "phone is filled by a field of type phone")
            return None
        if value == "intent" and kind not in ("select", "hidden"):
            self.fail(path, "intent is filled by a select (low, medium, high)")
            return None
        return value

    def pattern(self, path: Path, value: object) -> str | None:
        text = self.text(path, value, MAX_PATTERN_CHARS)
        if text is None:
            return None
        try:
            _anchored(text)
        except InvalidRegex as refused:
            self.fail(path, str(refused))
            return None
        return text

    def options(
        self, path: Path, value: object, kind: object, maps_to: str | None
    ) -> tuple[Option, ...]:
        if kind != "select":
            if value is not None:
                self.fail(path, "only a select has options")
            return ()
        if not isinstance(value, list) or not value:
            self.fail(path, "a select needs a non-empty list of options")
            return ()
        if len(value) > MAX_OPTIONS:
            self.fail(path, f"at most {MAX_OPTIONS} options")
            return ()
        options: list[Option] = []
        seen: set[str] = set()
        for index, item in enumerate(value):
            at = (*path, index)
            if not self.obj(at, item, {"value", "label"}, {"value", "label"}):
                continue
            assert isinstance(item, dict)
            option = self.text((*at, "value"), item.get("value"), 200)
            label = self.localized((*at, "label"), item.get("label"), MAX_LABEL_CHARS)
            if option is None or label is None:
                continue
            if option in seen:
                self.fail((*at, "value"), "duplicate option")
            if maps_to == "intent" and option not in INTENTS:
                self.fail((*at, "value"), "intent options are low, medium and high")
            seen.add(option)
            options.append(Option(option, label))
        return tuple(options)

    def consent(self, value: object) -> Consent | None:
        path: Path = ("consent",)
        if not self.obj(path, value, {"required", "version", "text"}, {"version", "text"}):
            return None
        assert isinstance(value, dict)
        required = value.get("required", True)
        if not isinstance(required, bool):
            self.fail((*path, "required"), "must be true or false")
        version = self.text((*path, "version"), value.get("version"), 100)
        text = self.localized((*path, "text"), value.get("text"), MAX_TEXT_CHARS)
        if version is None or text is None or not isinstance(required, bool):
            return None
        return Consent(required=required, version=version, text=text)

    def thank_you(self, value: object) -> ThankYou | None:
        path: Path = ("thank_you",)
        if value is None:
            return ThankYou(message=DEFAULT_THANKS)
        if not self.obj(path, value, {"message", "redirect_url"}, set()):
            return None
        assert isinstance(value, dict)
        if ("message" in value) == ("redirect_url" in value):
            self.fail(path, "give either a message or a redirect_url")
            return None
        if "message" in value:
            message = self.localized((*path, "message"), value["message"], MAX_TEXT_CHARS)
            return None if message is None else ThankYou(message=message)
        url = self.text((*path, "redirect_url"), value["redirect_url"], MAX_URL_CHARS)
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.fail((*path, "redirect_url"), "must be an absolute http(s) URL")
            return None
        return ThankYou(redirect_url=url)

    def origins(self, value: object) -> tuple[str, ...]:
        path: Path = ("allowed_origins",)
        if not isinstance(value, list):
            self.fail(path, "must be a list of origins, e.g. https://www.example.com")
            return ()
        if len(value) > MAX_ORIGINS:
            self.fail(path, f"at most {MAX_ORIGINS} origins")
            return ()
        origins: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not ORIGIN.fullmatch(item):
                self.fail((*path, index), "must be an origin: scheme://host[:port], no path")
                continue
            origins.append(item.lower())
        return tuple(origins)


def _check(doc: object) -> tuple[Form | None, list[FieldError]]:
    unsafe = unsafe_values(doc)
    if unsafe:
        return None, unsafe
    checker = _Checker()
    form = checker.form(doc)
    return form, checker.errors


def validate_form(doc: object) -> list[FieldError]:
    """Every fault of the form document `doc`, by JSON Pointer; empty when it is valid."""
    return _check(doc)[1]


def parse_form(doc: object) -> Form:
    """The validated form (its `id` empty when the document names none); raises
    InvalidForm listing every fault."""
    form, errors = _check(doc)
    if errors or form is None:
        raise InvalidForm(errors or [FieldError("", "not a valid form")])
    return form


def stored_document(doc: Mapping[str, Any], form_id: str) -> dict[str, Any]:
    """The document as stored: as posted, with its id."""
    return {**doc, "id": form_id}
