"""Consent for real (docs/consent.md): a nurture email received by a real SMTP server
(aiosmtpd) carries List-Unsubscribe and List-Unsubscribe-Post; its URL unsubscribes on a
POST, once, and a GET alone changes nothing; hard and soft bounces; an admin's
do-not-contact stops a running sequence before its next step (real Temporal, seconds-long
waits); the delivery checks the flag again before sending; a phone-only lead gets no email
and the log says why; hostile input to the new routes is refused with nothing written."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi.testclient import TestClient
from temporalio.testing import ActivityEnvironment

from activities.notifications import NotificationActivities
from activities.senders import NotificationSender
from api.app import create_app
from domain.consent import do_not_contact_event
from domain.events import parse_event
from domain.state import Decision
from domain.tracking import TrackedMessage
from leadflow.bootstrap import Store
from leadflow.settings import Settings
from replay.diff import verify
from workflows.contracts import SendInput

if TYPE_CHECKING:
    from conftest import MailServer, RunPipeline

NOW = datetime.now(UTC)
ADMIN = {"Authorization": "Bearer lf_test_admin"}

RULESET: dict[str, Any] = {
    "name": "consent nurture",
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
                {"wait": "PT3S", "template": "article-1"},
                {"wait": "PT3S", "template": "article-2"},
            ]
        }
    },
}


def install(store: Store) -> None:
    store.rulebook.install_defaults(NOW)
    store.rulebook.activate(store.rulebook.publish(RULESET, "test", NOW), "test", NOW)


def of_type(store: Store, lead: UUID, event_type: str) -> list[dict[str, Any]]:
    return [e.data for e in store.event_log.lead_events(lead) if e.type == event_type]


def stream(store: Store, lead: UUID) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, e.data) for e in store.event_log.lead_events(lead)]


async def test_a_nurture_email_carries_one_click_unsubscribe_and_only_a_post_uses_it(
    temporal_settings: Settings, run_pipeline: RunPipeline, smtp: MailServer
) -> None:
    settings = temporal_settings.model_copy(
        update={
            "smtp_url": smtp.url,
            "mail_from": "Leadflow News <news@example.com>",
            "public_url": "https://leads.example.com/",
        }
    )
    async with run_pipeline(settings) as pipeline:
        install(pipeline.store)
        lead = pipeline.capture("ann@x.io", name="Ann", intent="low")
        # The delivery records the email once the SMTP server has it.
        await pipeline.until(
            lambda: bool(of_type(pipeline.store, lead, "nurture.email_sent")), "the welcome email"
        )
        email = smtp.handler.message(0)
        [sent] = of_type(pipeline.store, lead, "nurture.email_sent")
        message_id = sent["message_id"]

        assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        https, mailto = [part.strip() for part in email["List-Unsubscribe"].split(",")]
        assert https == f"<https://leads.example.com/t/u/{message_id}>"
        mailbox = urlsplit(mailto.strip("<>"))
        assert (mailbox.scheme, mailbox.path) == ("mailto", "news@example.com")
        assert parse_qs(mailbox.query) == {"subject": [f"unsubscribe {message_id}"]}
        path = urlsplit(https.strip("<>")).path

        with TestClient(create_app(settings)) as web:
            # What a mail scanner does: fetch the link (twice). Nothing changes.
            before = stream(pipeline.store, lead)
            for _ in range(2):
                page = web.get(path)
                assert page.status_code == 200
                assert page.headers["cache-control"].startswith("no-store")
                assert '<form method="post">' in page.text and "确认退订" in page.text
            english = web.get(path, headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})
            assert "Stop receiving these emails?" in english.text
            assert stream(pipeline.store, lead) == before

            # What a mailbox provider does (RFC 8058): POST the one-click form, maybe twice.
            for _ in range(2):
                done = web.post(
                    path,
                    content=b"List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                assert done.status_code == 200 and "您已退订" in done.text
            assert of_type(pipeline.store, lead, "lead.unsubscribed") == [{}]
            # Multipart and with a trailing line break, as RFC 8058 allows: the same.
            boundary = "b0undary"
            multipart = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
                f"One-Click\r\n--{boundary}--\r\n"
            ).encode()
            ctype = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
            assert web.post(path, content=multipart, headers=ctype).status_code == 200
            assert web.post(path, content=b"List-Unsubscribe=One-Click\r\n").status_code == 200
            # The page's own button: an empty POST, once more; still one unsubscribe.
            assert web.post(path, headers={"Accept-Language": "en"}).status_code == 200
            assert len(of_type(pipeline.store, lead, "lead.unsubscribed")) == 1
            assert "You are unsubscribed" in web.get(path, headers={"Accept-Language": "en"}).text
            shown = web.get(f"/v1/leads/{lead}", headers=ADMIN).json()
            assert (shown["do_not_contact"], shown["do_not_contact_reason"]) == (
                True,
                "unsubscribed",
            )

        await pipeline.until(
            lambda: bool(of_type(pipeline.store, lead, "nurture.exited")), "the sequence ended"
        )
        await asyncio.sleep(4)  # past the second step's due time
        assert len(smtp.handler.envelopes) == 1


async def test_an_admin_flag_stops_the_next_step_and_a_phone_only_lead_gets_no_email(
    temporal_settings: Settings, run_pipeline: RunPipeline, smtp: MailServer
) -> None:
    settings = temporal_settings.model_copy(update={"smtp_url": smtp.url})
    async with run_pipeline(settings) as pipeline:
        store = pipeline.store
        install(store)
        lead = pipeline.capture("bo@x.io", name="Bo", intent="low")
        phone_only = pipeline.post(
            {
                "type": "lead.captured",
                "data": {"phone": "13800138000", "source": "website", "intent": "low"},
            }
        ).lead_id
        await pipeline.until(lambda: len(smtp.handler.envelopes) == 1, "the welcome email")

        with TestClient(create_app(settings)) as web:
            reason = {"reason": "asked on the phone not to be emailed"}
            flagged = web.post(f"/v1/leads/{lead}/do-not-contact", json=reason, headers=ADMIN)
            assert flagged.status_code == 202, flagged.text
            again = web.post(f"/v1/leads/{lead}/do-not-contact", json=reason, headers=ADMIN)
            assert again.status_code == 409
            assert again.json()["error"]["code"] == "do_not_contact_unchanged"
        [change] = of_type(store, lead, "lead.do_not_contact_set")
        # Who: the admin key's id (the bootstrap key here).
        assert change == {"reason": reason["reason"], "by": "bootstrap"}

        await pipeline.until(
            lambda: bool(of_type(store, lead, "nurture.exited")), "the sequence ended"
        )
        assert of_type(store, lead, "nurture.exited") == [
            {"sequence": "drip", "reason": "do_not_contact"}
        ]
        await asyncio.sleep(4)  # past the second step's due time
        assert len(smtp.handler.envelopes) == 1
        assert [s["template"] for s in of_type(store, lead, "nurture.email_sent")] == ["welcome"]

        # The phone-only lead: not enrolled, the log says why, nothing queued or sent.
        assert of_type(store, phone_only, "nurture.exited") == [
            {"sequence": "drip", "reason": "no_email"}
        ]
        assert of_type(store, phone_only, "nurture.enrolled") == []
        assert of_type(store, phone_only, "notification.queued") == []
        assert {tuple(e.rcpt_tos) for e in smtp.handler.envelopes} == {("bo@x.io",)}

        with TestClient(create_app(settings)) as web:
            lift = {"reason": "signed up again at the trade show"}
            lifted = web.post(f"/v1/leads/{lead}/do-not-contact/lift", json=lift, headers=ADMIN)
            assert lifted.status_code == 202, lifted.text
            shown = web.get(f"/v1/leads/{lead}", headers=ADMIN).json()
            assert (shown["do_not_contact"], shown["do_not_contact_reason"]) == (False, None)
            twice = web.post(f"/v1/leads/{lead}/do-not-contact/lift", json=lift, headers=ADMIN)
            assert twice.status_code == 409
        await pipeline.eventually(lead, lambda state: not state.do_not_contact)

        # The replay simulator, on the same pure lifecycle, decides what the workflows did,
        # the sequence's exit on the admin's flag included.
        exits = [e.data for e in store.event_log.lead_events(lead) if e.type == "nurture.exited"]
        assert {"reason": "do_not_contact", "sequence": "drip"} in exits
        assert verify(store.event_log, store.rulebook, store.rulebook.directory()) == []


@pytest.fixture
def web(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def captured(web: TestClient, email: str) -> str:
    body = {"type": "lead.captured", "data": {"email": email, "source": "website"}}
    answer = web.post("/v1/events", json=body, headers=ADMIN)
    assert answer.status_code == 202, answer.text
    lead_id: str = answer.json()["lead_id"]
    return lead_id


def test_a_hard_bounce_sets_the_flag_and_a_soft_one_does_not(web: TestClient) -> None:
    soft, hard, old = (captured(web, f"{n}@x.io") for n in ("soft", "hard", "old"))
    for lead, kind in ((soft, "soft"), (hard, "hard"), (old, None)):
        data = {"message_id": "m-1", **({"kind": kind} if kind else {})}
        bounced = {"type": "email.bounced", "lead_id": lead, "data": data}
        assert web.post("/v1/events", json=bounced, headers=ADMIN).status_code == 202
    flags = {
        lead: (shown["do_not_contact"], shown["do_not_contact_reason"])
        for lead in (soft, hard, old)
        for shown in [web.get(f"/v1/leads/{lead}", headers=ADMIN).json()]
    }
    assert flags == {soft: (False, None), hard: (True, "hard_bounce"), old: (False, None)}
    wrong = {"type": "email.bounced", "lead_id": soft, "data": {"message_id": "m", "kind": "x"}}
    refused = web.post("/v1/events", json=wrong, headers=ADMIN)
    assert refused.status_code == 422
    assert [d["path"] for d in refused.json()["error"]["details"]] == ["/data/kind"]


def test_hostile_input_to_the_new_routes_is_refused_and_writes_nothing(web: TestClient) -> None:
    lead = captured(web, "carl@x.io")
    store: Store = web.app.state.store  # type: ignore[attr-defined]
    message_id = f"m-{uuid4()}"
    store.event_log.save(TrackedMessage.sent(message_id, lead, []))
    reader = store.keys.create(["read"])
    position = store.event_log.max_position()

    def refused(
        method: str, path: str, status: int, pointer: str | None = None, **kwargs: Any
    ) -> None:
        answer = web.request(method, path, **kwargs)
        assert answer.status_code == status, (method, path, kwargs, answer.text)
        if pointer is not None:
            assert pointer in [d["path"] for d in answer.json()["error"]["details"]], answer.text

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    unsubscribe = f"/t/u/{message_id}"
    refused("POST", unsubscribe, 422, "/List-Unsubscribe", content=b"List-Unsubscribe=No")
    refused("POST", unsubscribe, 422, "/List-Unsubscribe", content=b"a=b", headers=form)
    refused("POST", unsubscribe, 422, "/List-Unsubscribe", json={"List-Unsubscribe": "One-Click"})
    refused("POST", unsubscribe, 422, "/List-Unsubscribe", content=b"\xff\xfe", headers=form)
    refused(
        "POST",
        unsubscribe,
        422,
        "/List-Unsubscribe",
        content=b"List-Unsubscribe=One-Click&List-Unsubscribe=One-Click",
        headers=form,
    )
    refused("POST", unsubscribe, 413, content=b"x" * 5000, headers=form)
    multipart_junk = {"Content-Type": "multipart/form-data; boundary=zz"}
    refused(
        "POST", unsubscribe, 422, "/List-Unsubscribe", content=b"--zz\r\n", headers=multipart_junk
    )
    for unknown in ("/t/u/no-such-message", "/t/u/%00", "/t/u/" + "ü" * 40):
        for method in ("GET", "POST"):
            answer = web.request(method, unknown, headers={"Accept-Language": "en"})
            assert answer.status_code in (404, 422), (method, unknown, answer.text)
            if answer.status_code == 404:
                assert "No such email" in answer.text
                assert answer.headers["content-type"].startswith("text/html")
    refused("GET", "/t/u/" + "m" * 101, 422)
    refused("GET", unsubscribe, 422, headers={"Accept-Language": "x" * 600})

    flag = f"/v1/leads/{lead}/do-not-contact"
    for path in (flag, flag + "/lift"):
        refused("POST", path, 401, json={"reason": "x"})
        refused(
            "POST", path, 403, json={"reason": "x"}, headers={"Authorization": f"Bearer {reader}"}
        )
    refused("POST", flag, 422, "/reason", json={}, headers=ADMIN)
    refused("POST", flag, 422, "/reason", json={"reason": ""}, headers=ADMIN)
    refused("POST", flag, 422, "/reason", json={"reason": "   "}, headers=ADMIN)
    refused("POST", flag, 422, "/reason", json={"reason": "x" * 501}, headers=ADMIN)
    refused("POST", flag, 422, "/reason", json={"reason": 5}, headers=ADMIN)
    refused("POST", flag, 422, "/reason", json={"reason": "a\x00b"}, headers=ADMIN)
    refused("POST", flag, 422, "/by", json={"reason": "x", "by": "someone"}, headers=ADMIN)
    refused("POST", flag, 422, "", json=["reason"], headers=ADMIN)
    refused("POST", flag, 400, content=b"{", headers=ADMIN)
    refused("POST", "/v1/leads/not-a-uuid/do-not-contact", 422, json={"reason": "x"}, headers=ADMIN)
    refused("POST", f"/v1/leads/{uuid4()}/do-not-contact", 404, json={"reason": "x"}, headers=ADMIN)
    refused("POST", flag + "/lift", 409, json={"reason": "x"}, headers=ADMIN)
    # Posted as an ordinary event, an admin's change is refused whoever sends it.
    for admin_type in ("lead.do_not_contact_set", "lead.do_not_contact_lifted"):
        body = {"type": admin_type, "lead_id": lead, "data": {"reason": "x"}}
        refused("POST", "/v1/events", 422, "/type", json=body, headers=ADMIN)
    assert store.event_log.max_position() == position
    assert stream(store, UUID(lead))[-1][0] == "lead.captured"


def test_the_delivery_checks_the_flag_again_before_sending(store: Store, smtp: MailServer) -> None:
    """A step's email queued before the flag was set (the step was decided first) is not
    sent: the delivery reads the lead's stream again, and records why it skipped."""
    install(store)
    version = store.rulebook.active_version()
    assert version is not None
    http = httpx.Client()
    sender = NotificationSender(smtp.url, "news@example.com", http)
    deliveries = NotificationActivities(
        store.event_log, store.rulebook, sender, "https://leads.example.com"
    )

    def queued(email: str, flagged: bool) -> SendInput:
        body = {"type": "lead.captured", "data": {"email": email, "source": "website"}}
        [capture] = store.append([parse_event(body, now=NOW, phone_region="CN")], [None])
        assert capture.lead_id is not None
        step = {"to": "lead", "template": "welcome", "channel": "email", "sequence": "drip"}
        notification = store.event_log.record_once(
            capture.lead_id,
            Decision("notification.queued", {**step, "step": 0}, None),
            event_id=f"lf:queued-{email}",
            occurred_at=NOW,
            ruleset_version=version,
            caused_by=capture.event_id,
        )
        if flagged:
            admin = {"reason": "asked by phone"}
            event = do_not_contact_event(
                admin, lead_id=capture.lead_id, lift=False, by="key_ops", now=NOW
            )
            store.append([event], [None])
        return SendInput(str(capture.lead_id), notification.event_id)

    try:
        flagged = queued("flagged@x.io", flagged=True)
        free = queued("free@x.io", flagged=False)
        assert ActivityEnvironment().run(deliveries.send, flagged) == ["skipped"]
        assert ActivityEnvironment().run(deliveries.send, free) == ["sent"]
    finally:
        http.close()
    [skipped] = of_type(store, UUID(flagged.lead_id), "notification.sent")
    assert (skipped["status"], skipped["reason"]) == ("skipped", "do_not_contact (admin)")
    assert of_type(store, UUID(flagged.lead_id), "nurture.email_sent") == []
    assert [tuple(e.rcpt_tos) for e in smtp.handler.envelopes] == [("free@x.io",)]
    assert smtp.handler.message(0)["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_an_admin_change_retried_with_its_key_answers_the_same_and_appends_once(
    web: TestClient,
) -> None:
    lead = captured(web, "dee@x.io")
    keyed = {**ADMIN, "Idempotency-Key": "flag-dee"}
    path = f"/v1/leads/{lead}/do-not-contact"
    first = web.post(path, json={"reason": "asked by phone"}, headers=keyed)
    retry = web.post(path, json={"reason": "asked by phone"}, headers=keyed)
    assert (first.status_code, retry.status_code) == (202, 202)
    assert retry.json() == {**first.json(), "duplicate": True}
    other = web.post(path, json={"reason": "another reason"}, headers=keyed)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    store: Store = web.app.state.store  # type: ignore[attr-defined]
    assert len(of_type(store, UUID(lead), "lead.do_not_contact_set")) == 1


def test_after_a_lift_the_same_link_unsubscribes_again(web: TestClient) -> None:
    lead = captured(web, "eli@x.io")
    store: Store = web.app.state.store  # type: ignore[attr-defined]
    message_id = f"m-{uuid4()}"
    store.event_log.save(TrackedMessage.sent(message_id, lead, []))
    assert web.post(f"/t/u/{message_id}").status_code == 200
    assert web.post(f"/t/u/{message_id}").status_code == 200
    lift = {"reason": "opted in again"}
    assert (
        web.post(f"/v1/leads/{lead}/do-not-contact/lift", json=lift, headers=ADMIN).status_code
        == 202
    )
    assert web.get(f"/v1/leads/{lead}", headers=ADMIN).json()["do_not_contact"] is False
    assert web.post(f"/t/u/{message_id}").status_code == 200
    assert len(of_type(store, UUID(lead), "lead.unsubscribed")) == 2
    assert web.get(f"/v1/leads/{lead}", headers=ADMIN).json()["do_not_contact"] is True
