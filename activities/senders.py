"""Delivering one notification: email over SMTP, or a POST to a webhook (DingTalk robot,
WeCom robot, Slack incoming webhook, or leadflow's own generic JSON).

All I/O, synchronous: it runs in a thread-pool activity. `NotificationSender.send` either
returns a status or raises `DeliveryFailed`, whose `retryable` says whether trying again
later can help (the activity maps `retryable=False` to a non-retryable ApplicationError).
Which targets to deliver to is decided by the pure `domain.recipients.resolve_targets`.

Webhook payload shapes (JSON, UTF-8):

- dingtalk: ``{"msgtype": "markdown", "markdown": {"title": subject, "text": "### subject
  \\n\\nbody"}}`` plus ``"at": {"atUserIds": [id], "isAtAll": false}`` and ``@id`` in the
  text when the target mentions someone. Success is HTTP 200 with ``errcode`` 0.
- wecom: ``{"msgtype": "markdown", "markdown": {"content": "### subject\\nbody"}}``, with
  ``<@id>`` appended when mentioning, cut to WeCom's 4096-byte limit. Success is HTTP 200
  with ``errcode`` 0.
- slack: ``{"text": "subject\\n\\nbody", "blocks": [header(subject), section(body)]}``.
- webhook (generic): ``{"type": "leadflow.notification", "version": 1, "subject",
  "body", "recipient", "lead_id", "message_id", "sent_at"}`` (see `generic_payload`).
  Any 2xx is success.

Every webhook POST carries the delivery's message id twice, as ``Idempotency-Key`` and
as ``X-Leadflow-Delivery``: it is the same on every retry of one delivery (and differs
between recipients and notifications), so a receiver that already has it can drop the
resend.

Lead data in a message is made inert for its channel before it gets here
(`field_escape`): defanged in email and Slack text, defanged and in full-width
characters in DingTalk/WeCom markdown, as it is in the generic JSON.

At most `max_per_destination` deliveries (4 by default) are in flight to one destination
at a time in this process (a webhook's scheme, host and port; the SMTP server): one
more fails at once, retryable after a few seconds, so a slow or black-holed receiver
holds only its own share of the activity threads.
"""

from __future__ import annotations

import logging
import random
import re
import smtplib
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import httpx

from domain.recipients import Target, TargetChannel
from rules.templates import Escape, as_is, inert_markdown, inert_text

log = logging.getLogger(__name__)

DeliveryStatus = Literal["sent", "recorded"]
WEBHOOK_TIMEOUT_SECONDS = 5.0
SMTP_TIMEOUT_SECONDS = 5.0
WECOM_MARKDOWN_MAX_BYTES = 4096
SLACK_HEADER_MAX_CHARS = 150
SLACK_SECTION_MAX_CHARS = 3000
MAX_PER_DESTINATION = 4
# A delivery that finds its destination full asks to be retried after this many seconds,
# up to twice as long, so the retries of a burst do not all arrive at once.
BUSY_RETRY_SECONDS = 5.0

# Robot error codes that mean "busy or rate limited, try again later"; any other non-zero
# errcode (bad token, keyword/sign/IP check failed, malformed message) will fail again.
DINGTALK_RETRYABLE_ERRCODES = frozenset({-1, 130101})  # system busy; over 20 messages/min
WECOM_RETRYABLE_ERRCODES = frozenset({-1, 45009, 45033})  # busy; frequency; concurrency

_EMAIL_ADDRESS = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+")


class DeliveryFailed(Exception):
    """The notification was not delivered. `retryable` is True when the cause is likely
    to pass (connection refused, timeout, 5xx, 429, 4xx SMTP replies, a robot's rate
    limit) and False when retrying cannot help (4xx HTTP other than 408/429, 5xx SMTP
    replies, a malformed address or URL, a robot rejecting the message). `retry_after`
    is the delay in seconds the receiver asked for (HTTP Retry-After), if any. `busy` is
    True when the message never left this process because its destination already had
    all its deliveries in flight (`DestinationSlots`): nothing the receiver said."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        busy: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.busy = busy


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to submit mail, parsed from `LEADFLOW_SMTP_URL`."""

    host: str
    port: int
    security: Literal["plain", "starttls", "tls"]
    username: str | None = None
    password: str | None = None


_SMTP_SCHEMES: dict[str, tuple[Literal["plain", "starttls", "tls"], int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}


def parse_smtp_url(url: str) -> SmtpServer:
    """Parse ``smtp://[user:password@]host[:port]`` (plain, port 25 by default),
    ``smtp+starttls://…`` (STARTTLS, 587) or ``smtps://…`` (implicit TLS, 465); user and
    password are percent-decoded. Raises ValueError for any other URL."""
    parts = urlsplit(url)
    if parts.scheme not in _SMTP_SCHEMES:
        raise ValueError(f"SMTP URL scheme must be one of {', '.join(_SMTP_SCHEMES)}")
    if not parts.hostname:
        raise ValueError("SMTP URL has no host")
    security, default_port = _SMTP_SCHEMES[parts.scheme]
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or default_port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def message_id_header(message_id: str, mail_from: str) -> str:
    """The Message-ID header leadflow sets for `message_id`: ``<message_id@domain>``, the
    domain taken from `mail_from`; an id already in angle brackets is used as it is.
    Replies quote this header (In-Reply-To), so it is how a reply finds its message."""
    if message_id.startswith("<") and message_id.endswith(">"):
        return message_id
    domain = mail_from.rpartition("@")[2].strip(" >") or "localhost"
    return f"<{message_id}@{domain}>"


def dingtalk_payload(subject: str, body: str, *, mention: str | None = None) -> dict[str, Any]:
    """A DingTalk custom-robot markdown message. The title only shows in the chat list,
    so the subject is repeated as a heading; a mention must appear in the text as
    ``@id`` as well as in ``at.atUserIds`` for DingTalk to highlight it."""
    text = f"### {subject}\n\n{body}"
    payload: dict[str, Any] = {"msgtype": "markdown", "markdown": {"title": subject}}
    if mention:
        text += f"\n\n@{mention}"
        payload["at"] = {"atUserIds": [mention], "isAtAll": False}
    payload["markdown"]["text"] = text
    return payload


def _cut_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    return encoded[: max_bytes - 3].decode(errors="ignore") + "..."


def wecom_payload(subject: str, body: str, *, mention: str | None = None) -> dict[str, Any]:
    """A WeCom group-robot markdown message, cut to WeCom's 4096-byte limit (a longer one
    is rejected outright); a mention is ``<@userid>``, kept even when the body is cut."""
    suffix = f"\n<@{mention}>" if mention else ""
    room = WECOM_MARKDOWN_MAX_BYTES - len(suffix.encode())
    content = _cut_utf8(f"### {subject}\n{body}", room) + suffix
    return {"msgtype": "markdown", "markdown": {"content": content}}


_FIELD_ESCAPES: dict[TargetChannel, Escape] = {
    "email": inert_text,
    "slack": inert_text,  # and `slack_payload` escapes `&<>` in the whole text
    "dingtalk": inert_markdown,
    "wecom": inert_markdown,
    "webhook": as_is,
}


def field_escape(channel: TargetChannel) -> Escape:
    """How lead data is written into a message for `channel` (`rules.templates.render`'s
    `escape`): defanged in email and Slack text, defanged and with markdown characters in
    full width for DingTalk/WeCom robots, unchanged in the generic JSON (receivers present
    it themselves)."""
    return _FIELD_ESCAPES[channel]


def _slack_escape(text: str) -> str:
    # Slack reads <...> as links and mentions; a lead's own text must not become one.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(subject: str, body: str) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (the notification and fallback text)
    and blocks with the subject as a header and the body as a section, each cut to
    Slack's block limits."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": subject[:SLACK_HEADER_MAX_CHARS] or "-"},
        }
    ]
    if body:
        section = _slack_escape(body)[:SLACK_SECTION_MAX_CHARS]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": section}})
    return {"text": _slack_escape(f"{subject}\n\n{body}"), "blocks": blocks}


def generic_payload(
    subject: str,
    body: str,
    *,
    recipient: str,
    sent_at: datetime,
    lead_id: str | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """leadflow's own webhook JSON, version 1::

    {"type": "leadflow.notification", "version": 1,
     "subject": str, "body": str,
     "recipient": str,          # the directory id it is for (rep, person or channel)
     "lead_id": str | null,
     "message_id": str | null,  # the same on every retry: receivers drop duplicates by it
     "sent_at": "2024-05-01T08:00:00.123456+00:00"}
    """
    return {
        "type": "leadflow.notification",
        "version": 1,
        "subject": subject,
        "body": body,
        "recipient": recipient,
        "lead_id": lead_id,
        "message_id": message_id,
        "sent_at": sent_at.astimezone(UTC).isoformat(),
    }


def _redacted(url: str) -> str:
    # Robot and Slack webhook URLs carry their secret in the path or query: errors and
    # logs (which end up in workflow histories) name the host only.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" if parts.hostname else "<invalid URL>"


def _webhook_destination(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}"


class DestinationSlots:
    """Counts the deliveries in flight to each destination in this process, at most
    `limit` at a time per destination; thread-safe. A delivery that finds them all taken
    is asked to retry after `busy_retry_seconds` to twice that."""

    def __init__(self, limit: int, busy_retry_seconds: float = BUSY_RETRY_SECONDS) -> None:
        if limit < 1:
            raise ValueError("a destination needs at least one slot")
        self.limit = limit
        self.busy_retry_seconds = busy_retry_seconds
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}

    @contextmanager
    def hold(self, destination: str, where: str) -> Iterator[None]:
        """Hold one of `destination`'s slots for the duration of the block. Raises
        DeliveryFailed (retryable after a few seconds, `busy`) at once when all are taken;
        `where` names the destination in that reason."""
        with self._lock:
            in_flight = self._in_flight.get(destination, 0)
            if in_flight >= self.limit:
                raise DeliveryFailed(
                    f"{where} is busy: {in_flight} deliveries to it are in flight",
                    retryable=True,
                    retry_after=random.uniform(
                        self.busy_retry_seconds, 2 * self.busy_retry_seconds
                    ),
                    busy=True,
                )
            self._in_flight[destination] = in_flight + 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[destination] -= 1
                if not self._in_flight[destination]:
                    del self._in_flight[destination]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


class NotificationSender:
    """Delivers rendered notifications; built once by the composition root.

    `smtp_url` None means no SMTP: email targets are recorded, not sent. `http` is a
    shared client (its connection pool is reused); every request gets a short timeout.
    At most `max_per_destination` deliveries are in flight to one webhook host (scheme,
    host, port) or to the SMTP server at a time; one more fails at once (retryable, `busy`,
    after `busy_retry_seconds` to twice that).
    Raises ValueError at construction for an SMTP URL it cannot use.
    """

    def __init__(
        self,
        smtp_url: str | None,
        mail_from: str,
        http: httpx.Client,
        *,
        timeout: float = WEBHOOK_TIMEOUT_SECONDS,
        max_per_destination: int = MAX_PER_DESTINATION,
        busy_retry_seconds: float = BUSY_RETRY_SECONDS,
    ) -> None:
        self.smtp = parse_smtp_url(smtp_url) if smtp_url else None
        self.mail_from = mail_from
        self.http = http
        self.timeout = timeout
        self.slots = DestinationSlots(max_per_destination, busy_retry_seconds)

    def send(
        self,
        target: Target,
        subject: str,
        body: str,
        *,
        message_id: str | None = None,
        html: str | None = None,
        headers: Mapping[str, str] | None = None,
        lead_id: str | None = None,
    ) -> DeliveryStatus:
        """Deliver one message to `target`; return "sent" once the SMTP server or the
        webhook accepted it, or "recorded" for an email when no SMTP server is configured.

        `message_id` becomes the email's Message-ID (see `message_id_header`), the
        generic webhook's `message_id` and every webhook request's `Idempotency-Key` and
        `X-Leadflow-Delivery` headers; pass the same one on every retry. `html` makes
        the email multipart/alternative with `body` as the text part; `headers` are added
        to the email (List-Unsubscribe on marketing email); webhooks ignore both.
        `lead_id` goes into logs and the generic payload. Raises DeliveryFailed.
        """
        try:
            if target.channel == "email":
                if self.smtp is None:
                    log.info("lead %s: email to %s recorded (no SMTP)", lead_id, target.recipient)
                    return "recorded"
                message = self._email(target, subject, body, message_id, html, headers)
                self._send_email(self.smtp, target, message)
            else:
                payload = self._payload(target, subject, body, message_id, lead_id)
                self._post(target, payload, message_id)
        except DeliveryFailed as exc:
            log.warning(
                "lead %s: %s notification to %s failed (retryable=%s): %s",
                lead_id,
                target.channel,
                target.recipient,
                exc.retryable,
                exc.reason,
            )
            raise
        log.info("lead %s: %s notification to %s sent", lead_id, target.channel, target.recipient)
        return "sent"

    def _payload(
        self,
        target: Target,
        subject: str,
        body: str,
        message_id: str | None,
        lead_id: str | None,
    ) -> dict[str, Any]:
        match target.channel:
            case "dingtalk":
                return dingtalk_payload(subject, body, mention=target.mention)
            case "wecom":
                return wecom_payload(subject, body, mention=target.mention)
            case "slack":
                return slack_payload(subject, body)
            case _:
                return generic_payload(
                    subject,
                    body,
                    recipient=target.recipient,
                    sent_at=datetime.now(UTC),
                    lead_id=lead_id,
                    message_id=message_id,
                )

    def _email(
        self,
        target: Target,
        subject: str,
        body: str,
        message_id: str | None,
        html: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> EmailMessage:
        if not _EMAIL_ADDRESS.fullmatch(target.address):
            raise DeliveryFailed(f"not an email address: {target.address!r}", retryable=False)
        message = EmailMessage()
        message["From"] = self.mail_from
        message["To"] = target.address
        # A header may not contain line breaks; a template author's stray newline in a
        # subject should not make the notification undeliverable.
        message["Subject"] = " ".join(subject.split())
        message["Date"] = format_datetime(datetime.now(UTC))
        if message_id is not None:
            message["Message-ID"] = message_id_header(message_id, self.mail_from)
        for name, value in (headers or {}).items():
            message[name] = value
        message.set_content(body)
        if html is not None:
            message.add_alternative(html, subtype="html")
        return message

    def _send_email(self, server: SmtpServer, target: Target, message: EmailMessage) -> None:
        where = f"SMTP {server.host}:{server.port}"
        with self.slots.hold(f"smtp://{server.host}:{server.port}", where):
            self._submit(server, target, message, where)

    def _submit(
        self, server: SmtpServer, target: Target, message: EmailMessage, where: str
    ) -> None:
        try:
            context = ssl.create_default_context()
            smtp: smtplib.SMTP
            if server.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    server.host, server.port, timeout=SMTP_TIMEOUT_SECONDS, context=context
                )
            else:
                smtp = smtplib.SMTP(server.host, server.port, timeout=SMTP_TIMEOUT_SECONDS)
            with smtp:
                if server.security == "starttls":
                    smtp.starttls(context=context)
                if server.username is not None:
                    smtp.login(server.username, server.password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, refusal = next(iter(exc.recipients.values()))
            raise DeliveryFailed(
                f"{where} refused {target.address}: {code} {refusal.decode(errors='replace')}",
                retryable=400 <= code < 500,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            # 4xx replies are transient by definition (RFC 5321 §4.2.1), 5xx permanent.
            reply = exc.smtp_error
            text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
            raise DeliveryFailed(
                f"{where} answered {exc.smtp_code} {text}",
                retryable=400 <= exc.smtp_code < 500,
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryFailed(f"{where}: {exc}", retryable=False) from exc
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryFailed(f"{where}: {exc.verify_message}", retryable=False) from exc
        except (OSError, smtplib.SMTPException) as exc:
            # Connection refused or reset, timeouts, DNS failures, a dropped connection.
            raise DeliveryFailed(f"{where}: {exc!r}", retryable=True) from exc

    def _post(self, target: Target, payload: dict[str, Any], message_id: str | None) -> None:
        where = _redacted(target.address)
        if urlsplit(target.address).scheme not in ("http", "https"):
            raise DeliveryFailed(f"not an http(s) URL: {where}", retryable=False)
        try:
            destination = _webhook_destination(target.address)
        except ValueError as exc:  # e.g. a port that is no number
            raise DeliveryFailed(f"bad webhook URL {where}: {exc}", retryable=False) from exc
        headers = (
            {"Idempotency-Key": message_id, "X-Leadflow-Delivery": message_id}
            if message_id is not None
            else {}
        )
        try:
            with self.slots.hold(destination, where):
                response = self.http.post(
                    target.address, json=payload, headers=headers, timeout=self.timeout
                )
        except httpx.TimeoutException as exc:
            raise DeliveryFailed(f"{where} timed out: {exc!r}", retryable=True) from exc
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise DeliveryFailed(f"bad webhook URL {where}: {exc}", retryable=False) from exc
        except httpx.TransportError as exc:
            raise DeliveryFailed(f"{where} unreachable: {exc!r}", retryable=True) from exc

        status = response.status_code
        if not 200 <= status < 300:
            raise DeliveryFailed(
                f"{where} answered HTTP {status}: {response.text[:200]}",
                retryable=status in (408, 429) or status >= 500,
                retry_after=_retry_after(response),
            )
        if target.channel in ("dingtalk", "wecom"):
            self._check_robot_answer(target.channel, where, response)

    def _check_robot_answer(self, kind: str, where: str, response: httpx.Response) -> None:
        # Robots answer HTTP 200 even when they drop the message; the verdict is `errcode`.
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("errcode"), int):
            raise DeliveryFailed(
                f"{where} is not a {kind} robot (answer: {response.text[:200]!r})",
                retryable=False,
            )
        errcode: int = answer["errcode"]
        if errcode == 0:
            return
        retryable_codes = (
            DINGTALK_RETRYABLE_ERRCODES if kind == "dingtalk" else WECOM_RETRYABLE_ERRCODES
        )
        raise DeliveryFailed(
            f"{kind} robot at {where} refused the message: errcode {errcode} "
            f"{answer.get('errmsg', '')}",
            retryable=errcode in retryable_codes,
        )
