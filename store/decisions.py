"""The decision service on the log: for one trigger of one lead, run the pure lifecycle
step on the lead as it was when the trigger arrived and append its decisions, once however
often the activity that asks is retried; and record a fired timer before its rules run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.calendar import BusinessCalendar
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
from domain.trials import (
    Trials,
    comparisons,
    decision_facts,
    facts_agree,
    ruleset_version_for,
)
from rules.evaluate import Checkpoint
from store import deadlines, shadow_decisions
from store.application import MAX_CONFLICT_RETRIES, LogApplication, recorder_of
from store.shadow_decisions import ShadowDecision
from store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decided:
    """What one trigger led to: the decided events, the lead's state after them, and the
    running timers."""

    events: list[LoggedEvent]
    state: LeadState
    timers: dict[str, RunningTimer]
    # The version that decided (the canary's for a canary lead; None: the active one).
    ruleset: ActiveRuleset | None = None
    # Shadow evaluations that raised or ran over their budget (recorded with their error).
    shadow_failures: int = 0


# What another version decided aside: its decisions, its timers, and its error if it failed.
Aside = tuple[list[Decision], dict[str, RunningTimer], str | None]


@dataclass(frozen=True)
class TrialRulesets:
    """The trials running as the activity read them, their versions compiled, and the CPU
    budget of one shadow evaluation (a fresh checkpoint per evaluation)."""

    trials: Trials
    rulesets: Mapping[int, ActiveRuleset] = field(default_factory=dict)
    shadow_budget: Callable[[], Checkpoint] | None = None

    def for_lead(
        self, lead_id: str, created_at: str | None, active: ActiveRuleset
    ) -> ActiveRuleset:
        """The version that decides this lead now (`domain.trials.ruleset_version_for`)."""
        version = ruleset_version_for(lead_id, created_at, active.version, self.trials)
        if version is None or version == active.version:
            return active
        return self.rulesets[version]


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
        trials: TrialRulesets | None = None,
    ) -> Decided:
        """Run the lifecycle step for `trigger` and append its decisions to the lead's stream;
        returns them with the lead's state after them (folded from the whole stream) and
        the timers `timers` become once the trigger and its decisions have happened.
        `checkpoint` is called before each rule is tested (see `domain.lifecycle.step`).

        Idempotent: decisions already recorded for `cause_id` (a retried activity) are
        returned instead of being decided again. A concurrent append is retried on the
        fresh state.

        With `trials`, a canary lead is decided under the canary version, and the trigger
        is also decided under each version it is compared with (`domain.trials.comparisons`),
        on the same state and workloads, changing nothing: one `shadow_decisions` row each,
        in the same transaction. A failing comparison never fails the decision.
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
                        trials,
                    )
            except IntegrityError:
                continue  # another writer appended to one of these streams first
        raise RuntimeError("could not append decisions: too many concurrent writers")

    def record_deadlines(
        self,
        lead_id: str,
        timers: Mapping[str, RunningTimer],
        sequence: int,
        ruleset_version: int | None,
    ) -> None:
        """Make `timers`, planned when the lead's stream held `sequence` events, its
        deadlines (`store.deadlines.replace`): for timers re-planned outside a decision."""
        with recorder_of(self).transaction(commit=True) as session:
            deadlines.replace(
                session.connection(),
                lead_id,
                timers,
                sequence=sequence,
                ruleset_version=ruleset_version,
            )

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
        trials: TrialRulesets | None = None,
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
        used = active
        if trials is not None:
            used = trials.for_lead(str(lead_id), lead.state.created_at, active)
        if earlier:
            return self._decided(cause, earlier, lead.state, used, directory, timers, now, fired)
        at_trigger = state_at_trigger(str(lead_id), logged, cause_id)
        unit.adopt(lead)
        result = step(at_trigger, trigger, used, directory, unit, now, fired, checkpoint=checkpoint)
        # Before the rotations move: the other versions see the workloads this one saw.
        others: list[tuple[str, int, Aside]] = []
        if trials is not None:
            for mode, version in comparisons(used.version, active.version, trials.trials):
                other = active if version == active.version else trials.rulesets[version]
                aside = self._decide_aside(
                    at_trigger, trigger, other, directory, unit, now, fired, cause, timers, trials
                )
                others.append((mode, version, aside))
        decided = [
            lead.record_decision(
                decision,
                event_id=decided_event_id(f"decision:{lead_id}:{cause_id}:{i}"),
                occurred_at=now,
                ruleset_version=used.version,
                caused_by=cause_id,
                traceparent=cause.traceparent,  # a decision belongs to its cause's trace
            )
            for i, decision in enumerate(result.decisions)
        ]
        for team_id, rep_id in result.rotations:
            unit.rotation_for_change(team_id).choose(str(lead_id), rep_id)
        new = [e.to_logged() for e in decided]
        outcome = self._decided(cause, new, lead.state, used, directory, timers, now, fired)
        rows = []
        if others:
            used_facts = decision_facts(result.decisions, timers, outcome.timers)
            used_rules = _rules_of(result.decisions)
            for mode, version, (other_decisions, other_timers, error) in others:
                other_facts = decision_facts(other_decisions, timers, other_timers)
                rows.append(
                    ShadowDecision(
                        lead_id=str(lead_id),
                        cause_id=cause_id,
                        trigger=trigger,
                        decided_at=now,
                        mode=mode,
                        version_used=used.version,
                        other_version=version,
                        used_decisions=used_facts,
                        other_decisions=other_facts,
                        used_rules=used_rules,
                        other_rules=_rules_of(other_decisions),
                        agrees=error is None and facts_agree(used_facts, other_facts),
                        error=error,
                    )
                )
        unit.save()
        with recorder_of(self).transaction(commit=True) as session:
            # Joins the decision's transaction: the deadlines are those of these decisions.
            deadlines.replace(
                session.connection(),
                str(lead_id),
                outcome.timers,
                sequence=lead.state.last_sequence,
                ruleset_version=used.version,
            )
            if rows:
                shadow_decisions.record(session.connection(), rows)
        failures = sum(1 for row in rows if row.error is not None)
        return Decided(outcome.events, outcome.state, outcome.timers, used, failures)

    def _decide_aside(
        self,
        at_trigger: LeadState,
        trigger: str,
        other: ActiveRuleset,
        directory: Directory,
        unit: UnitOfWork,
        now: datetime,
        fired: RunningTimer | None,
        cause: LoggedEvent,
        timers: Mapping[str, RunningTimer],
        trials: TrialRulesets,
    ) -> Aside:
        """What `other` decides for the trigger on the same state and workloads, with the
        timers it would run; changes nothing. Its failure (an error, its own time budget
        spent) is returned as text, never raised: the real decision goes on."""
        budget = trials.shadow_budget() if trials.shadow_budget is not None else None
        try:
            result = step(
                at_trigger, trigger, other, directory, unit, now, fired, checkpoint=budget
            )
            happened = [
                (d.type, f"{cause.event_id}:v{other.version}:{i}", d.data)
                for i, d in enumerate(result.decisions)
            ]
            calendar = directory.lead_calendar(result.state.owner, result.state.team)
            planned = self._plan(cause, happened, other, timers, now, fired, calendar)
        except Exception as error:  # a measurement: whatever it raises is recorded
            log.warning(
                "lead %s: %s under version %s (shadow) failed: %s",
                at_trigger.lead_id,
                trigger,
                other.version,
                error,
            )
            return [], dict(timers), f"{type(error).__name__}: {error}"
        return result.decisions, planned, None

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
        happened = [(e.type, e.event_id, e.data) for e in events]
        # Business timers count in the calendar of the owner's team (else the lead's team)
        # after the decisions.
        calendar = directory.lead_calendar(state.owner, state.team)
        planned = Decisions._plan(cause, happened, active, timers, now, fired, calendar)
        return Decided(events, state, planned, active)

    @staticmethod
    def _plan(
        cause: LoggedEvent,
        decided: list[tuple[str, str, dict[str, Any]]],
        active: ActiveRuleset,
        timers: Mapping[str, RunningTimer],
        now: datetime,
        fired: RunningTimer | None,
        calendar: BusinessCalendar | None,
    ) -> dict[str, RunningTimer]:
        """The running timers once the trigger and its decisions ((type, id, data)) happened;
        business timers count in `calendar`."""
        happened = [(cause.type, cause.event_id, cause.data), *decided]
        specs = active.ruleset.timers
        planned = plan_timers(
            timers, specs, [(type_, id_) for type_, id_, _ in happened], now, calendar
        )
        planned = without_history(timers, planned, cause, now, specs, calendar)
        return plan_sequences(planned, active.ruleset.sequences, happened, now, fired)

    def fire_timer(
        self,
        lead_id: UUID,
        timer: RunningTimer,
        active: ActiveRuleset,
        directory: Directory,
        timers: Mapping[str, RunningTimer],
        *,
        checkpoint: Checkpoint | None = None,
        trials: TrialRulesets | None = None,
    ) -> Decided:
        """Record `lead.timer_fired` (once, however often this is retried) and run the rules
        for `timer.<id>` at the time the timer was due. The result's events start with the
        `lead.timer_fired` event, recorded under the version that decides the lead."""
        fired_id = decided_event_id(f"timer:{lead_id}:{timer.timer_id}:{timer.due_at}")
        used = active
        if trials is not None and trials.trials.canary is not None:
            created_at = self.lead_state(lead_id).created_at
            used = trials.for_lead(str(lead_id), created_at, active)
        fired = self.record_once(
            lead_id,
            Decision("lead.timer_fired", fired_timer_data(timer)),
            event_id=fired_id,
            occurred_at=timer.due,
            ruleset_version=used.version,
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
            trials=trials,
        )
        return Decided(
            [fired, *decided.events],
            decided.state,
            decided.timers,
            decided.ruleset,
            decided.shadow_failures,
        )


def _rules_of(decisions: list[Decision]) -> list[str]:
    return list(dict.fromkeys(d.rule_id for d in decisions if d.rule_id))
