"""Delivering notifications to a real SMTP server (aiosmtpd) and a real HTTP webhook
receiver started by each test, on free ports."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from support import free_port

from activities.senders import (
    DeliveryFailed,
    NotificationSender,
    SmtpServer,
    parse_smtp_url,
)
from domain.recipients import Target, TargetChannel
from leadflow.settings import Settings

if TYPE_CHECKING:
    from conftest import MailServer, Receiver, RunPipeline

MAIL_FROM = "Leadflow <leadflow@crm.example.com>"
ALICE = Target("email", "alice@example.com", "rep-a")
NOW = datetime.now(UTC)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    # No proxy from the environment: the receiver is on this machine.
    with httpx.Client(trust_env=False) as client:
        yield client


def failure(sender: NotificationSender, target: Target, **kwargs: Any) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as caught:
        sender.send(target, "Subject", "Body", **kwargs)
    return caught.value


# --- email --------------------------------------------------------------------------------


def test_email_arrives_with_subject_body_and_headers(smtp: MailServer, http: httpx.Client) -> None:
    sender = NotificationSender(smtp.url, MAIL_FROM, http)
    status = sender.send(
        ALICE,
        "First follow-up overdue: Ann Lee (Acme)",
        "Lead Ann Lee from Acme has no follow-up yet.",
        message_id="9f1c2b7e",
    )
    assert status == "sent"
    [envelope] = smtp.handler.envelopes
    assert envelope.mail_from == "leadflow@crm.example.com"
    assert envelope.rcpt_tos == ["alice@example.com"]
    message = smtp.handler.message()
    assert message["Subject"] == "First follow-up overdue: Ann Lee (Acme)"
    assert message["To"] == "alice@example.com"
    assert message["From"] == MAIL_FROM
    assert message["Message-ID"] == "<9f1c2b7e@crm.example.com>"
    assert message["Date"] is not None
    body = message.get_body(("plain",))
    assert body is not None
    assert body.get_content().strip() == "Lead Ann Lee from Acme has no follow-up yet."


def test_html_email_is_multipart_alternative_with_both_parts(
    smtp: MailServer, http: httpx.Client
) -> None:
    sender = NotificationSender(smtp.url, MAIL_FROM, http)
    html = '<p>Hi Ann</p><img src="https://crm.example.com/t/o/m-2">'
    sender.send(ALICE, "Welcome, Ann", "Hi Ann", message_id="<m-2@crm.example.com>", html=html)
    message = smtp.handler.message()
    assert message.get_content_type() == "multipart/alternative"
    assert message["Message-ID"] == "<m-2@crm.example.com>"
    plain, rich = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and rich is not None
    assert plain.get_content().strip() == "Hi Ann"
    assert rich.get_content().strip() == html


def test_a_line_break_in_a_subject_does_not_stop_the_email(
    smtp: MailServer, http: httpx.Client
) -> None:
    sender = NotificationSender(smtp.url, MAIL_FROM, http)
    sender.send(ALICE, "Lead Ann\r\nBcc: everyone@example.com", "Body")
    assert smtp.handler.envelopes[0].rcpt_tos == ["alice@example.com"]
    assert smtp.handler.message()["Subject"] == "Lead Ann Bcc: everyone@example.com"


def test_without_smtp_an_email_is_recorded_and_nothing_is_sent(
    smtp: MailServer, http: httpx.Client, receiver: Receiver
) -> None:
    sender = NotificationSender(None, MAIL_FROM, http)
    assert sender.send(ALICE, "Subject", "Body", message_id="m-3") == "recorded"
    assert smtp.handler.envelopes == []
    # Webhooks do not depend on SMTP.
    assert sender.send(Target("webhook", receiver.base + "/hook", "ch"), "S", "B") == "sent"


def test_smtp_credentials_in_the_url_are_used_to_log_in(
    smtp: MailServer, http: httpx.Client
) -> None:
    url = smtp.url.replace("smtp://", "smtp://mailer:p%40ss%3Aword@")
    NotificationSender(url, MAIL_FROM, http).send(ALICE, "Subject", "Body")
    assert smtp.handler.logins == [("mailer", "p@ss:word")]
    assert len(smtp.handler.envelopes) == 1


def test_smtp_urls_parse_with_their_default_ports(http: httpx.Client) -> None:
    assert parse_smtp_url("smtp://127.0.0.1:1025") == SmtpServer("127.0.0.1", 1025, "plain")
    assert parse_smtp_url("smtps://u:p@mail.example.com") == SmtpServer(
        "mail.example.com", 465, "tls", "u", "p"
    )
    assert parse_smtp_url("smtp+starttls://mail.example.com").port == 587
    with pytest.raises(ValueError, match="scheme"):
        NotificationSender("http://mail.example.com", MAIL_FROM, http)


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [("550 5.1.1 No such user", False), ("450 4.2.1 Mailbox busy, try later", True)],
)
def test_a_refused_recipient_is_retryable_only_for_a_4xx_reply(
    smtp: MailServer, http: httpx.Client, reply: str, retryable: bool
) -> None:
    smtp.handler.refuse["alice@example.com"] = reply
    error = failure(NotificationSender(smtp.url, MAIL_FROM, http), ALICE)
    assert error.retryable is retryable
    assert reply.split()[0] in error.reason
    assert smtp.handler.envelopes == []


def test_an_smtp_server_that_is_down_is_retryable(http: httpx.Client) -> None:
    sender = NotificationSender(f"smtp://127.0.0.1:{free_port()}", MAIL_FROM, http)
    assert failure(sender, ALICE).retryable is True


def test_a_malformed_address_is_not_retryable_and_not_sent(
    smtp: MailServer, http: httpx.Client
) -> None:
    sender = NotificationSender(smtp.url, MAIL_FROM, http)
    error = failure(sender, Target("email", "alice at example.com", "rep-a"))
    assert error.retryable is False
    assert smtp.handler.envelopes == []


# --- webhooks -----------------------------------------------------------------------------


SUBJECT = "Lead reclaimed to the pool: Ann Lee (Acme)"
BODY = "Lead Ann Lee from Acme had no follow-up.\n\nhttps://crm.example.com/leads/1 <x> & y"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "dingtalk",
            {
                "msgtype": "markdown",
                "markdown": {"title": SUBJECT, "text": f"### {SUBJECT}\n\n{BODY}"},
            },
        ),
        ("wecom", {"msgtype": "markdown", "markdown": {"content": f"### {SUBJECT}\n{BODY}"}}),
        (
            "slack",
            {
                "text": f"{SUBJECT}\n\n" + BODY.replace("<x> & y", "&lt;x&gt; &amp; y"),
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": SUBJECT}},
                    {
                        "type": "section",
                        "text": {
                            "type": "mrkdwn",
                            "text": BODY.replace("<x> & y", "&lt;x&gt; &amp; y"),
                        },
                    },
                ],
            },
        ),
    ],
)
def test_each_robot_kind_posts_its_documented_payload(
    receiver: Receiver, http: httpx.Client, kind: TargetChannel, expected: dict[str, Any]
) -> None:
    sender = NotificationSender(None, MAIL_FROM, http)
    target = Target(kind, f"{receiver.base}/{kind}?access_token=t", "east-robot")
    if kind == "slack":
        receiver.answer("/slack", 200, b"ok")
    assert sender.send(target, SUBJECT, BODY) == "sent"
    [request] = receiver.requests
    assert request.path == f"/{kind}?access_token=t"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == expected


def test_generic_webhook_posts_leadflows_own_json(receiver: Receiver, http: httpx.Client) -> None:
    receiver.answer("/hook", 204, b"")
    sender = NotificationSender(None, MAIL_FROM, http)
    target = Target("webhook", receiver.base + "/hook", "mgr-east")
    assert sender.send(target, SUBJECT, BODY, message_id="n-7", lead_id="lead-1") == "sent"
    payload = receiver.requests[0].json()
    sent_at = datetime.fromisoformat(payload.pop("sent_at"))
    assert sent_at.utcoffset() is not None
    assert payload == {
        "type": "leadflow.notification",
        "version": 1,
        "subject": SUBJECT,
        "body": BODY,
        "recipient": "mgr-east",
        "lead_id": "lead-1",
        "message_id": "n-7",
    }


def test_a_person_on_a_robot_channel_is_mentioned(receiver: Receiver, http: httpx.Client) -> None:
    sender = NotificationSender(None, MAIL_FROM, http)
    ding = Target("dingtalk", receiver.base + "/dingtalk", "mgr-east", mention="ding-mei")
    wecom = Target("wecom", receiver.base + "/wecom", "mgr-east", mention="wecom-mei")
    sender.send(ding, "S", "B")
    sender.send(wecom, "S", "B")
    ding_payload, wecom_payload = (r.json() for r in receiver.requests)
    assert ding_payload["at"] == {"atUserIds": ["ding-mei"], "isAtAll": False}
    assert ding_payload["markdown"]["text"].endswith("@ding-mei")
    assert wecom_payload["markdown"]["content"].endswith("<@wecom-mei>")


def test_a_long_wecom_message_is_cut_to_the_robots_limit(
    receiver: Receiver, http: httpx.Client
) -> None:
    sender = NotificationSender(None, MAIL_FROM, http)
    target = Target("wecom", receiver.base + "/wecom", "west-robot", mention="wecom-mei")
    sender.send(target, "线索", "跟进" * 2000)
    content = receiver.requests[0].json()["markdown"]["content"]
    assert len(content.encode()) <= 4096
    assert content.startswith("### 线索\n跟进")
    assert content.endswith("...\n<@wecom-mei>")


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (400, False), (404, False)]
)
def test_http_errors_are_retryable_for_5xx_and_429_only(
    receiver: Receiver, http: httpx.Client, status: int, retryable: bool
) -> None:
    receiver.answer("/hook", status, {"error": "nope"})
    sender = NotificationSender(None, MAIL_FROM, http)
    error = failure(sender, Target("webhook", receiver.base + "/hook", "ch"))
    assert error.retryable is retryable
    assert f"HTTP {status}" in error.reason


def test_a_rate_limited_slack_webhook_says_when_to_retry(
    receiver: Receiver, http: httpx.Client
) -> None:
    receiver.answer("/slack", 429, b"rate_limited", **{"Retry-After": "30"})
    sender = NotificationSender(None, MAIL_FROM, http)
    error = failure(sender, Target("slack", receiver.base + "/slack", "ch"))
    assert (error.retryable, error.retry_after) == (True, 30.0)


def test_a_webhook_that_is_down_or_hangs_is_retryable(
    receiver: Receiver, http: httpx.Client
) -> None:
    sender = NotificationSender(None, MAIL_FROM, http, timeout=0.3)
    refused = failure(sender, Target("webhook", f"http://127.0.0.1:{free_port()}/hook", "ch"))
    assert refused.retryable is True
    hung = failure(sender, Target("webhook", receiver.base + "/slow", "ch"))
    assert hung.retryable is True
    assert "timed out" in hung.reason


def test_a_malformed_webhook_url_is_not_retryable(http: httpx.Client) -> None:
    sender = NotificationSender(None, MAIL_FROM, http)
    assert failure(sender, Target("webhook", "ftp://example.com/hook", "ch")).retryable is False


@pytest.mark.parametrize(
    ("kind", "errcode", "retryable"),
    [
        ("dingtalk", 310000, False),  # keyword / signature / IP check failed
        ("dingtalk", 130101, True),  # over 20 messages a minute
        ("wecom", 93000, False),  # invalid webhook key
        ("wecom", 45009, True),  # frequency limit
    ],
)
def test_a_robot_refusing_with_http_200_is_a_failure(
    receiver: Receiver, http: httpx.Client, kind: TargetChannel, errcode: int, retryable: bool
) -> None:
    receiver.answer(f"/{kind}", 200, {"errcode": errcode, "errmsg": "refused"})
    sender = NotificationSender(None, MAIL_FROM, http)
    target = Target(kind, f"{receiver.base}/{kind}?access_token=SECRET", "east-robot")
    error = failure(sender, target)
    assert error.retryable is retryable
    assert f"errcode {errcode}" in error.reason
    # Webhook URLs carry their credential: it stays out of errors (and so of histories).
    assert "SECRET" not in error.reason


def test_a_robot_url_that_answers_like_no_robot_is_a_failure(
    receiver: Receiver, http: httpx.Client
) -> None:
    receiver.answer("/dingtalk", 200, b"<html>login</html>")
    sender = NotificationSender(None, MAIL_FROM, http)
    error = failure(sender, Target("dingtalk", receiver.base + "/dingtalk", "east-robot"))
    assert error.retryable is False


# --- delivery ids and slow receivers --------------------------------------------------------


def test_every_attempt_of_a_webhook_delivery_carries_its_delivery_id(
    receiver: Receiver, http: httpx.Client
) -> None:
    receiver.failures["/hook"] = 1
    sender = NotificationSender(None, MAIL_FROM, http)
    target = Target("webhook", receiver.base + "/hook", "mgr-east")
    assert failure(sender, target, message_id="m-9").retryable is True
    # The activity retries with the same message id; so do we.
    assert sender.send(target, "Subject", "Body", message_id="m-9") == "sent"
    robot = Target("dingtalk", receiver.base + "/dingtalk", "east-robot")
    sender.send(robot, "Subject", "Body", message_id="m-10")
    assert [
        (r.headers["Idempotency-Key"], r.headers["X-Leadflow-Delivery"]) for r in receiver.requests
    ] == [("m-9", "m-9"), ("m-9", "m-9"), ("m-10", "m-10")]


def test_a_slow_receiver_holds_only_its_own_share_of_the_senders(
    receiver: Receiver, other_receiver: Receiver, http: httpx.Client
) -> None:
    sender = NotificationSender(None, MAIL_FROM, http, timeout=10)
    slow = Target("webhook", receiver.base + "/slow", "ch")
    with ThreadPoolExecutor(max_workers=4) as pool:
        hanging = [pool.submit(sender.send, slow, "S", "B", message_id=f"m-{n}") for n in range(4)]
        deadline = time.monotonic() + 5
        while len(receiver.requests) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(receiver.requests) == 4

        started = time.monotonic()
        busy = failure(sender, slow)
        # Fails at once instead of waiting out the 10 s timeout, and asks to be retried.
        assert time.monotonic() - started < 2
        assert busy.retryable is True and "busy" in busy.reason
        assert busy.retry_after is not None and 0 < busy.retry_after <= 10
        # The destination is the receiver (scheme, host, port), whatever the path.
        assert "busy" in failure(sender, Target("webhook", receiver.base + "/hook", "ch")).reason
        assert len(receiver.requests) == 4

        elsewhere = Target("webhook", other_receiver.base + "/hook", "ch")
        assert sender.send(elsewhere, "S", "B") == "sent"

        receiver.release.set()
        assert [future.result(timeout=10) for future in hanging] == ["sent"] * 4
    # Finished deliveries give their slots back.
    assert sender.send(Target("webhook", receiver.base + "/hook", "ch"), "S", "B") == "sent"


def test_all_email_goes_to_one_destination_the_smtp_server(
    smtp: MailServer, receiver: Receiver, http: httpx.Client
) -> None:
    smtp.handler.hold = True
    sender = NotificationSender(smtp.url, MAIL_FROM, http, max_per_destination=1)
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(sender.send, ALICE, "S", "B")
        deadline = time.monotonic() + 5
        while not smtp.handler.held and time.monotonic() < deadline:
            time.sleep(0.01)
        bob = Target("email", "bob@other.example", "rep-b")
        busy = failure(sender, bob)
        assert busy.retryable is True and "busy" in busy.reason
        # Webhooks are other destinations.
        assert sender.send(Target("webhook", receiver.base + "/hook", "ch"), "S", "B") == "sent"
        smtp.handler.release.set()
        assert first.result(timeout=10) == "sent"
    assert sender.send(bob, "S", "B") == "sent"
    assert [e.rcpt_tos for e in smtp.handler.envelopes] == [
        ["alice@example.com"],
        ["bob@other.example"],
    ]


def test_a_timed_out_delivery_gives_its_slot_back(receiver: Receiver, http: httpx.Client) -> None:
    sender = NotificationSender(None, MAIL_FROM, http, timeout=0.2, max_per_destination=1)
    assert "timed out" in failure(sender, Target("webhook", receiver.base + "/slow", "ch")).reason
    assert sender.send(Target("webhook", receiver.base + "/hook", "ch"), "S", "B") == "sent"


# --- lead data in rep notifications, through the activity -----------------------------------


NEW_LEAD_RULESET: dict[str, Any] = {
    "name": "tell every channel",
    "rules": [
        {
            "id": "assign",
            "when": ["lead.captured"],
            "conditions": {"all": []},
            "actions": [
                {"name": "assign_to_rep", "params": {"rep": "rep-a"}},
                {"name": "notify", "params": {"to": "owner", "template": "new-lead"}},
                *(
                    {
                        "name": "notify",
                        "params": {"to": "team", "template": "new-lead", "channel": channel},
                    }
                    for channel in ("east-ding", "east-wecom", "east-slack", "east-hook")
                ),
            ],
        }
    ],
    "templates": {
        "new-lead": {
            "subject": "New lead: {name}",
            "body": "**{name}** from {company}: https://crm.example.com/leads/{lead_id}",
        }
    },
}


def channels_directory(base: str) -> dict[str, Any]:
    channels = {"east-ding": "dingtalk", "east-wecom": "wecom", "east-slack": "slack"}
    return {
        "teams": [
            {"id": "east", "name": "East", "manager": "rep-a", "director": "rep-a"},
        ],
        "reps": [
            {"id": "rep-a", "name": "A", "email": "a@example.com", "team": "east", "capacity": 9}
        ],
        "channels": [
            *({"id": id, "kind": kind, "url": f"{base}/{kind}"} for id, kind in channels.items()),
            {"id": "east-hook", "kind": "webhook", "url": f"{base}/hook"},
        ],
    }


async def test_lead_data_is_inert_in_every_channels_message(
    temporal_settings: Settings, run_pipeline: RunPipeline, smtp: MailServer, receiver: Receiver
) -> None:
    settings = temporal_settings.model_copy(update={"smtp_url": smtp.url})
    name = "[click](https://evil.example/x) <@all>"
    company = "# Boss *Inc*"
    async with run_pipeline(settings) as pipeline:
        rulebook = pipeline.store.rulebook
        rulebook.replace_directory(channels_directory(receiver.base), "test", NOW)
        rulebook.activate(rulebook.publish(NEW_LEAD_RULESET, "test", NOW), "test", NOW)
        lead = pipeline.capture("eve@x.io", name=name, company=company)
        await pipeline.until(
            lambda: len(receiver.requests) == 4 and len(smtp.handler.envelopes) == 1,
            "the owner emailed and four channels told",
        )
    link = f"https://crm.example.com/leads/{lead}"
    by_path = {r.path: r.json() for r in receiver.requests}

    robot_name = "［click］（hxxps://evil［.］example/x） ＜@all＞"
    robot_body = f"**{robot_name}** from ＃ Boss ＊Inc＊: {link}"
    assert by_path["/dingtalk"]["markdown"]["text"] == f"### New lead: {robot_name}\n\n{robot_body}"
    assert by_path["/wecom"]["markdown"]["content"] == f"### New lead: {robot_name}\n{robot_body}"

    slack = by_path["/slack"]["blocks"][1]["text"]["text"]
    assert slack == (
        f"**[click](hxxps://evil[.]example/x) &lt;@all&gt;** from # Boss *Inc*: {link}"
    )

    generic = by_path["/hook"]
    assert (generic["subject"], generic["body"]) == (
        f"New lead: {name}",
        f"**{name}** from {company}: {link}",
    )

    email = smtp.handler.message()
    assert email["Subject"] == "New lead: [click](hxxps://evil[.]example/x) <@all>"
    text = email.get_body(("plain",))
    assert text is not None and "evil.example" not in text.get_content()
    assert link in text.get_content()
