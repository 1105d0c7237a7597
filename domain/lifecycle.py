"""The pure lifecycle step: what leadflow decides when something happens to a lead.

`step(state, trigger, ruleset, now, ...)` evaluates the active ruleset for the trigger and
turns the fired actions into decided events (SPEC §4, §5), folding each into the state as
it goes so later actions see earlier ones. No I/O and no clock: the rep workloads and the
team rotation come in through `Workloads`, the time as `now`. `LeadWorkflow` (through the
decisions activity) and the replay simulator drive this same function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Protocol

from domain.directory import Directory
from domain.state import STAGE_ORDER, Decision, LeadState, LoggedEvent, apply_event
from domain.timers import RunningTimer, due_after, watches_deliveries
from rules.assignment import can_take, choose_rep
from rules.catalog import (
    ActionParams,
    AddScore,
    AddTag,
    AssignToRep,
    AssignToTeam,
    AssignVariant,
    CreateTask,
    EnrollInSequence,
    ExitSequence,
    Notify,
    ReturnToPool,
    SetIntent,
    SetStage,
)
from rules.compile import CompiledRuleset
from rules.evaluate import Checkpoint, evaluate, facts_for
from rules.experiments import assign_variant
from rules.model import Ruleset

# Decided events may trigger rules too (e.g. `when: ["lead.assigned"]`); this bounds a cascade.
MAX_CASCADE = 8


class Workloads(Protocol):
    """What assignment needs from the log: open leads per rep, a team's last pick."""

    def open_leads(self, rep_id: str) -> int: ...

    def last_assigned(self, team_id: str) -> str | None: ...


@dataclass(frozen=True)
class ActiveRuleset:
    version: int | None
    ruleset: Ruleset
    compiled: CompiledRuleset

    @cached_property
    def watches_deliveries(self) -> bool:
        """`domain.timers.watches_deliveries`, worked out once per version, not per decision
        (5% of a replay's time when it was)."""
        return watches_deliveries(self.ruleset)


@dataclass
class StepResult:
    # The lead after the decisions, each folded as recorded right after the state's last
    # event (sequence + 1, the active version, at `now`): what folding the log gives when
    # nothing else was appended in between.
    state: LeadState
    decisions: list[Decision] = field(default_factory=list)
    # Round-robin picks to record in the teams' rotations: (team, rep).
    rotations: list[tuple[str, str]] = field(default_factory=list)


class _Step:
    def __init__(
        self,
        state: LeadState,
        active: ActiveRuleset,
        directory: Directory,
        workloads: Workloads,
        now: datetime,
        checkpoint: Checkpoint | None,
    ) -> None:
        self.result = StepResult(state)
        self.active = active
        self.directory = directory
        self.workloads = workloads
        self.now = now
        self.checkpoint = checkpoint
        self.now_text = ""  # `now` in RFC 3339, made on the first decision
        # Leads this step gave to or took from reps, on top of what the log says.
        self.taken: dict[str, int] = {}
        self.trigger = ""

    @property
    def state(self) -> LeadState:
        return self.result.state

    def decide(self, type_: str, data: dict[str, object], rule_id: str | None) -> None:
        decision = Decision(type_, data, rule_id)
        state = self.result.state
        before = state.open_owner
        self.result.decisions.append(decision)
        if not self.now_text:
            self.now_text = self.now.isoformat()
        # Folded as it will be recorded, right after what the state has seen, so the
        # result's state is the lead after the trigger's decisions (see `StepResult`).
        stand_in = LoggedEvent(
            lead_id=state.lead_id,
            sequence=state.last_sequence + 1,
            event_id="",
            type=type_,
            occurred_at=self.now_text,
            recorded_at=self.now_text,
            data=dict(data),
            rule_id=rule_id,
            ruleset_version=self.active.version,
        )
        self.result.state = state = apply_event(state, stand_in)
        after = state.open_owner
        if before != after:
            if before is not None:
                self.taken[before] = self.taken.get(before, 0) - 1
            if after is not None:
                self.taken[after] = self.taken.get(after, 0) + 1

    def load(self, rep_id: str) -> int:
        return self.workloads.open_leads(rep_id) + self.taken.get(rep_id, 0)

    def to_pool(self, reason: str, rule_id: str | None) -> None:
        if not self.state.in_pool:
            self.decide(
                "lead.returned_to_pool",
                {"reason": reason, "previous_owner": self.state.owner},
                rule_id,
            )

    def run(self, trigger: str, timer: RunningTimer | None) -> None:
        self.trigger = trigger
        if timer is not None and timer.sequence is not None:
            self.nurture_step(timer.sequence, timer.step or 0)
            return
        triggers = [trigger]
        for _ in range(MAX_CASCADE):
            if not triggers:
                break
            decided_before = len(self.result.decisions)
            for name in triggers:
                self.exit_sequences_on(name)
                if not self.active.compiled.rules_for(name):
                    continue  # most decided events trigger no rule: spare the facts
                state = self.result.state
                facts = facts_for(state, self.now, state.variants)
                for fired in evaluate(self.active.compiled, name, facts, self.checkpoint):
                    for action in fired.actions:
                        self.apply(action, fired.rule_id)
            triggers = [d.type for d in self.result.decisions[decided_before:]]
        if trigger == "lead.captured" and self.state.owner is None and not self.state.in_pool:
            self.to_pool("unassigned", None)

    def exit_sequences_on(self, event_type: str) -> None:
        """End every sequence whose `exit_on` lists this event; an unsubscribe, and
        anything else that put the lead on do-not-contact (a hard bounce, an admin), ends
        all of them."""
        for sequence in self.state.sequences:
            spec = self.active.ruleset.sequences.get(sequence)
            exits = spec.exit_on if spec is not None else []
            if event_type in exits or event_type == "lead.unsubscribed":
                self.decide("nurture.exited", {"sequence": sequence, "reason": event_type}, None)
            elif self.state.do_not_contact:
                self.exit(sequence, "do_not_contact", None)

    def exit(self, sequence: str, reason: str, rule_id: str | None) -> None:
        self.decide("nurture.exited", {"sequence": sequence, "reason": reason}, rule_id)

    def nurture_step(self, sequence: str, index: int) -> None:
        """A sequence step is due: queue its email, and end the sequence after its last
        step. A lead on do-not-contact, or without an email address, gets none: the
        sequence ends, saying why."""
        if sequence not in self.state.sequences:
            return
        spec = self.active.ruleset.sequences.get(sequence)
        unreachable = self.unreachable()
        if spec is None or index >= len(spec.steps) or unreachable:
            self.exit(sequence, unreachable or "sequence_removed", None)
            return
        email = {
            "to": "lead",
            "template": spec.steps[index].template,
            "channel": "email",
            "sequence": sequence,
            "step": index,
        }
        self.decide("notification.queued", email, None)
        if index + 1 == len(spec.steps):
            self.decide("nurture.exited", {"sequence": sequence, "reason": "completed"}, None)

    def unreachable(self) -> str | None:
        """Why no nurture email may go to the lead ("do_not_contact", "no_email"), or None."""
        if self.state.do_not_contact:
            return "do_not_contact"
        if not self.state.email:
            return "no_email"
        return None

    def apply(self, action: ActionParams, rule_id: str) -> None:
        s = self.state
        match action:
            case AssignToRep(rep=rep_id, reassign=reassign):
                if (s.owner is not None and not reassign) or s.owner == rep_id or s.is_closed:
                    return
                rep = self.directory.rep(rep_id)
                if rep is None or not can_take(rep, {rep.id: self.load(rep.id)}):
                    self.to_pool("rep_unavailable", rule_id)
                    return
                self.decide(
                    "lead.assigned", {"owner": rep.id, "team": rep.team, "strategy": "rep"}, rule_id
                )
            case AssignToTeam(team=team_id, strategy=strategy, reassign=reassign):
                if (s.owner is not None and not reassign) or s.is_closed:
                    return
                reps = [r for r in self.directory.reps_of(team_id) if r.id != s.owner]
                loads = {r.id: self.load(r.id) for r in reps}
                chosen = choose_rep(reps, strategy, loads, self.workloads.last_assigned(team_id))
                if chosen is None:
                    self.to_pool("team_unavailable", rule_id)
                    return
                self.decide(
                    "lead.assigned",
                    {"owner": chosen, "team": team_id, "strategy": strategy},
                    rule_id,
                )
                if strategy == "round_robin":
                    self.result.rotations.append((team_id, chosen))
            case ReturnToPool(reason=reason):
                self.to_pool(reason, rule_id)
            case CreateTask(task=task, due_in=due_in, calendar=clock):
                calendar = self.directory.lead_calendar(s.owner, s.team) if clock else None
                due_at = due_after(self.now, due_in, calendar).isoformat()
                self.decide("lead.task_created", {"task": task, "due_at": due_at}, rule_id)
            case EnrollInSequence(sequence=sequence):
                if sequence in s.sequences:
                    return
                # Not enrolled, and the log says why (docs/consent.md).
                unreachable = self.unreachable()
                if unreachable:
                    self.exit(sequence, unreachable, rule_id)
                else:
                    self.decide("nurture.enrolled", {"sequence": sequence}, rule_id)
            case ExitSequence(sequence=sequence):
                for enrolled in s.sequences:
                    if sequence is None or enrolled == sequence:
                        self.decide(
                            "nurture.exited", {"sequence": enrolled, "reason": "rule"}, rule_id
                        )
            case SetIntent(intent=intent):
                if s.intent != intent:
                    self.decide("lead.intent_set", {"intent": intent}, rule_id)
            case AddScore(points=points):
                self.decide("lead.scored", {"score": s.score + points, "delta": points}, rule_id)
            case SetStage(stage=stage):
                if not s.is_closed and STAGE_ORDER[stage] > STAGE_ORDER[s.stage]:
                    self.decide("lead.stage_changed", {"stage": stage, "from": s.stage}, rule_id)
            case AssignVariant(experiment=experiment):
                spec = self.active.ruleset.experiments.get(experiment)
                if spec is not None and experiment not in s.variants:
                    weights = {name: v.weight for name, v in spec.variants.items()}
                    variant = assign_variant(s.lead_id, experiment, weights)
                    self.decide(
                        "experiment.variant_assigned",
                        {"experiment": experiment, "variant": variant},
                        rule_id,
                    )
            case AddTag(tag=tag):
                if tag not in s.tags:
                    self.decide("lead.tagged", {"tag": tag}, rule_id)
            case Notify(to=to, template=template, channel=channel):
                # Queued on the log with the other decisions; the workflow then sends it
                # in an activity that retries without blocking the lead.
                queued: dict[str, object] = {"to": to, "template": template, "channel": channel}
                self.decide("notification.queued", queued, rule_id)
                if self.trigger.startswith("timer.") and to == "owner":
                    timer = self.trigger.removeprefix("timer.")
                    reminder: dict[str, object] = {"timer": timer, "template": template}
                    self.decide("lead.reminder_sent", reminder, rule_id)


def step(
    state: LeadState,
    trigger: str,
    active: ActiveRuleset,
    directory: Directory,
    workloads: Workloads,
    now: datetime,
    timer: RunningTimer | None = None,
    *,
    checkpoint: Checkpoint | None = None,
) -> StepResult:
    """The decisions for `trigger` (an event type, or `timer.<id>` with the `timer` that
    fired) on a lead in `state`.

    `checkpoint`, when given, is called before each rule is tested, cascades included;
    whatever it raises ends the step with no result (a caller's time budget, say).
    """
    run = _Step(state, active, directory, workloads, now, checkpoint)
    run.run(trigger, timer)
    return run.result
