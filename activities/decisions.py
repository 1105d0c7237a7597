"""The decisions activities: evaluate the active ruleset for a trigger (an event, or a
timer that fired) and append the decided events to the lead's stream, each in one local
activity (one Temporal round trip).

All I/O is here; the deciding itself is the pure `domain.lifecycle.step`, and timers are
planned by the pure `domain.timers.plan_timers`.

A cancelled activity (its workflow task timed out, e.g. while the Temporal server
restarted) finishes what it started: by default temporalio raises the cancellation inside
the worker thread at whatever instruction it is running, which can be mid-query or
between taking a lock and the `try` that releases it. A connection left half-used and a
lock never released stopped every later decision of a worker for good (found by the fault
suite). Hence `no_thread_cancel_exception` on every activity here; a decision is bounded
by its own time budget instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from prometheus_client import Counter, Histogram
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.directory import Directory
from domain.lifecycle import ActiveRuleset
from domain.personal import state_without_personal_data, without_personal_data
from domain.state import fold
from domain.timers import RunningTimer, plan_deliveries
from rules.catalog import DELIVERY_EVENT_TYPES
from rules.evaluate import Checkpoint
from store.decisions import Decided, TrialRulesets
from store.log import LOG_APPENDS, EventLog
from store.quarantine import DECISION, RESOLVED, SKIPPED, FailedEvent, Quarantine
from store.rulebook import Rulebook
from workflows.contracts import (
    CLOSE_PARKED_DECISION,
    DECIDE,
    FIRE_TIMER,
    PARK_DECISION,
    PLAN_DELIVERIES,
    CloseParkedInput,
    DecideInput,
    DecideResult,
    DeliveriesInput,
    FireTimerInput,
    ParkInput,
)

log = logging.getLogger(__name__)

# A decision that fails this many times for a reason other than an outage is given up on:
# the workflow parks the lead in the quarantine until an operator retries or skips it.
MAX_DECISION_ATTEMPTS = 5
# How long one decision's rules may take (a worker decides one lead at a time).
DECISION_TIME_LIMIT_SECONDS = 2.0
IsOutage = Callable[[BaseException], bool]

DECISIONS = Counter(
    "leadflow_decisions",
    "Decided events, by the rule that made them (`lifecycle`: the lifecycle itself) and type",
    ["rule_id", "outcome"],
)
DECISION_FAILURES = Counter(
    "leadflow_decision_failures",
    "Failed decision attempts: `outage` (the database away, retried without end), `error` "
    "(retried a few times, then parked), `over_budget` (parked at once)",
    ["kind"],
)
SHADOW_FAILURES = Counter(
    "leadflow_shadow_failures",
    "Evaluations of a version on trial (shadow, or the active version beside a canary) that "
    "raised or ran over their budget: recorded with their error, the real decision unharmed",
)
# How long one evaluation of a version on trial may take, of CPU: a shadow that spends
# more is cut off (and counted), so it never costs the real decision more than this.
SHADOW_TIME_LIMIT_SECONDS = 0.5
DECISIONS_PARKED = Counter(
    "leadflow_decisions_parked", "Leads whose decision was given up on and parked"
)
TIMERS_FIRED = Counter("leadflow_timers_fired", "Timers whose decisions ran, by timer", ["timer"])
TIMER_LATENESS = Histogram(
    "leadflow_timer_lateness_seconds",
    "How long after its due time a timer's decisions ran (fired - due)",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600),
)


class DecisionOverBudget(Exception):
    """The rules of one decision ran past their time budget: given up on at once (the
    same rules on the same lead would take as long again), and the lead is parked."""


class DecisionActivities:
    def __init__(
        self,
        event_log: EventLog,
        rulebook: Rulebook,
        quarantine: Quarantine,
        is_outage: IsOutage,
        time_limit_seconds: float = DECISION_TIME_LIMIT_SECONDS,
    ) -> None:
        self.event_log = event_log
        self.rulebook = rulebook
        self.quarantine = quarantine
        self.is_outage = is_outage
        self.time_limit_seconds = time_limit_seconds
        # One decision at a time per worker: concurrent ones collide on the few rep
        # workload and team rotation streams every assignment writes and retry from
        # scratch (measured: 12 → 18 leads/s end to end with this lock; BENCHMARKS.md).
        self._deciding = threading.Lock()

    @activity.defn(name=DECIDE, no_thread_cancel_exception=True)
    def decide(self, input: DecideInput) -> DecideResult:
        """The decided events for this trigger, appended (or found, on a retry)."""
        # The active ruleset and the directory are read before taking the lock: two reads
        # less in the one-at-a-time part, which bounds the worker's decisions per second.
        ruleset, directory, trials = self._rules()
        try:
            with self._deciding:
                decided = self.event_log.decide(
                    UUID(input.lead_id),
                    input.trigger,
                    input.cause_id,
                    datetime.fromisoformat(input.at),
                    ruleset,
                    directory,
                    input.timers,
                    checkpoint=self._budget(),
                    trials=trials,
                )
        except Exception as error:
            raise self._failure(input.lead_id, input.trigger, error) from error
        return self._result(input.lead_id, input.trigger, decided, ruleset)

    @activity.defn(name=FIRE_TIMER, no_thread_cancel_exception=True)
    def fire_timer(self, input: FireTimerInput) -> DecideResult:
        """Record `lead.timer_fired` and the decisions of the rules for `timer.<id>`."""
        trigger = f"timer.{input.timer.timer_id}"
        ruleset, directory, trials = self._rules()
        try:
            with self._deciding:
                decided = self.event_log.fire_timer(
                    UUID(input.lead_id),
                    input.timer,
                    ruleset,
                    directory,
                    input.timers,
                    checkpoint=self._budget(),
                    trials=trials,
                )
        except Exception as error:
            raise self._failure(input.lead_id, trigger, error) from error
        TIMERS_FIRED.labels(input.timer.timer_id).inc()
        TIMER_LATENESS.observe(max(0.0, (datetime.now(UTC) - input.timer.due).total_seconds()))
        return self._result(input.lead_id, trigger, decided, ruleset)

    @activity.defn(name=PLAN_DELIVERIES, no_thread_cancel_exception=True)
    def plan_deliveries(self, input: DeliveriesInput) -> dict[str, RunningTimer]:
        """The running timers once the deliveries' events (`notification.sent`,
        `nurture.email_sent`) have happened, under the timers of the version that decides
        the lead (the active one; a canary lead's canary version)."""
        active = self.rulebook.active()
        events = self.event_log.lead_events(UUID(input.lead_id))
        trials, rulesets = self.rulebook.trial_rulesets()
        if trials.canary is not None:
            # The lead's `created_at`: its first capture's time (`domain.state.apply_event`).
            created_at = next((e.occurred_at for e in events if e.type == "lead.captured"), None)
            active = TrialRulesets(trials, rulesets).for_lead(input.lead_id, created_at, active)
        wanted = set(input.notification_ids)
        calendar = None
        if any(timer.calendar for timer in active.ruleset.timers):
            # Business timers count in the calendar of the lead's (owner's) team, as it is now.
            lead = fold(input.lead_id, events)
            calendar = self.rulebook.directory().lead_calendar(lead.owner, lead.team)
        planned = plan_deliveries(
            input.timers,
            active.ruleset.timers,
            [
                event
                for event in events
                if event.type in DELIVERY_EVENT_TYPES
                and event.data.get("notification_id") in wanted
            ],
            calendar,
        )
        # The lead page's deadlines follow the workflow's timers (`store.deadlines`).
        self.event_log.record_deadlines(input.lead_id, planned, events[-1].sequence, active.version)
        return planned

    @activity.defn(name=PARK_DECISION, no_thread_cancel_exception=True)
    def park(self, input: ParkInput) -> str:
        """Record the trigger in the quarantine as parked; returns the item's id."""
        item = self.quarantine.park(
            DECISION,
            FailedEvent(
                stream_id=input.lead_id,
                lead_id=input.lead_id,
                position=None,
                event_id=input.cause_id,
                event_type=input.trigger,
                sequence=input.sequence,
            ),
            input.error,
            input.attempts,
            datetime.now(UTC),
        )
        DECISIONS_PARKED.inc()
        log.error(
            "lead %s: %s parked after %d attempt(s): %s",
            input.lead_id,
            input.trigger,
            item.attempts,
            input.error,
        )
        return item.item_id

    @activity.defn(name=CLOSE_PARKED_DECISION, no_thread_cancel_exception=True)
    def close_parked(self, input: CloseParkedInput) -> None:
        status = SKIPPED if input.skipped else RESOLVED
        self.quarantine.close_decision(input.item_id, status, datetime.now(UTC))

    def _rules(self) -> tuple[ActiveRuleset, Directory, TrialRulesets | None]:
        """The active ruleset, the directory and the trials running (`_trials`). When the
        first two cannot be read or used (the database away, a stored ruleset this release
        cannot compile), every lead is affected alike: retried without end, never counted
        against a lead, so the leads go on by themselves once it is fixed (another version
        activated)."""
        try:
            active, directory = self.rulebook.active(), self.rulebook.directory()
        except Exception as error:
            log.error("the active ruleset or the directory cannot be used: %s", error)
            raise ApplicationError(
                f"the active ruleset or the directory cannot be used: {error}",
                type="RulesetUnusable",
            ) from error
        return active, directory, self._trials()

    def _trials(self) -> TrialRulesets | None:
        """The trials running, their versions compiled; None when none runs, or when they
        cannot be read or compiled: a trial must never stop the real decisions (counted
        as a shadow failure; canary leads are then decided under the active version)."""
        try:
            trials, rulesets = self.rulebook.trial_rulesets()
        except Exception as error:
            SHADOW_FAILURES.inc()
            log.error("the ruleset trials cannot be used, decided without them: %s", error)
            return None
        if not trials.running():
            return None
        return TrialRulesets(trials, rulesets, self._shadow_budget)

    def _shadow_budget(self) -> Checkpoint:
        return self._budget(min(SHADOW_TIME_LIMIT_SECONDS, self.time_limit_seconds))

    def _budget(self, seconds: float | None = None) -> Checkpoint:
        """A checkpoint that raises DecisionOverBudget once this decision's rules have used
        `time_limit_seconds` of this thread's CPU. CPU, not wall time: on a machine under
        load a thread waits for a core (or the GIL) for seconds, and a healthy lead must not
        be parked for that; rules that really run long burn CPU."""
        limit = self.time_limit_seconds if seconds is None else seconds
        deadline = time.thread_time() + limit

        def checkpoint() -> None:
            if time.thread_time() > deadline:
                raise DecisionOverBudget(f"the rules ran past their {limit:g} s budget of CPU")

        return checkpoint

    def _failure(self, lead_id: str, trigger: str, error: Exception) -> ApplicationError:
        """What a failed decision raises to Temporal: retried after an outage (the
        database away), retried a few times otherwise, then given up on (non-retryable),
        which makes the workflow park the lead."""
        attempt = activity.info().attempt
        reason = f"{type(error).__name__}: {error}"
        if self.is_outage(error):
            DECISION_FAILURES.labels("outage").inc()
            log.warning("lead %s: %s waits for the database: %s", lead_id, trigger, reason)
            return ApplicationError(reason, attempt, type="DatabaseUnavailable")
        over_budget = isinstance(error, DecisionOverBudget)
        DECISION_FAILURES.labels("over_budget" if over_budget else "error").inc()
        give_up = attempt >= MAX_DECISION_ATTEMPTS or over_budget
        log.warning(
            "lead %s: %s failed (attempt %d of %d): %s",
            lead_id,
            trigger,
            attempt,
            MAX_DECISION_ATTEMPTS,
            reason,
            exc_info=give_up,
        )
        # The attempt travels in the details: the workflow records it when it parks.
        return ApplicationError(reason, attempt, type=type(error).__name__, non_retryable=give_up)

    @staticmethod
    def _result(
        lead_id: str, trigger: str, decided: Decided, ruleset: ActiveRuleset
    ) -> DecideResult:
        # A canary lead's version decided: the log line and the delivery watches are its.
        ruleset = decided.ruleset or ruleset
        # The rules that made these decisions, for a log search by rule (comma-separated
        # when several did; the activity's context adds the lead and workflow ids).
        rules = ",".join(dict.fromkeys(e.rule_id for e in decided.events if e.rule_id))
        log.info(
            "lead %s: %s → %s",
            lead_id,
            trigger,
            ", ".join(e.type for e in decided.events) or "no decisions",
            extra={"rule_id": rules, "ruleset_version": ruleset.version} if rules else None,
        )
        for event in decided.events:
            DECISIONS.labels(event.rule_id or "lifecycle", event.type).inc()
        if decided.shadow_failures:
            SHADOW_FAILURES.inc(decided.shadow_failures)
        if decided.events:
            LOG_APPENDS.labels("decisions").inc(len(decided.events))
        watches = ruleset.watches_deliveries
        # The result stays in the workflow's history: no personal data (docs/erasure.md).
        return DecideResult(
            [without_personal_data(event) for event in decided.events],
            state_without_personal_data(decided.state),
            decided.timers,
            watches,
        )
