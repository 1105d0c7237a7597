"""The decision service on the log: for one trigger of one lead, run the pure lifecycle
step on the lead as it was when the trigger arrived and append its decisions, once however
often the activity that asks is retried; and record a fired timer before its rules run."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.directory import Directory
from domain.errors import LeadNotFound
from domain.identity import decided_event_id
from domain.lead import (
    Lead,
    LeadEvent,
)
from domain.lifecycle import ActiveRuleset, step
from domain.state import (
    Decision,
    LeadState,
    LoggedEvent,
    is_trigger,
    state_at_trigger,
)
from domain.timers import (
    RunningTimer,
    fired_timer_data,
    plan_sequences,
    plan_timers,
    without_history,
)
from rules.evaluate import Checkpoint
from store.application import MAX_CONFLICT_RETRIES, LogApplication, recorder_of
from store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decided:
    """What one trigger led to: the decided events, the lead's state after them, and the
    running timers."""

    events: list[LoggedEvent]
    state: LeadState
    timers: dict[str, RunningTimer]


class Decisions(LogApplication):
    """Deciding on the log (mixed into `EventLog`)."""

    def decide(
        self,
        lead_id: UUID,
        trigger: str,
        cause_id: str,
        now: datetime,
        active: ActiveRuleset,
        directory: Directory,
        timers: Mapping[str, RunningTimer],
        fired: RunningTimer | None = None,
        *,
        checkpoint: Checkpoint | None = None,
    ) -> Decided:
        """Run the lifecycle step for `trigger` and append its decisions to the lead's stream;
        returns them with the lead's state after them (folded from the whole stream) and
        the timers `timers` become once the trigger and its decisions have happened.
        `checkpoint` is called before each rule is tested (see `domain.lifecycle.step`).

        Idempotent: decisions already recorded for `cause_id` (a retried activity) are
        returned instead of being decided again. A concurrent append is retried on the
        fresh state.
        """
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                # The reads join the write's transaction (the library's nested transactions),
                # as in `_append_once`: one session and BEGIN/COMMIT per decision instead of
                # one per read. A concurrent writer still surfaces as an IntegrityError.
                with recorder_of(self).transaction(commit=True):
                    return self._decide_once(
                        lead_id,
                        trigger,
                        cause_id,
                        now,
                        active,
                        directory,
                        timers,
                        fired,
                        checkpoint,
                    )
            except IntegrityError:
                continue  # another writer appended to one of these streams first
        raise RuntimeError("could not append decisions: too many concurrent writers")

    def _decide_once(
        self,
        lead_id: UUID,
        trigger: str,
        cause_id: str,
        now: datetime,
        active: ActiveRuleset,
        directory: Directory,
        timers: Mapping[str, RunningTimer],
        fired: RunningTimer | None,
        checkpoint: Checkpoint | None,
    ) -> Decided:
        unit = UnitOfWork(self, directory)
        events = [e for e in self.events.get(lead_id) if isinstance(e, LeadEvent)]
        lead: Any = None
        for event in events:
            lead = event.mutate(lead)
        if not isinstance(lead, Lead):
            raise LeadNotFound(f"no lead {lead_id}")
        logged = [e.to_logged() for e in events]
        # The trigger with that id (a decided event of an older release may share it).
        cause = next(e for e in logged if e.event_id == cause_id and is_trigger(e))
        earlier = [e for e in logged if e.caused_by == cause_id and not is_trigger(e)]
        if earlier:
            return self._decided(cause, earlier, lead.state, active, directory, timers, now, fired)
        at_trigger = state_at_trigger(str(lead_id), logged, cause_id)
        unit.adopt(lead)
        result = step(
            at_trigger, trigger, active, directory, unit, now, fired, checkpoint=checkpoint
        )
        decided = [
            lead.record_decision(
                decision,
                event_id=decided_event_id(f"decision:{lead_id}:{cause_id}:{i}"),
                occurred_at=now,
                ruleset_version=active.version,
                caused_by=cause_id,
                traceparent=cause.traceparent,  # a decision belongs to its cause's trace
            )
            for i, decision in enumerate(result.decisions)
        ]
        for team_id, rep_id in result.rotations:
            unit.rotation_for_change(team_id).choose(str(lead_id), rep_id)
        unit.save()
        new = [e.to_logged() for e in decided]
        return self._decided(cause, new, lead.state, active, directory, timers, now, fired)

    @staticmethod
    def _decided(
        cause: LoggedEvent,
        events: list[LoggedEvent],
        state: LeadState,
        active: ActiveRuleset,
        directory: Directory,
        timers: Mapping[str, RunningTimer],
        now: datetime,
        fired: RunningTimer | None,
    ) -> Decided:
        happened = [cause, *events]
        specs = active.ruleset.timers
        # Business timers count in the calendar of the owner's team (else the lead's team)
        # after the decisions.
        calendar = directory.lead_calendar(state.owner, state.team)
        planned = plan_timers(
            timers, specs, [(e.type, e.event_id) for e in happened], now, calendar
        )
        planned = without_history(timers, planned, cause, now, specs, calendar)
        planned = plan_sequences(
            planned,
            active.ruleset.sequences,
            [(e.type, e.event_id, e.data) for e in happened],
            now,
            fired,
        )
        return Decided(events, state, planned)

    def fire_timer(
        self,
        lead_id: UUID,
        timer: RunningTimer,
        active: ActiveRuleset,
        directory: Directory,
        timers: Mapping[str, RunningTimer],
        *,
        checkpoint: Checkpoint | None = None,
    ) -> Decided:
        """Record `lead.timer_fired` (once, however often this is retried) and run the rules
        for `timer.<id>` at the time the timer was due. The result's events start with the
        `lead.timer_fired` event."""
        fired_id = decided_event_id(f"timer:{lead_id}:{timer.timer_id}:{timer.due_at}")
        fired = self.record_once(
            lead_id,
            Decision("lead.timer_fired", fired_timer_data(timer)),
            event_id=fired_id,
            occurred_at=timer.due,
            ruleset_version=active.version,
            caused_by=timer.started_by,
        )
        remaining = {k: v for k, v in timers.items() if k != timer.timer_id}
        decided = self.decide(
            lead_id,
            f"timer.{timer.timer_id}",
            fired.event_id,  # the id it was recorded with, by this release or an older one
            timer.due,
            active,
            directory,
            remaining,
            fired=timer,
            checkpoint=checkpoint,
        )
        return Decided([fired, *decided.events], decided.state, decided.timers)
