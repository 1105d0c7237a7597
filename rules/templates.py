"""Built-in message templates and their rendering.

leadflow's own notifications (overdue follow-up, reclaim, idle) and the default nurture
emails ship in `rules.builtin_templates`, in each language; a ruleset's `templates` add to
or override them by id. Placeholders are `{field}`; the fields are those of
`domain.recipients.message_fields` (`name`, `company`, `owner_name`, `captured_at`,
`won_amount`, `stage_words`, …), `event_words` in notifications and, in nurture emails,
`unsubscribe_url`.

Rendering knows who wrote what. The template's own text is the author's and is trusted;
a field value comes from lead data (a web form, an ad platform) and is not: it is
escaped for the message's target by an `Escape` (`inert_text` for email and Slack,
`inert_markdown` for DingTalk/WeCom robots, `as_is` for JSON), so a lead cannot put a
link or markup into a message. Only http(s) URLs written in the template text are links
(`Message.links`); a placeholder inside one is filled URL-quoted. URLs leadflow builds
itself (`lead_url`, `unsubscribe_url`) are passed as `LeadflowUrl` and written as they
are, like the author's text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from domain.locales import API_DEFAULT_LOCALE, Locale
from rules.builtin_templates import BUILTIN_TRANSLATIONS
from rules.model import Ruleset, Template

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")
# An http(s) URL in the template text, placeholders included; sentence punctuation right
# after it ("see https://example.com/guide.") is not part of it.
_AUTHOR_URL = re.compile(r"https?://[^\s<>\"')\]]+")
_TRAILING_PUNCTUATION = ".,;:!?"

Escape = Callable[[str], str]
"""How a field value from lead data is written into one kind of message."""


def as_is(value: str) -> str:
    """The value unchanged: for leadflow's JSON webhook, which carries any text safely and
    leaves presenting it to the receiver."""
    return value


_WEB_SCHEME = re.compile(r"(h)(tt)(ps?:)", re.IGNORECASE)
_OTHER_SCHEME = re.compile(r"(?<!hxxp)(?<!hxxps)://", re.IGNORECASE)
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_LABEL_DOT = re.compile(r"\.(?=[^\W\d_])")
# A whole email address: a client makes it a mailto link at most, which opens no page.
_EMAIL_ADDRESS = re.compile(
    r"(?<![\w.%+/:@-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?![\w/@:?#%-]|\.\w)",
    re.ASCII,
)


def _defang_dots(text: str) -> str:
    text = _IPV4.sub(lambda m: m[0].replace(".", "[.]"), text)
    return _LABEL_DOT.sub("[.]", text)


def inert_text(value: str) -> str:
    """The value defanged, so that no mail client or chat app turns any part of it into a
    web link: `http:`/`https:` become `hxxp:`/`hxxps:`, any other `://` becomes `[:]//`,
    and every dot followed by a letter (which is how every domain name ends) or inside an
    IPv4 address becomes `[.]`. So `https://evil.example/x` reads
    `hxxps://evil[.]example/x` and `www.evil.example/login` reads
    `www[.]evil[.]example/login`. A whole email address keeps its dots (`ann@x.io`): it
    can only become a mailto link. Text without a scheme, a dot before a letter or an IPv4
    address is unchanged (`Ann Lee`, `3.5`, `Acme Co. Ltd`). Applying it twice changes
    nothing more."""
    value = _WEB_SCHEME.sub(lambda m: m[1] + ("XX" if m[2].isupper() else "xx") + m[3], value)
    value = _OTHER_SCHEME.sub("[:]//", value)
    parts, written = [], 0
    for address in _EMAIL_ADDRESS.finditer(value):
        parts += [_defang_dots(value[written : address.start()]), address[0]]
        written = address.end()
    parts.append(_defang_dots(value[written:]))
    return "".join(parts)


# Each character markdown (or the robots' HTML-ish tags, entities and `<@user>` mentions)
# gives a meaning, mapped to its full-width form: the same glyph to a reader, no markup.
_MARKDOWN_FULLWIDTH = str.maketrans({c: chr(ord(c) + 0xFEE0) for c in "[]()<>*_#`!|~&\\"})


def inert_markdown(value: str) -> str:
    """The value for DingTalk/WeCom robot markdown: defanged like `inert_text`, on one
    line (so it cannot start a heading, list or quote), and with each markdown-significant
    character (``[ ] ( ) < > * _ # ` ! | ~ & \\``) replaced by its full-width form (the
    same code point + U+FEE0: `[` becomes U+FF3B FULLWIDTH LEFT SQUARE BRACKET): readable,
    and never a link, markup or mention."""
    return " ".join(inert_text(value).splitlines()).translate(_MARKDOWN_FULLWIDTH)


@dataclass(frozen=True)
class LeadflowUrl:
    """A URL leadflow built itself (a lead's page, an email's unsubscribe link): as a field
    value it is written as it is, like the template author's own text."""

    url: str

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True)
class Message:
    """A rendered template, escaped for one target.

    `links` are the http(s) URLs the template author wrote in the body, as rendered, in
    order and without duplicates: the only links in the message, and so the only URLs a
    click on a tracked email may redirect to."""

    subject: str
    body: str
    links: tuple[str, ...] = ()


def find_template(
    ruleset: Ruleset, template_id: str, locale: Locale = API_DEFAULT_LOCALE
) -> Template | None:
    """The ruleset's template with this id (as its author wrote it, whatever `locale`),
    else the built-in one in `locale`, else None."""
    return ruleset.templates.get(template_id) or BUILTIN_TRANSLATIONS[locale].get(template_id)


def _fill(text: str, fields: Mapping[str, object], write: Callable[[object], str]) -> str:
    # A field that is None renders empty, and a placeholder naming no field stays visible
    # as written, so a typo shows instead of crashing.
    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in fields:
            return match.group(0)
        value = fields[key]
        return "" if value is None else write(value)

    return _PLACEHOLDER.sub(fill, text)


def _names_its_host(url: str) -> bool:
    # A placeholder in the host would let lead data choose where the link goes.
    try:
        host = urlsplit(url).netloc
    except ValueError:
        return False
    return bool(host) and "{" not in host


def _render_text(text: str, fields: Mapping[str, object], escape: Escape) -> tuple[str, list[str]]:
    def field(value: object) -> str:
        return str(value) if isinstance(value, LeadflowUrl) else escape(str(value))

    def url_part(value: object) -> str:
        return quote(str(value), safe="")

    parts: list[str] = []
    links: list[str] = []
    written = 0
    for match in _AUTHOR_URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING_PUNCTUATION)
        parts.append(_fill(text[written : match.start()], fields, field))
        if _names_its_host(url):
            link = _fill(url, fields, url_part)
            parts.append(link)
            links.append(link)
        else:
            parts.append(escape(_fill(url, fields, str)))
        written = match.start() + len(url)
    parts.append(_fill(text[written:], fields, field))
    return "".join(parts), list(dict.fromkeys(links))


def render(
    template: Template,
    fields: Mapping[str, object],
    variant: str | None = None,
    *,
    escape: Escape = inert_text,
) -> Message:
    """Render subject and body for one target; a lead in `variant` gets that variant's
    subject if the template has one.

    The template's text is kept as written. Each field value is written through `escape`
    (defanged plain text unless told otherwise), except a `LeadflowUrl`, written as it
    is. An http(s) URL in the body's template text whose host is written out is a link
    (`Message.links`): placeholders inside it are filled URL-quoted
    (`https://example.com/offer?lead={lead_id}`), so a value can change the URL's query
    or path segment but never where it points. A URL whose host holds a placeholder is
    no link: it is filled and then escaped as a whole, like a field value. A field that is
    None renders empty; a placeholder naming no field stays visible as written."""
    subject = template.subject
    if variant is not None:
        subject = template.subject_variants.get(variant, subject)
    subject_text, _ = _render_text(subject, fields, escape)
    body, links = _render_text(template.body, fields, escape)
    return Message(subject=subject_text, body=body, links=tuple(links))
