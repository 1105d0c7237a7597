"""Tracked nurture emails: which lead a message id belongs to and which links it carries,
so the open pixel, click redirects and the unsubscribe link need no API key (the message
id is unguessable) and a redirect only ever goes to a URL the template author wrote into
the email (`rules.templates.Message.links`), never to one that came from lead data."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from email.utils import parseaddr
from urllib.parse import quote
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.identity import LEADFLOW_NAMESPACE


def tracked_message_id(message_id: str) -> UUID:
    return uuid5(LEADFLOW_NAMESPACE, f"stream:tracked-message:{message_id}")


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


def unsubscribe_link(base_url: str, message_id: str) -> str:
    """The URL that unsubscribes the lead a nurture email went to (`GET /t/u/{id}`)."""
    return f"{base_url.rstrip('/')}/t/u/{message_id}"


# RFC 8058: a POST of this body to the List-Unsubscribe URL unsubscribes, no page between.
ONE_CLICK = "List-Unsubscribe=One-Click"


def unsubscribe_mailbox(mail_from: str) -> str:
    """The default address of the mailto unsubscribe: the sender's own address (the part
    between <> of "Name <a@b>", or the whole when it has none)."""
    return parseaddr(mail_from)[1] or mail_from.strip()


def list_unsubscribe_headers(base_url: str, message_id: str, mailbox: str | None) -> dict[str, str]:
    """The RFC 2369 / RFC 8058 headers of a marketing email: `List-Unsubscribe` with the
    one-click URL first and, when there is a `mailbox`, a mailto whose subject names the
    message (so a mailbox rule can POST the URL for it: docs/consent.md), and
    `List-Unsubscribe-Post`, which tells mailbox providers the URL takes the POST."""
    targets = [f"<{unsubscribe_link(base_url, message_id)}>"]
    if mailbox:
        subject = quote(f"unsubscribe {message_id}", safe="")
        targets.append(f"<mailto:{mailbox}?subject={subject}>")
    return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": ONE_CLICK}


def tracked_html(body: str, links: Sequence[str], base_url: str, message_id: str) -> str:
    """The HTML part of a nurture email: the plain-text `body` HTML-escaped, a paragraph
    per blank-line-separated block, with an open pixel.

    Only exact occurrences of `links` (the URLs the template author wrote) become links,
    through the click redirect, and the message's own unsubscribe URL links to itself;
    nothing else in the body is a link, whatever it looks like. An unsubscribe link is
    added at the end unless the body has one."""
    base = base_url.rstrip("/")
    unsubscribe = unsubscribe_link(base, message_id)
    hrefs = {url: f"{base}/t/c/{message_id}?u={quote(url, safe='')}" for url in links}
    hrefs[unsubscribe] = unsubscribe
    # Longest first, so a link that begins with another link is linked whole.
    anchors = re.compile("|".join(re.escape(url) for url in sorted(hrefs, key=len, reverse=True)))

    paragraphs = ""
    for paragraph in body.split("\n\n"):
        parts, last = [], 0
        for match in anchors.finditer(paragraph):
            url = match.group(0)
            parts += [
                html.escape(paragraph[last : match.start()]),
                f'<a href="{html.escape(hrefs[url])}">{html.escape(url)}</a>',
            ]
            last = match.end()
        parts.append(html.escape(paragraph[last:]))
        paragraphs += f"<p>{''.join(parts)}</p>"
    if unsubscribe not in body:
        paragraphs += f'<p><a href="{html.escape(unsubscribe)}">Unsubscribe</a></p>'
    return (
        f"<html><body>{paragraphs}"
        f'<img src="{html.escape(base)}/t/o/{message_id}" width="1" height="1" alt="">'
        "</body></html>"
    )


def tracked_text(body: str, base_url: str, message_id: str) -> str:
    """The plain-text part: the body, and an unsubscribe link unless the body has one."""
    unsubscribe = unsubscribe_link(base_url, message_id)
    if unsubscribe in body:
        return f"{body}\n"
    return f"{body}\n\n--\nUnsubscribe: {unsubscribe}\n"
