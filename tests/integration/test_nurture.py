"""Nurture sequences for real: steps sent by a real SMTP server (aiosmtpd) at seconds-long
waits, tracked opens and clicks, unsubscribe, and exit on the sequence's events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from uuid import UUID

from fastapi.testclient import TestClient

from api.app import create_app
from domain.tracking import tracked_message_id
from leadflow.settings import Settings

if TYPE_CHECKING:
    from conftest import MailServer, Pipeline, RunPipeline

NOW = datetime.now(UTC)
GUIDE = "https://example.com/guide?ref=nurture"

RULESET: dict[str, Any] = {
    "name": "quick nurture",
    "rules": [
        {
            "id": "low-intent",
            "when": ["lead.captured"],
            "priority": 10,
            "conditions": {"all": [{"name": "intent", "operator": "equal_to", "value": "low"}]},
            "actions": [{"name": "enroll_in_sequence", "params": {"sequence": "drip"}}],
        },
    ],
    "sequences": {
        "drip": {
            "steps": [
                {"wait": "PT0S", "template": "welcome"},
                {"wait": "PT2S", "template": "article-1"},
                {"wait": "PT2S", "template": "article-2"},
            ]
        }
    },
    "templates": {
        "article-1": {"subject": "{name}, read this", "body": f"Hello {{name}}, our guide: {GUIDE}"}
    },
}


def install(pipeline: Pipeline) -> None:
    rulebook = pipeline.store.rulebook
    rulebook.install_defaults(NOW)
    rulebook.activate(rulebook.publish(RULESET, "test", NOW), "test", NOW)


def of_type(pipeline: Pipeline, lead: UUID, event_type: str) -> list[dict[str, Any]]:
    return [e.data for e in pipeline.store.event_log.lead_events(lead) if e.type == event_type]


async def test_a_sequence_sends_each_step_then_ends(
    temporal_settings: Settings, run_pipeline: RunPipeline, smtp: MailServer
) -> None:
    settings = temporal_settings.model_copy(update={"smtp_url": smtp.url})
    async with run_pipeline(settings) as pipeline:
        install(pipeline)
        lead = pipeline.capture("ann@x.io", name="Ann", intent="low")
        # The last step's email is delivered after the sequence is marked completed.
        await pipeline.until(
            lambda: len(of_type(pipeline, lead, "nurture.email_sent")) == 3, "3 emails"
        )
        sent = of_type(pipeline, lead, "nurture.email_sent")
        assert [(s["template"], s["step"]) for s in sent] == [
            ("welcome", 0),
            ("article-1", 1),
            ("article-2", 2),
        ]
        assert of_type(pipeline, lead, "nurture.exited") == [
            {"sequence": "drip", "reason": "completed"}
        ]
        subjects = [smtp.handler.message(i)["Subject"] for i in range(3)]
        # The built-in welcome in LEADFLOW_LOCALE's Chinese (the lead names no `locale`);
        # the ruleset's own template as its author wrote it.
        assert subjects[:2] == ["Ann，您好！感谢关注", "Ann, read this"]
        assert {tuple(e.rcpt_tos) for e in smtp.handler.envelopes} == {("ann@x.io",)}
        # Each email carries its message id, a tracked link and an unsubscribe link.
        article = smtp.handler.message(1)
        assert sent[1]["message_id"] in article["Message-ID"]
        html = article.get_body(("html",)).get_content()
        assert (
            f"/t/c/{sent[1]['message_id']}?u=" in html and f"/t/o/{sent[1]['message_id']}" in html
        )
        text = article.get_body(("plain",)).get_content()
        assert f"/t/u/{sent[1]['message_id']}" in text


async def test_opens_clicks_and_unsubscribe_are_tracked_and_stop_the_emails(
    temporal_settings: Settings, run_pipeline: RunPipeline, smtp: MailServer
) -> None:
    settings = temporal_settings.model_copy(update={"smtp_url": smtp.url})
    async with run_pipeline(settings) as pipeline:
        install(pipeline)
        lead = pipeline.capture("bo@x.io", name="Bo", intent="low")
        await pipeline.until(
            lambda: len(of_type(pipeline, lead, "nurture.email_sent")) == 2, "2 emails"
        )
        message_id = of_type(pipeline, lead, "nurture.email_sent")[1]["message_id"]

        with TestClient(create_app(settings)) as web:
            pixel = web.get(f"/t/o/{message_id}")
            assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
            web.get(f"/t/o/{message_id}")  # a second open is the same fact
            click = web.get(f"/t/c/{message_id}", params={"u": GUIDE}, follow_redirects=False)
            assert click.status_code == 302 and click.headers["location"] == GUIDE
            elsewhere = web.get(
                f"/t/c/{message_id}", params={"u": "https://evil.example"}, follow_redirects=False
            )
            assert elsewhere.status_code == 404
            assert web.get("/t/o/not-a-message").status_code == 404
            page = web.post(f"/t/u/{message_id}", headers={"Accept-Language": "en"})
            assert page.status_code == 200 and "unsubscribed" in page.text

        assert of_type(pipeline, lead, "email.opened") == [{"message_id": message_id}]
        assert of_type(pipeline, lead, "email.clicked") == [
            {"message_id": message_id, "url": GUIDE}
        ]
        await pipeline.until(
            lambda: of_type(pipeline, lead, "nurture.exited"), "the sequence exited"
        )
        # Ended by the unsubscribe itself, or, when the third step came due before the
        # unsubscribe was delivered to the workflow, by that step finding it unsubscribed.
        [exited] = of_type(pipeline, lead, "nurture.exited")
        assert exited["sequence"] == "drip"
        assert exited["reason"] in ("lead.unsubscribed", "do_not_contact")
        await asyncio.sleep(3)  # past when the third step was due
        assert len(smtp.handler.envelopes) == 2
        assert len(of_type(pipeline, lead, "nurture.email_sent")) == 2


class Hrefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value for name, value in attrs if name == "href" and value is not None]


def hrefs(html: str) -> list[str]:
    parser = Hrefs()
    parser.feed(html)
    return parser.hrefs


async def test_a_lead_named_with_a_url_gets_no_link_to_it_and_no_redirect(
    temporal_settings: Settings, run_pipeline: RunPipeline, smtp: MailServer
) -> None:
    settings = temporal_settings.model_copy(update={"smtp_url": smtp.url})
    evil = "https://evil.example/login"
    async with run_pipeline(settings) as pipeline:
        install(pipeline)
        lead = pipeline.capture(
            "eve@x.io", name=evil, company="[click](https://evil.example/x)", intent="low"
        )
        await pipeline.until(
            lambda: len(of_type(pipeline, lead, "nurture.email_sent")) == 2, "2 emails"
        )
        base = settings.public_url.rstrip("/")
        for index, sent in enumerate(of_type(pipeline, lead, "nurture.email_sent")):
            message_id = sent["message_id"]
            unsubscribe = f"{base}/t/u/{message_id}"
            email = smtp.handler.message(index)
            text = email.get_body(("plain",)).get_content()
            html = email.get_body(("html",)).get_content()
            assert "hxxps://evil[.]example/login" in email["Subject"] + text
            assert "evil.example" not in email["Subject"] + text + html
            # The template's own links are tracked; the unsubscribe link appears once.
            authors = [GUIDE] if sent["template"] == "article-1" else []
            tracked = [f"{base}/t/c/{message_id}?u={quote(url, safe='')}" for url in authors]
            assert hrefs(html) == [*tracked, unsubscribe]
            assert text.count(unsubscribe) == 1
            stored = pipeline.store.event_log.repository.get(tracked_message_id(message_id))
            assert stored.links == authors

        with TestClient(create_app(settings)) as web:
            article = of_type(pipeline, lead, "nurture.email_sent")[1]["message_id"]
            for url in (evil, "https://evil.example/x"):
                click = web.get(f"/t/c/{article}", params={"u": url}, follow_redirects=False)
                assert click.status_code == 404
            click = web.get(f"/t/c/{article}", params={"u": GUIDE}, follow_redirects=False)
            assert click.status_code == 302 and click.headers["location"] == GUIDE


NO_OPEN: dict[str, Any] = {
    "name": "tag who did not open",
    "timers": [
        {
            "id": "no_open",
            "start_on": ["nurture.email_sent"],
            "cancel_on": ["email.opened"],
            "after": "PT4S",
        }
    ],
    "rules": [
        RULESET["rules"][0],
        {
            "id": "tag-no-open",
            "when": ["timer.no_open"],
            "conditions": {"all": []},
            "actions": [{"name": "add_tag", "params": {"tag": "no-open"}}],
        },
    ],
    "sequences": {"drip": {"steps": [{"wait": "PT0S", "template": "welcome"}]}},
}


async def test_a_timer_started_by_the_email_tags_the_leads_that_did_not_open_it(
    temporal_settings: Settings, run_pipeline: RunPipeline
) -> None:
    """ "Tag leads that did not open within N days of the email": the timer starts when the
    delivery records `nurture.email_sent`, after the decision step, and an open stops it."""
    async with run_pipeline(temporal_settings) as pipeline:
        rulebook = pipeline.store.rulebook
        rulebook.install_defaults(NOW)
        rulebook.activate(rulebook.publish(NO_OPEN, "test", NOW), "test", NOW)
        silent = pipeline.capture("silent@x.io", intent="low")
        reader = pipeline.capture("reader@x.io", intent="low")
        await pipeline.until(
            lambda: bool(of_type(pipeline, reader, "nurture.email_sent")), "the email sent"
        )
        [sent] = of_type(pipeline, reader, "nurture.email_sent")
        pipeline.post(
            {
                "type": "email.opened",
                "lead_id": str(reader),
                "data": {"message_id": sent["message_id"]},
            }
        )

        tagged = await pipeline.eventually(silent, lambda s: "no-open" in s.tags)
        assert tagged.tags == ("no-open",)
        await asyncio.sleep(6)  # past the reader's timer, had it not been stopped
        assert "no-open" not in (await pipeline.state(reader)).tags
