"""LeadWorkflow: one long-running workflow per lead (id `lead-<lead_id>`).

A thin, deterministic shell: events arrive as signals from the dispatcher (at least once,
in log order; a sequence already delivered is dropped). For each one the decisions local
activity evaluates the active ruleset and appends the decided events to the log, and
returns the lead's state folded from its stream by the pure `domain.state.apply_event`.
The state is mirrored into search attributes for operators. Before its history grows
large the workflow continues as new, carrying its state and any undelivered signals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.state import LeadState, LoggedEvent, apply_event
    from domain.timers import RunningTimer, next_due
    from workflows.contracts import (
        CLOSE_PARKED_DECISION,
        DECIDE,
        DESTINATION_BUSY,
        FIRE_TIMER,
        MAX_ATTEMPTS,
        PARK_DECISION,
        PLAN_DELIVERIES,
        SEND_NOTIFICATION,
        CloseParkedInput,
        DecideInput,
        DecideResult,
        DeliveriesInput,
        FireTimerInput,
        OperatorAction,
        ParkInput,
        SendInput,
    )

LEAD_STAGE = SearchAttributeKey.for_keyword("LeadStage")
LEAD_OWNER = SearchAttributeKey.for_keyword("LeadOwner")
LEAD_SOURCE = SearchAttributeKey.for_keyword("LeadSource")
LEAD_REGION = SearchAttributeKey.for_keyword("LeadRegion")
LEAD_IN_POOL = SearchAttributeKey.for_bool("LeadInPool")

EVENT_SIGNAL = "event"
QUARANTINE_SIGNAL = "quarantine"
# Histories recorded before rules existed fold events without the decisions activity.
DECIDE_PATCH = "decide-rules-v1"
COMPLETE_WHEN_IDLE_PATCH = "complete-when-idle-v1"
# Unattended operation: a decision the activity gives up on parks the lead (before: it
# was retried forever); deliveries go to their own task queue with a heartbeat (before:
# the workflow's queue) and are scheduled again while their destination stays busy (before:
# recorded failed); timers may start on a delivery's events. Asked once, first thing
# in a run: a patch asked after a local activity can land in the next workflow task when
# that activity outlives the task, and a replay would then not find its marker. A run
# that starts with it implies the two patches before (decide, complete when idle) and
# never asks for them, late, again.
UNATTENDED_PATCH = "unattended-operation-v1"


def workflow_id_for(lead_id: str) -> str:
    return f"lead-{lead_id}"


def notifications_queue(task_queue: str) -> str:
    """The task queue of the deliveries of the lead workflows on `task_queue`: their own
    worker and threads, so a slow receiver never holds up a decision."""
    return f"{task_queue}-notifications"


@dataclass
class LeadWorkflowInput:
    lead_id: str
    history_limit: int = 2000
    # Carried over by continue-as-new.
    state: LeadState | None = None
    pending: list[LoggedEvent] = field(default_factory=list)
    delivered: int = 0  # highest external sequence handled
    timers: dict[str, RunningTimer] = field(default_factory=dict)


def _search_attribute_updates(
    before: LeadState | None, after: LeadState
) -> list[SearchAttributeUpdate]:
    updates: list[SearchAttributeUpdate] = []
    for key, attr in (
        (LEAD_STAGE, "stage"),
        (LEAD_OWNER, "owner"),
        (LEAD_SOURCE, "source"),
        (LEAD_REGION, "region"),
    ):
        value = getattr(after, attr)
        if before is not None and getattr(before, attr) == value:
            continue
        updates.append(key.value_set(value) if value is not None else key.value_unset())
    if before is None or before.in_pool != after.in_pool:
        updates.append(LEAD_IN_POOL.value_set(after.in_pool))
    return updates


def _attempts(failed: ActivityError | ApplicationError) -> int:
    """How often the decisions activity tried before it gave up (it says so in its error's
    details; 1 if it did not)."""
    cause = failed.cause if isinstance(failed, ActivityError) else failed
    if isinstance(cause, ApplicationError) and cause.details:
        attempts = cause.details[0]
        if isinstance(attempts, int):
            return attempts
    return 1


@workflow.defn
class LeadWorkflow:
    def __init__(self) -> None:
        self._pending: list[LoggedEvent] = []
        self._state: LeadState | None = None
        self._timers: dict[str, RunningTimer] = {}
        # Durable sleeps by the due time they wake up for.
        self._wakeups: dict[str, asyncio.Task[None]] = {}
        self._woken = False
        self._sending: dict[str, asyncio.Task[None]] = {}  # notification id → delivery
        self._operator: dict[str, str] = {}  # parked item id → "retry" | "skip"
        # Deliveries that ended, whose events the ruleset's timers watch.
        self._delivered: list[str] = []
        self._watches_deliveries = False
        self._unattended = False  # UNATTENDED_PATCH, asked when the run starts
        self._parked: str | None = None  # the item id this lead waits on, if any

    @workflow.run
    async def run(self, input: LeadWorkflowInput) -> None:
        self._unattended = workflow.patched(UNATTENDED_PATCH)
        self._state = input.state or LeadState(lead_id=input.lead_id)
        self._pending = list(input.pending) + self._pending
        self._timers = dict(input.timers)
        delivered = input.delivered or self._state.last_sequence
        published: LeadState | None = input.state
        while True:
            await self._wait_for_event_or_timer()
            while self._pending:
                event = self._pending.pop(0)
                if event.sequence <= delivered:
                    continue  # delivered before: the dispatcher delivers at least once
                delivered = event.sequence
                self._state = await self._handle(event)
            due = next_due(self._timers)
            if due is not None and workflow.now() >= due.due:
                self._state = await self._fire(due)
            if self._delivered and self._unattended:
                await self._plan_deliveries()
            updates = _search_attribute_updates(published, self._state)
            if updates:
                workflow.upsert_search_attributes(updates)
                published = self._state
            # (Runs that started unattended rest without asking: see UNATTENDED_PATCH.)
            if self._resting() and (self._unattended or workflow.patched(COMPLETE_WHEN_IDLE_PATCH)):
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._pending:
                    # Its next event starts a new run (signal-with-start), which gets the
                    # lead's state back from the log with its first decision.
                    workflow.logger.info(
                        "lead %s: nothing to wait for; run ends",
                        input.lead_id,
                        extra={"lead_id": input.lead_id},
                    )
                    return
            if self._should_continue_as_new(input.history_limit):
                # Deliveries in flight belong to this run; let them finish first.
                await workflow.wait_condition(lambda: not self._sending)
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._delivered:
                    continue  # their timers first (the loop does not wait: `_woken` is set)
                workflow.continue_as_new(
                    LeadWorkflowInput(
                        lead_id=input.lead_id,
                        history_limit=input.history_limit,
                        state=self._state,
                        pending=list(self._pending),
                        delivered=delivered,
                        timers=dict(self._timers),
                    )
                )

    def _resting(self) -> bool:
        """Nothing left to wait for: won, lost, or in the pool, with no timer running.
        An open workflow costs the server memory; such a lead's run completes."""
        assert self._state is not None
        return (
            not self._pending
            and not self._timers
            and not self._sending
            and not self._delivered
            and (self._state.is_closed or self._state.in_pool)
        )

    async def _wait_for_event_or_timer(self) -> None:
        """Until an event is delivered or the earliest timer is due (a durable timer).

        Wake-ups are never cancelled: one that became stale (its timer was cancelled or
        restarted) just wakes the loop once more. Cancelling a Temporal timer while a local
        activity completes in the same task was refused by the server here
        (BadCancelTimerAttributes), and a stale wake-up costs two history events.
        """
        due = next_due(self._timers)
        if due is not None:
            remaining = (due.due - workflow.now()).total_seconds()
            if remaining <= 0:
                return
            if due.due_at not in self._wakeups:
                self._wakeups[due.due_at] = asyncio.create_task(
                    self._wake_after(due.due_at, remaining)
                )
        await workflow.wait_condition(lambda: bool(self._pending) or self._woken)
        self._woken = False

    async def _wake_after(self, due_at: str, seconds: float) -> None:
        await workflow.sleep(seconds)
        self._wakeups.pop(due_at, None)
        self._woken = True

    async def _handle(self, event: LoggedEvent) -> LeadState:
        assert self._state is not None
        if not (self._unattended or workflow.patched(DECIDE_PATCH)):
            return apply_event(self._state, event)

        def decide() -> Awaitable[DecideResult]:
            return workflow.execute_local_activity(
                DECIDE,
                DecideInput(
                    lead_id=event.lead_id,
                    trigger=event.type,
                    cause_id=event.event_id,
                    at=event.recorded_at,
                    timers=dict(self._timers),
                ),
                result_type=DecideResult,
                start_to_close_timeout=timedelta(seconds=30),
            )

        result = await self._decided(decide, event.type, event.event_id, event.sequence)
        return self._state if result is None else self._took(result)

    async def _fire(self, timer: RunningTimer) -> LeadState:
        assert self._state is not None
        lead_id = self._state.lead_id
        workflow.logger.info(
            "lead %s: timer %s fired", lead_id, timer.timer_id, extra={"lead_id": lead_id}
        )

        def fire() -> Awaitable[DecideResult]:
            return workflow.execute_local_activity(
                FIRE_TIMER,
                FireTimerInput(lead_id=lead_id, timer=timer, timers=dict(self._timers)),
                result_type=DecideResult,
                start_to_close_timeout=timedelta(seconds=30),
            )

        trigger = f"timer.{timer.timer_id}"
        result = await self._decided(fire, trigger, f"timer:{timer.timer_id}:{timer.due_at}")
        if result is None:  # skipped by an operator: the timer is dropped
            self._timers.pop(timer.timer_id, None)
            return self._state
        return self._took(result)

    async def _decided(
        self,
        decide: Callable[[], Awaitable[DecideResult]],
        trigger: str,
        cause_id: str,
        sequence: int | None = None,
    ) -> DecideResult | None:
        """The trigger's decisions; if the activity gives up on them (after its own
        retries), the lead is parked in the quarantine and waits here — its later events
        and timers with it — until an operator retries (decide again) or skips (None)."""
        assert self._state is not None
        parked: str | None = None
        while True:
            try:
                result = await decide()
            # A local activity's failure arrives as the ApplicationError it raised.
            except (ActivityError, ApplicationError) as failed:
                if not self._unattended:
                    raise
                parked = await self._park(failed, trigger, cause_id, sequence)
                if await self._operator_says(parked) == "skip":
                    await self._close_parked(parked, skipped=True)
                    return None
                continue
            if parked is not None:
                await self._close_parked(parked, skipped=False)
            return result

    async def _park(
        self,
        failed: ActivityError | ApplicationError,
        trigger: str,
        cause_id: str,
        sequence: int | None,
    ) -> str:
        assert self._state is not None
        cause = failed.cause if isinstance(failed, ActivityError) else failed
        error = str(cause) if cause is not None else str(failed)
        workflow.logger.error(
            "lead %s: %s parked: %s",
            self._state.lead_id,
            trigger,
            error,
            extra={"lead_id": self._state.lead_id},
        )
        item_id: str = await workflow.execute_local_activity(
            PARK_DECISION,
            ParkInput(
                lead_id=self._state.lead_id,
                trigger=trigger,
                cause_id=cause_id,
                sequence=sequence,
                error=error,
                attempts=_attempts(failed),
            ),
            result_type=str,
            start_to_close_timeout=timedelta(seconds=30),
        )
        self._parked = item_id
        return item_id

    async def _operator_says(self, item_id: str) -> str:
        await workflow.wait_condition(lambda: item_id in self._operator)
        self._parked = None
        return self._operator.pop(item_id)

    async def _close_parked(self, item_id: str, *, skipped: bool) -> None:
        await workflow.execute_local_activity(
            CLOSE_PARKED_DECISION,
            CloseParkedInput(item_id=item_id, skipped=skipped),
            start_to_close_timeout=timedelta(seconds=30),
        )

    def _took(self, result: DecideResult) -> LeadState:
        assert self._state is not None
        self._timers = dict(result.timers)
        self._watches_deliveries = result.watches_deliveries
        for decided in result.decided:
            if decided.type == "notification.queued" and decided.event_id not in self._sending:
                self._sending[decided.event_id] = asyncio.create_task(self._send(decided))
            workflow.logger.info(
                "lead %s: %s by rule %s (v%s)",
                decided.lead_id,
                decided.type,
                decided.rule_id,
                decided.ruleset_version,
                extra={"lead_id": decided.lead_id, "rule_id": decided.rule_id},
            )
        # The log may hold newer events than this one (appended meanwhile); never go back.
        if result.state.last_sequence >= self._state.last_sequence:
            return result.state
        return self._state

    async def _send(self, queued: LoggedEvent) -> None:
        """Deliver a notification with retries and backoff, beside the lead's own work."""
        retry_policy = RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(minutes=5),
            maximum_attempts=MAX_ATTEMPTS,
        )
        send = SendInput(lead_id=queued.lead_id, notification_id=queued.event_id)
        try:
            if self._unattended:
                send.rescheduled_when_busy = True
                while not await self._deliver_unless_busy(send, retry_policy):
                    pass  # a slot frees as soon as one of the destination's deliveries ends
            else:
                await workflow.execute_activity(
                    SEND_NOTIFICATION,
                    send,
                    start_to_close_timeout=timedelta(seconds=60),
                    retry_policy=retry_policy,
                )
        except ActivityError:
            # Recorded as failed (or skipped) on the log by the activity; the lead goes on.
            workflow.logger.warning(
                "lead %s: notification %s not delivered",
                queued.lead_id,
                queued.event_id,
                extra={"lead_id": queued.lead_id},
            )
        finally:
            del self._sending[queued.event_id]
            if self._watches_deliveries and self._unattended:
                self._delivered.append(queued.event_id)
            self._woken = True  # the lead may now be resting

    async def _deliver_unless_busy(self, send: SendInput, retry_policy: RetryPolicy) -> bool:
        """One round of attempts at a delivery, on the deliveries' own queue; False when
        the last one found the destination still busy with other deliveries (only when
        `send.rescheduled_when_busy`), so that the caller schedules it again."""
        try:
            await workflow.execute_activity(
                SEND_NOTIFICATION,
                send,
                task_queue=notifications_queue(workflow.info().task_queue),
                start_to_close_timeout=timedelta(seconds=60),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=retry_policy,
            )
        except ActivityError as failed:
            cause = failed.cause
            if isinstance(cause, ApplicationError) and cause.type == DESTINATION_BUSY:
                return False
            raise
        return True

    async def _plan_deliveries(self) -> None:
        """Start, restart or stop the timers that the ended deliveries' events name."""
        assert self._state is not None
        ended, self._delivered = self._delivered, []
        self._timers = await workflow.execute_local_activity(
            PLAN_DELIVERIES,
            DeliveriesInput(self._state.lead_id, ended, dict(self._timers)),
            result_type=dict[str, RunningTimer],
            start_to_close_timeout=timedelta(seconds=30),
        )

    @staticmethod
    def _should_continue_as_new(history_limit: int) -> bool:
        info = workflow.info()
        return (
            info.get_current_history_length() >= history_limit
            or info.is_continue_as_new_suggested()
        )

    @workflow.signal(name=EVENT_SIGNAL)
    def event(self, event: LoggedEvent) -> None:
        """One event of this lead's stream, delivered at least once and in log order."""
        self._pending.append(event)

    @workflow.signal(name=QUARANTINE_SIGNAL)
    def operator_action(self, action: OperatorAction) -> None:
        """An operator retries or skips this lead's parked decision."""
        self._operator[action.item_id] = action.action

    @workflow.query
    def parked(self) -> str | None:
        """The quarantine item this lead waits on (None: it is not parked)."""
        return self._parked

    @workflow.query
    def state(self) -> LeadState:
        assert self._state is not None
        return self._state

    @workflow.query
    def timers(self) -> dict[str, RunningTimer]:
        """The lead's running timers and when each is due (for operators)."""
        return dict(self._timers)
