"""The unsubscribe link's pages (docs/consent.md) and what its POST may carry.

The pages are whole documents with no external asset (no script, style sheet, font or
image from anywhere), in Simplified Chinese or English by the reader's Accept-Language
(Simplified Chinese when it names neither). A GET only shows the question; the page's
button POSTs, so a mail scanner that fetches every link unsubscribes nobody.
"""

from __future__ import annotations

import html
from email import message_from_bytes
from email.message import Message
from typing import Literal
from urllib.parse import parse_qsl

from api.errors import ApiError
from domain.tracking import ONE_CLICK

Language = Literal["zh-CN", "en"]
Page = Literal["confirm", "unsubscribed", "unknown"]

# A one-click body is 26 bytes; a multipart one with its boundaries a few hundred.
MAX_ONE_CLICK_BYTES = 2048

# Chinese text with its own full-width punctuation.
_TEXT: dict[Language, dict[str, str]] = {
    "zh-CN": {
        "confirm.title": "退订邮件",
        "confirm.heading": "确定不再接收这些邮件吗？",  # noqa: RUF001
        "confirm.body": "点击下面的按钮后，我们将不再向您发送营销邮件。",  # noqa: RUF001
        "confirm.button": "确认退订",
        "unsubscribed.title": "已退订",
        "unsubscribed.heading": "您已退订",
        "unsubscribed.body": "我们不会再向您发送这些邮件。",
        "unknown.title": "链接无效",
        "unknown.heading": "找不到这封邮件",
        "unknown.body": "这个退订链接无效，可能复制不完整。请使用邮件中的完整链接。",  # noqa: RUF001
    },
    "en": {
        "confirm.title": "Unsubscribe",
        "confirm.heading": "Stop receiving these emails?",
        "confirm.body": "Once you press the button below, we will send you no more marketing "
        "email.",
        "confirm.button": "Unsubscribe",
        "unsubscribed.title": "Unsubscribed",
        "unsubscribed.heading": "You are unsubscribed",
        "unsubscribed.body": "You will not receive these emails any more.",
        "unknown.title": "Link not valid",
        "unknown.heading": "No such email",
        "unknown.body": "This unsubscribe link is not valid; it may have been copied in part. "
        "Use the whole link from the email.",
    },
}

_STYLE = (
    "body{font-family:system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;"
    "max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222;line-height:1.6}"
    "button{font-size:1rem;padding:.6rem 1.4rem;border:0;border-radius:4px;"
    "background:#1f6feb;color:#fff;cursor:pointer}"
)

# Only the page's own inline style and a form posted to this same URL: nothing is loaded
# from anywhere, and no other site may frame the page or receive its address.
PAGE_HEADERS = {
    "Cache-Control": "no-store, max-age=0",
    "Vary": "Accept-Language",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}


def language(accept_language: str | None) -> Language:
    """The reader's language among the pages': the first of zh / en by Accept-Language
    preference (RFC 9110 q-values), Simplified Chinese when it names neither."""
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate((accept_language or "")[:500].split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip() == "q":
            try:
                quality = float(value)
            except ValueError:
                continue
        if quality > 0:
            ranked.append((-quality, index, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag == "zh" or tag.startswith("zh-"):
            return "zh-CN"
        if tag == "en" or tag.startswith("en-"):
            return "en"
    return "zh-CN"


def page(kind: Page, lang: Language) -> str:
    """One of the unsubscribe link's pages as an HTML document; `confirm` holds a form
    that POSTs to the page's own URL with an empty body."""
    text = _TEXT[lang]
    button = ""
    if kind == "confirm":
        label = html.escape(text["confirm.button"])
        button = f'<form method="post"><button type="submit">{label}</button></form>'
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(text[kind + '.title'])}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(text[kind + '.heading'])}</h1>"
        f"<p>{html.escape(text[kind + '.body'])}</p>{button}</body></html>"
    )


def check_one_click(content_type: str | None, body: bytes) -> None:
    """Accept an unsubscribe POST's body: empty (the confirmation page's button), or the
    RFC 8058 form `List-Unsubscribe=One-Click`, URL-encoded or multipart/form-data.
    Raises ApiError 422 naming `/List-Unsubscribe` for any other body."""
    if not body.strip():
        return
    media = (content_type or "").split(";")[0].strip().lower()
    fields: list[tuple[str, str]] | None = None
    if media == "multipart/form-data":
        fields = _multipart_fields(content_type or "", body)
    elif media in ("application/x-www-form-urlencoded", ""):
        try:
            # A trailing line break (some senders end the body with one) is no reason to refuse.
            text = body.decode("ascii").strip()
            fields = parse_qsl(text, strict_parsing=True, max_num_fields=5)
        except (UnicodeDecodeError, ValueError):
            fields = None
    if fields != [tuple(ONE_CLICK.split("=", 1))]:
        raise ApiError(
            422,
            "invalid_request",
            "the request is not valid",
            [
                {
                    "path": "/List-Unsubscribe",
                    "message": f"the body is empty or the form {ONE_CLICK} (RFC 8058)",
                    "in": "body",
                }
            ],
        )


def _multipart_fields(content_type: str, body: bytes) -> list[tuple[str, str]] | None:
    parsed = message_from_bytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not parsed.is_multipart():
        return None
    fields: list[tuple[str, str]] = []
    for part in parsed.get_payload():
        if not isinstance(part, Message):
            return None
        name = part.get_param("name", header="content-disposition")
        value = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(value, bytes):
            return None
        fields.append((name, value.decode("ascii", errors="replace").strip()))
    return fields
