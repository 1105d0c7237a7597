"""The notification activity: deliver one queued notification (`notification.queued` on the
lead's stream) and record each delivery as `notification.sent`.

Runs as a regular activity with retries and backoff, started by the workflow without
waiting for it, so a failing webhook never blocks the lead. Idempotent: a recipient whose
`notification.sent` is already on the log is not sent to again. A cancelled delivery
finishes what it started, as a decision does (`activities.decisions`); it is bounded by
its senders' timeouts.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid5

from eventsourcing.persistence import IntegrityError
from prometheus_client import Counter
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.senders import DeliveryFailed, NotificationSender, field_escape
from domain.directory import Directory
from domain.identity import LEADFLOW_NAMESPACE, decided_event_id
from domain.locales import Locale
from domain.recipients import (
    NoRecipient,
    Target,
    lead_locale,
    message_fields,
    recipient_locale,
    resolve_targets,
)
from domain.state import Decision, LeadState, LoggedEvent, fold
from domain.tracking import (
    TrackedMessage,
    list_unsubscribe_headers,
    tracked_html,
    tracked_text,
    unsubscribe_link,
)
from rules.model import Ruleset, Template
from rules.templates import LeadflowUrl, find_template, render
from rules.vocabulary import vocabulary
from store.log import EventLog
from store.rulebook import Rulebook
from workflows.contracts import DESTINATION_BUSY, MAX_ATTEMPTS, SEND_NOTIFICATION, SendInput

log = logging.getLogger(__name__)

NOTIFICATIONS = Counter(
    "leadflow_notifications",
    "Notifications and nurture emails recorded, by channel and status "
    "(sent, recorded, skipped, failed)",
    ["channel", "status"],
)


class NotificationActivities:
    def __init__(
        self,
        event_log: EventLog,
        rulebook: Rulebook,
        sender: NotificationSender,
        public_url: str,
        *,
        unsubscribe_mailbox: str | None = None,
        locale: Locale = "zh-CN",
        time_zone: str = "Asia/Shanghai",
    ) -> None:
        self.event_log = event_log
        self.rulebook = rulebook
        self.sender = sender
        self.public_url = public_url
        # The mailto of nurture emails' List-Unsubscribe header; None: the URL alone.
        self.unsubscribe_mailbox = unsubscribe_mailbox
        # LEADFLOW_LOCALE and LEADFLOW_TIME_ZONE: the language of a message to someone the
        # directory gives none (or a lead without a `locale` attribute), and the time zone
        # of a lead whose team has no calendar (docs/languages.md).
        self.locale = locale
        self.time_zone = time_zone

    @activity.defn(name=SEND_NOTIFICATION, no_thread_cancel_exception=True)
    def send(self, input: SendInput) -> list[str]:
        """Deliver to every recipient not yet served; returns the statuses recorded."""
        lead_id = UUID(input.lead_id)
        events = self.event_log.lead_events(lead_id)
        queued = next(
            e
            for e in events
            if e.event_id == input.notification_id and e.type == "notification.queued"
        )
        # The lead as it was when the notification was decided (e.g. who owned it before a
        # reclaim), so the message names the right people.
        before = fold(str(lead_id), [e for e in events if e.sequence < queued.sequence])
        directory = self.rulebook.directory()
        ruleset = (
            self.rulebook.version(queued.ruleset_version).ruleset
            if queued.ruleset_version
            else None
        )
        to, template_id = str(queued.data["to"]), str(queued.data["template"])
        again = input.rescheduled_when_busy
        if to == "lead":
            return [self._nurture(queued, before, ruleset, directory, rescheduled_when_busy=again)]
        try:
            targets = resolve_targets(to, queued.data.get("channel"), before, directory)
        except NoRecipient as nobody:
            return [self._record(queued, None, "skipped", nobody.message).data["status"]]
        if ruleset is None or find_template(ruleset, template_id) is None:
            return [
                self._record(queued, None, "skipped", f"no template {template_id!r}").data["status"]
            ]
        statuses: list[str] = []
        for target in targets:
            already = [
                e
                for e in events
                if e.type == "notification.sent"
                and e.data.get("notification_id") == queued.event_id
                and e.data.get("recipient") == target.recipient
            ]
            if already:
                statuses.append(str(already[0].data["status"]))
                continue
            # Each recipient reads it in their own language; lead data is made inert the
            # way this target's channel reads text.
            locale = recipient_locale(target, directory, self.locale)
            template = find_template(ruleset, template_id, locale)
            assert template is not None  # found above, and every language has every id
            fields = message_fields(
                before,
                {"event_words": _event_words(events, queued, locale)},
                directory=directory,
                locale=locale,
                time_zone=self.time_zone,
            )
            message = render(template, fields, escape=field_escape(target.channel))
            statuses.append(
                self._deliver(
                    queued, target, message.subject, message.body, rescheduled_when_busy=again
                )
            )
        return statuses

    def _nurture(
        self,
        queued: LoggedEvent,
        lead: LeadState,
        ruleset: Ruleset | None,
        directory: Directory,
        *,
        rescheduled_when_busy: bool,
    ) -> str:
        """A nurture email to the lead itself, tracked, with the List-Unsubscribe headers,
        and recorded as nurture.email_sent. Not sent to a lead on do-not-contact now,
        whenever the flag was set (the step that queued it may have come before)."""
        events = self.event_log.lead_events(UUID(queued.lead_id))
        if any(
            e.type == "notification.sent" and e.data.get("notification_id") == queued.event_id
            for e in events
        ):
            return "sent"
        template_id = str(queued.data["template"])
        locale = lead_locale(lead, self.locale)
        template = find_template(ruleset, template_id, locale) if ruleset else None
        now = fold(queued.lead_id, events)
        if now.do_not_contact or not lead.email or template is None:
            reason = (
                f"do_not_contact ({now.do_not_contact_reason})"
                if now.do_not_contact
                else "no email address"
                if not lead.email
                else f"no template {template_id!r}"
            )
            return str(self._record(queued, None, "skipped", reason).data["status"])
        variant = subject_variant(lead, template)
        target = Target("email", lead.email, "lead")
        message_id = self._message_id(queued, target)
        unsubscribe = LeadflowUrl(unsubscribe_link(self.public_url, message_id))
        # Both parts come from the defanged text: the HTML part escapes it and links only
        # the URLs the template's author wrote, the only ones a click may redirect to.
        message = render(
            template,
            message_fields(
                lead,
                {"unsubscribe_url": unsubscribe},
                directory=directory,
                locale=locale,
                time_zone=self.time_zone,
            ),
            variant=variant,
            escape=field_escape(target.channel),
        )
        with contextlib.suppress(IntegrityError):  # saved by an earlier attempt
            self.event_log.save(
                TrackedMessage.sent(message_id, queued.lead_id, list(message.links))
            )
        status = self._deliver(
            queued,
            target,
            message.subject,
            tracked_text(message.body, self.public_url, message_id),
            html=tracked_html(message.body, message.links, self.public_url, message_id),
            headers=list_unsubscribe_headers(self.public_url, message_id, self.unsubscribe_mailbox),
            rescheduled_when_busy=rescheduled_when_busy,
        )
        if status in ("sent", "recorded"):
            self.event_log.record_once(
                UUID(queued.lead_id),
                Decision(
                    "nurture.email_sent",
                    {
                        "notification_id": queued.event_id,
                        "message_id": message_id,
                        "template": template_id,
                        "variant": variant,
                        "sequence": queued.data.get("sequence"),
                        "step": queued.data.get("step"),
                    },
                    queued.rule_id,
                ),
                event_id=decided_event_id(f"nurture-sent:{message_id}"),
                occurred_at=datetime.now(UTC),
                ruleset_version=queued.ruleset_version,
                caused_by=queued.caused_by or queued.event_id,
            )
        return status

    @staticmethod
    def _message_id(queued: LoggedEvent, target: Target) -> str:
        return str(uuid5(LEADFLOW_NAMESPACE, f"message:{queued.event_id}:{target.recipient}"))

    def _deliver(
        self,
        queued: LoggedEvent,
        target: Target,
        subject: str,
        body: str,
        html: str | None = None,
        headers: dict[str, str] | None = None,
        *,
        rescheduled_when_busy: bool,
    ) -> str:
        message_id = self._message_id(queued, target)
        # Alive between deliveries: a worker that died mid-send is noticed in seconds.
        # (Heartbeat details stay in Temporal: the message id, never the address.)
        activity.heartbeat(message_id)
        try:
            status = self.sender.send(
                target,
                subject,
                body,
                message_id=message_id,
                html=html,
                headers=headers,
                lead_id=queued.lead_id,
            )
        except DeliveryFailed as failed:
            last_try = activity.info().attempt >= MAX_ATTEMPTS
            if failed.busy and last_try and rescheduled_when_busy:
                # Busy is this worker's own limit, not the receiver's answer: a burst may
                # delay a delivery but must not use up the attempts meant for failures.
                log.warning(
                    "lead %s: notification to %s still waits (%s); scheduled again",
                    queued.lead_id,
                    target.recipient,
                    failed.reason,
                )
                raise ApplicationError(
                    _without_address(failed.reason, target),
                    type=DESTINATION_BUSY,
                    non_retryable=True,
                ) from failed
            if failed.retryable and not last_try:
                log.warning(
                    "lead %s: notification to %s failed (%s); will retry",
                    queued.lead_id,
                    target.recipient,
                    failed.reason,
                )
                raise ApplicationError(
                    _without_address(failed.reason, target),
                    non_retryable=False,
                    next_retry_delay=(
                        timedelta(seconds=failed.retry_after) if failed.retry_after else None
                    ),
                ) from failed
            return str(self._record(queued, target, "failed", failed.reason).data["status"])
        return str(self._record(queued, target, status, None).data["status"])

    def _record(
        self, queued: LoggedEvent, target: Target | None, status: str, reason: str | None
    ) -> LoggedEvent:
        recipient = target.recipient if target else None
        data: dict[str, object] = {
            "notification_id": queued.event_id,
            "message_id": self._message_id(queued, target) if target else None,
            "to": queued.data["to"],
            "recipient": recipient,
            "channel": target.channel if target else queued.data.get("channel"),
            "template": queued.data["template"],
            "status": status,
        }
        if reason:
            data["reason"] = reason
        log.info(
            "lead %s: notification %s to %s: %s",
            queued.lead_id,
            queued.data["template"],
            recipient,
            status,
        )
        NOTIFICATIONS.labels(str(data["channel"] or "none"), status).inc()
        return self.event_log.record_once(
            UUID(queued.lead_id),
            Decision("notification.sent", data, queued.rule_id),
            event_id=decided_event_id(f"sent:{queued.event_id}:{recipient}"),
            occurred_at=datetime.now(UTC),
            ruleset_version=queued.ruleset_version,
            caused_by=queued.caused_by or queued.event_id,
        )


def _without_address(reason: str, target: Target) -> str:
    """A delivery failure's reason as Temporal may keep it (in the workflow's history):
    the recipient's address left out (an SMTP refusal quotes it; docs/erasure.md)."""
    return reason.replace(target.address, "<recipient>").replace(target.recipient, "<recipient>")


def _event_words(events: list[LoggedEvent], queued: LoggedEvent, locale: Locale) -> str | None:
    """The name of the event the notification is about (the one that triggered its rule:
    a capture, a fired timer), in the recipient's language (`GET /v1/words/events`)."""
    cause = next((e for e in events if e.event_id == queued.caused_by), None)
    if cause is None:
        return None
    return vocabulary(locale).event_names.get(cause.type, cause.type)


def subject_variant(lead: LeadState, template: Template) -> str | None:
    """The A/B subject a lead gets: its variant in an experiment, when the template has a
    subject for that variant (SPEC §5 `subject_variants`); None for the template's own."""
    for variant in lead.variants.values():
        if variant in template.subject_variants:
            return variant
    return None
