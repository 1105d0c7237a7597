"""Tracked nurture emails: which lead a message id belongs to and which links it carries,
so the open pixel, click redirects and the unsubscribe link need no API key (the message
id is unguessable) and a redirect only ever goes to a URL the email itself contained."""

from __future__ import annotations

import html
import re
from urllib.parse import quote
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.identity import LEADFLOW_NAMESPACE

_URL = re.compile(r"https?://[^\s<>\"')\]]+")


def tracked_message_id(message_id: str) -> UUID:
    return uuid5(LEADFLOW_NAMESPACE, f"stream:tracked-message:{message_id}")


def links_in(text: str) -> list[str]:
    """Every http(s) URL in a message body, in order, without duplicates."""
    return list(dict.fromkeys(_URL.findall(text)))


class TrackedMessage(Aggregate):
    class Sent(Aggregate.Created):
        message_id: str
        lead_id: str
        links: list[str]

    def __init__(self, message_id: str, lead_id: str, links: list[str]) -> None:
        self.message_id = message_id
        self.lead_id = lead_id
        self.links = links

    @classmethod
    def sent(cls, message_id: str, lead_id: str, links: list[str]) -> TrackedMessage:
        return cls._create(
            cls.Sent,
            id=tracked_message_id(message_id),
            message_id=message_id,
            lead_id=lead_id,
            links=links,
        )


def tracked_html(body: str, base_url: str, message_id: str) -> str:
    """The HTML part of a nurture email: links go through the click redirect, with an
    open pixel and an unsubscribe link."""
    base = base_url.rstrip("/")

    def link(url: str) -> str:
        href = f"{base}/t/c/{message_id}?u={quote(url, safe='')}"
        return f'<a href="{html.escape(href)}">{html.escape(url)}</a>'

    paragraphs = ""
    for paragraph in body.split("\n\n"):
        parts, last = [], 0
        for match in _URL.finditer(paragraph):
            parts += [html.escape(paragraph[last : match.start()]), link(match.group(0))]
            last = match.end()
        parts.append(html.escape(paragraph[last:]))
        paragraphs += f"<p>{''.join(parts)}</p>"
    return (
        f"<html><body>{paragraphs}"
        f'<p><a href="{html.escape(base)}/t/u/{message_id}">Unsubscribe</a></p>'
        f'<img src="{html.escape(base)}/t/o/{message_id}" width="1" height="1" alt="">'
        "</body></html>"
    )


def tracked_text(body: str, base_url: str, message_id: str) -> str:
    """The plain-text part: the body and an unsubscribe link."""
    return f"{body}\n\n--\nUnsubscribe: {base_url.rstrip('/')}/t/u/{message_id}\n"
