"""Reminders, reclaims and their notifications for real: a Temporal dev server, a ruleset
whose durations are seconds, a real SMTP server (aiosmtpd) and a real webhook receiver."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx
from fastapi.testclient import TestClient
from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError

from activities.notifications import DESTINATION_BUSY
from activities.senders import NotificationSender
from api.app import create_app
from leadflow.bootstrap import projections
from leadflow.settings import Settings
from projections.projector import Projector

if TYPE_CHECKING:
    from conftest import MailServer, Pipeline, Receiver, RunPipeline

NOW = datetime.now(UTC)


def directory(hook: str) -> dict[str, Any]:
    return {
        "teams": [
            {
                "id": "east",
                "name": "East",
                "manager": "mgr",
                "director": "dir",
                "regions": ["east"],
                "channel": "east-hook",
            }
        ],
        "reps": [
            {
                "id": "rep-east-1",
                "name": "Li Wei",
                "email": "li.wei@example.com",
                "team": "east",
                "capacity": 10,
                # Reads English; everyone else gets LEADFLOW_LOCALE's Chinese (the default).
                "locale": "en",
            }
        ],
        "people": [
            {"id": "mgr", "name": "Liu Yang", "email": "liu.yang@example.com"},
            {"id": "dir", "name": "Sun Hui", "email": "sun.hui@example.com"},
        ],
        "channels": [{"id": "east-hook", "kind": "webhook", "url": hook}],
    }


RULESET: dict[str, Any] = {
    "name": "seconds",
    "timers": [
        {
            "id": "first_follow_up",
            "start_on": ["lead.assigned"],
            "cancel_on": ["lead.followed_up", "lead.returned_to_pool"],
            "after": "PT2S",
        },
        {
            "id": "reclaim",
            "start_on": ["lead.assigned"],
            "cancel_on": ["lead.followed_up", "lead.returned_to_pool"],
            "after": "PT4S",
        },
    ],
    "rules": [
        {
            "id": "assign",
            "when": ["lead.captured"],
            "conditions": {"all": []},
            "actions": [{"name": "assign_to_rep", "params": {"rep": "rep-east-1"}}],
        },
        {
            "id": "remind",
            "when": ["timer.first_follow_up"],
            "conditions": {"all": []},
            "actions": [
                {"name": "notify", "params": {"to": "owner", "template": "follow-up-overdue"}},
                {"name": "notify", "params": {"to": "team", "template": "follow-up-overdue"}},
            ],
        },
        {
            "id": "reclaim-48h",
            "when": ["timer.reclaim"],
            "conditions": {"all": []},
            "actions": [
                {"name": "return_to_pool", "params": {"reason": "no_follow_up_48h"}},
                {"name": "notify", "params": {"to": "manager", "template": "lead-reclaimed"}},
            ],
        },
    ],
}


def install(pipeline: Pipeline, hook: str) -> None:
    rulebook = pipeline.store.rulebook
    rulebook.replace_directory(directory(hook), "test", NOW)
    rulebook.activate(rulebook.publish(RULESET, "test", NOW), "test", NOW)


def sent(pipeline: Pipeline, lead: UUID) -> list[dict[str, Any]]:
    return [
        {**e.data, "rule_id": e.rule_id}
        for e in pipeline.store.event_log.lead_events(lead)
        if e.type == "notification.sent"
    ]


async def test_reminder_then_reclaim_notify_owner_team_and_manager(
    temporal_settings: Settings, run_pipeline: RunPipeline, smtp: MailServer, receiver: Receiver
) -> None:
    settings = temporal_settings.model_copy(update={"smtp_url": smtp.url})
    async with run_pipeline(settings) as pipeline:
        install(pipeline, f"{receiver.base}/east")
        lead = pipeline.capture("ann@x.io", name="Ann", company="Acme")
        await pipeline.until(lambda: len(sent(pipeline, lead)) == 3, "three notifications sent")

        recipients = {tuple(e.rcpt_tos) for e in smtp.handler.envelopes}
        assert recipients == {("li.wei@example.com",), ("liu.yang@example.com",)}
        # Each in the recipient's language: the owner's directory entry says en, the
        # manager has none and reads the default zh-CN.
        subjects = {
            tuple(smtp.handler.envelopes[i].rcpt_tos): smtp.handler.message(i)["Subject"]
            for i in range(2)
        }
        assert subjects == {
            ("li.wei@example.com",): "First follow-up overdue: Ann (Acme)",
            ("liu.yang@example.com",): "线索已收回公海：Ann（Acme）",
        }
        # Internal mail, not marketing: no unsubscribe headers (docs/consent.md).
        assert not any(smtp.handler.message(i)["List-Unsubscribe"] for i in range(2))
        [hook] = receiver.requests
        # The team's channel is no person: it reads LEADFLOW_LOCALE's Chinese.
        assert hook.path == "/east" and hook.json()["subject"] == "跟进超时提醒：Ann（Acme）"

        records = {
            (n["to"], n["recipient"], n["channel"], n["status"], n["rule_id"])
            for n in sent(pipeline, lead)
        }
        assert records == {
            ("owner", "rep-east-1", "email", "sent", "remind"),
            ("team", "east-hook", "webhook", "sent", "remind"),
            ("manager", "mgr", "email", "sent", "reclaim-48h"),
        }
        types = [e.type for e in pipeline.store.event_log.lead_events(lead)]
        assert "lead.reminder_sent" in types and "lead.returned_to_pool" in types


async def test_a_failing_webhook_is_retried_without_blocking_the_lead(
    temporal_settings: Settings, run_pipeline: RunPipeline, smtp: MailServer, receiver: Receiver
) -> None:
    settings = temporal_settings.model_copy(update={"smtp_url": smtp.url})
    receiver.failures["/east"] = 3  # 500, 500, 500, then 200: retried with backoff
    async with run_pipeline(settings) as pipeline:
        install(pipeline, f"{receiver.base}/east")
        lead = pipeline.capture("bo@x.io", name="Bo")
        await pipeline.until(
            lambda: any(n["to"] == "team" for n in sent(pipeline, lead)), "the team webhook sent"
        )
        types = [e.type for e in pipeline.store.event_log.lead_events(lead)]
        # The reclaim (4 s) did not wait for the webhook's retries (1 + 2 + 4 s).
        reclaimed = types.index("lead.returned_to_pool")
        team_sent = next(
            i
            for i, e in enumerate(pipeline.store.event_log.lead_events(lead))
            if e.type == "notification.sent" and e.data["to"] == "team"
        )
        assert reclaimed < team_sent
        assert [r.path for r in receiver.requests] == ["/east"] * 4
        [team] = [n for n in sent(pipeline, lead) if n["to"] == "team"]
        assert team["status"] == "sent"
        # Every attempt names the same delivery, so the receiver can drop the resends.
        assert {
            (r.headers["Idempotency-Key"], r.headers["X-Leadflow-Delivery"])
            for r in receiver.requests
        } == {(team["message_id"], team["message_id"])}


async def test_without_smtp_email_is_recorded_in_the_outbox_only(
    temporal_settings: Settings, run_pipeline: RunPipeline, receiver: Receiver
) -> None:
    async with run_pipeline(temporal_settings) as pipeline:
        install(pipeline, f"{receiver.base}/east")
        lead = pipeline.capture("cy@x.io", name="Cy")
        await pipeline.until(lambda: len(sent(pipeline, lead)) == 3, "three notifications recorded")
        statuses = {(n["channel"], n["status"]) for n in sent(pipeline, lead)}
        assert statuses == {("email", "recorded"), ("webhook", "sent")}

        # The same list over HTTP, from the read model (the projector has caught up).
        store = pipeline.store
        Projector(store.event_log, store.engine, projections()).catch_up()
        with TestClient(create_app(settings_of(pipeline))) as http:
            listed = http.get(
                "/v1/notifications", params={"lead_id": str(lead)}, headers=ADMIN
            ).json()["items"]
        assert {(n["to"], n["template"], n["status"]) for n in listed} == {
            ("owner", "follow-up-overdue", "recorded"),
            ("team", "follow-up-overdue", "sent"),
            ("manager", "lead-reclaimed", "recorded"),
        }
        assert all(n["lead_id"] == str(lead) and n["sent_at"] for n in listed)


async def test_an_idle_lead_returns_to_the_pool_and_the_director_hears_of_it(
    temporal_settings: Settings, run_pipeline: RunPipeline, smtp: MailServer, receiver: Receiver
) -> None:
    settings = temporal_settings.model_copy(update={"smtp_url": smtp.url})
    idle = {
        "name": "idle in seconds",
        "timers": [
            {
                "id": "idle",
                "start_on": ["lead.followed_up"],
                "restart_on": ["lead.followed_up"],
                "cancel_on": ["lead.returned_to_pool"],
                "after": "PT3S",
            }
        ],
        "rules": [
            RULESET["rules"][0],
            {
                "id": "idle-7d",
                "when": ["timer.idle"],
                "conditions": {"all": []},
                "actions": [
                    {"name": "return_to_pool", "params": {"reason": "idle_7d"}},
                    {"name": "notify", "params": {"to": "director", "template": "lead-idle"}},
                ],
            },
        ],
    }
    async with run_pipeline(settings) as pipeline:
        rulebook = pipeline.store.rulebook
        rulebook.replace_directory(directory(f"{receiver.base}/east"), "test", NOW)
        rulebook.activate(rulebook.publish(idle, "test", NOW), "test", NOW)
        lead = pipeline.capture("di@x.io", name="Di", company="Dyn")
        await pipeline.eventually(lead, lambda s: s.owner == "rep-east-1")
        pipeline.post(
            {"type": "lead.followed_up", "lead_id": str(lead), "data": {"rep_id": "rep-east-1"}}
        )
        await pipeline.until(lambda: len(sent(pipeline, lead)) == 1, "the director told")
        [told] = sent(pipeline, lead)
        assert (told["to"], told["recipient"], told["status"]) == ("director", "dir", "sent")
        assert [tuple(e.rcpt_tos) for e in smtp.handler.envelopes] == [("sun.hui@example.com",)]
        told_director = smtp.handler.message(0)
        assert told_director["Subject"] == "线索 7 天未跟进，已退回公海：Di（Dyn）"
        body = told_director.get_body(("plain",))
        assert body is not None
        assert "原负责人：Li Wei，所属团队：East。" in body.get_content()
        state = pipeline.store.event_log.lead_state(lead)
        assert (state.in_pool, state.pool_reason) == (True, "idle_7d")


def settings_of(pipeline: Pipeline) -> Settings:
    return pipeline.settings


ADMIN = {"Authorization": "Bearer lf_test_admin"}


NOTIFY_ON_ASSIGNMENT: dict[str, Any] = {
    "name": "tell the team of every lead",
    "rules": [
        {
            "id": "assign",
            "when": ["lead.captured"],
            "conditions": {"all": []},
            "actions": [{"name": "assign_to_rep", "params": {"rep": "rep-east-1"}}],
        },
        {
            "id": "tell-the-team",
            "when": ["lead.assigned"],
            "conditions": {"all": []},
            "actions": [{"name": "notify", "params": {"to": "team", "template": "lead-idle"}}],
        },
    ],
}


async def test_a_receiver_that_never_answers_holds_no_decision(
    temporal_settings: Settings, run_pipeline: RunPipeline, receiver: Receiver
) -> None:
    """Every lead's notification goes to a webhook that holds each request (a black hole,
    until the test ends); the leads are decided all the same, while it holds them."""
    async with run_pipeline(temporal_settings) as pipeline:
        rulebook = pipeline.store.rulebook
        held = directory(f"{receiver.base}/slow")
        held["reps"][0]["capacity"] = 100
        rulebook.replace_directory(held, "test", NOW)
        rulebook.activate(rulebook.publish(NOTIFY_ON_ASSIGNMENT, "test", NOW), "test", NOW)

        leads = [pipeline.capture(f"lead{i}@x.io") for i in range(16)]
        for lead in leads:
            await pipeline.eventually(lead, lambda s: s.owner == "rep-east-1")

        # Decided while the receiver still holds every delivery it was sent...
        assert receiver.answered_slow == 0 and receiver.held >= 1
        # ... and at most four of them at a time: the others wait their turn without a
        # thread (the sender refuses a fifth to one destination at once, to retry later).
        assert receiver.most_held <= 4
        # The deliveries run on a task queue (and a worker) of their own.
        history = await pipeline.handle(leads[0]).fetch_history()
        queues = {
            e.activity_task_scheduled_event_attributes.task_queue.name
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
        }
        assert queues == {f"{temporal_settings.task_queue}-notifications"}
        receiver.release.set()


async def test_a_delivery_that_finds_its_receiver_busy_waits_its_turn_and_is_sent(
    temporal_settings: Settings, run_pipeline: RunPipeline, receiver: Receiver
) -> None:
    told_at_once = {
        "name": "tell the team at once",
        "rules": [
            {
                **RULESET["rules"][0],
                "actions": [
                    *RULESET["rules"][0]["actions"],
                    {"name": "notify", "params": {"to": "team", "template": "lead-reclaimed"}},
                ],
            }
        ],
    }
    # One delivery at a time to the receiver, held there (up to 20 s) while a whole round
    # of the next one's attempts passes (about a second apart).
    with httpx.Client() as http:
        sender = NotificationSender(
            None,
            "leadflow@localhost",
            http,
            timeout=20,
            max_per_destination=1,
            busy_retry_seconds=0.05,
        )
        async with run_pipeline(temporal_settings, sender=sender) as pipeline:
            rulebook = pipeline.store.rulebook
            rulebook.replace_directory(directory(f"{receiver.base}/slow"), "test", NOW)
            rulebook.activate(rulebook.publish(told_at_once, "test", NOW), "test", NOW)
            first = pipeline.capture("ed@x.io", name="Ed")
            await pipeline.until(lambda: len(receiver.requests) == 1, "the first one held")
            second = pipeline.capture("flo@x.io", name="Flo")

            async def rescheduled() -> bool:
                try:
                    history = await pipeline.handle(second).fetch_history()
                except RPCError:
                    return False  # its workflow is not started yet
                return any(
                    e.activity_task_failed_event_attributes.failure.application_failure_info.type
                    == DESTINATION_BUSY
                    for e in history.events
                    if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
                )

            deadline = asyncio.get_running_loop().time() + 15
            while not await rescheduled():
                assert asyncio.get_running_loop().time() < deadline, "never scheduled again"
                await asyncio.sleep(0.1)
            receiver.release.set()

            await pipeline.until(
                lambda: bool(sent(pipeline, first)) and bool(sent(pipeline, second)),
                "both recorded",
            )
    # Busy through a whole round of attempts, and sent once its turn came: never failed.
    assert [n["status"] for n in sent(pipeline, first) + sent(pipeline, second)] == ["sent"] * 2
    assert len(receiver.requests) == 2  # a busy attempt never reaches the receiver


async def test_a_message_names_its_event_and_stage_in_each_recipients_language(
    temporal_settings: Settings, run_pipeline: RunPipeline, smtp: MailServer, receiver: Receiver
) -> None:
    settings = temporal_settings.model_copy(update={"smtp_url": smtp.url})
    announce = {
        "name": "announce",
        "templates": {"new-lead": {"subject": "{event_words}: {name}", "body": "{stage_words}"}},
        "rules": [
            {
                "id": "announce",
                "when": ["lead.captured"],
                "actions": [
                    {"name": "notify", "params": {"to": "rep:rep-east-1", "template": "new-lead"}},
                    {"name": "notify", "params": {"to": "rep:mgr", "template": "new-lead"}},
                ],
            }
        ],
    }
    async with run_pipeline(settings) as pipeline:
        rulebook = pipeline.store.rulebook
        doc = directory(f"{receiver.base}/east")
        # The manager takes no leads here but is a rep so `rep:` can name him.
        doc["reps"].append(
            {"id": "mgr", "name": "Liu", "email": "liu@example.com", "team": "east", "capacity": 0}
        )
        doc["people"] = [p for p in doc["people"] if p["id"] != "mgr"]
        rulebook.replace_directory(doc, "test", NOW)
        rulebook.activate(rulebook.publish(announce, "test", NOW), "test", NOW)
        lead = pipeline.capture("ann@x.io", name="Ann")
        await pipeline.until(lambda: len(sent(pipeline, lead)) == 2, "both told")
        messages = {
            tuple(smtp.handler.envelopes[i].rcpt_tos): smtp.handler.message(i) for i in range(2)
        }
        english = messages["li.wei@example.com",]
        chinese = messages["liu@example.com",]
        # The event from the server's catalog (GET /v1/words/events), in each one's language.
        assert (english["Subject"], chinese["Subject"]) == ("Captured: Ann", "新线索: Ann")
        bodies = [m.get_body(("plain",)) for m in (english, chinese)]
        assert [b.get_content().strip() for b in bodies if b is not None] == ["New", "新线索"]
