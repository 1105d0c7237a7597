"""What a candidate ruleset changes, lead by lead, and whether a replay is faithful.

`summarise` boils a `SimulatedRun` down to what the diff reads of each lead (a
`RunOutcome`: small enough to send between processes), and `compare(baseline, candidate)`
turns two of them into a `ReplayDiff`: leads whose assignment changes, load per rep,
reclaims, reminders, nurture, notifications and the rules that fired differently, every
row with the lead ids behind it (SPEC §8).
`verify` replays the log under the versions that were active and reports every lead whose
decisions differ from the recorded ones.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID

from domain.directory import Directory
from domain.state import LoggedEvent, is_trigger
from replay.simulator import (
    ReportProgress,
    SimulatedLead,
    SimulatedRun,
    log_horizon,
    recorded_history,
    ruleset_timeline,
    simulate,
)
from rules.catalog import DELIVERY_EVENT_TYPES
from rules.model import Ruleset
from store.log import EventLog
from store.rulebook import Rulebook

POOL = "(pool)"


@dataclass(frozen=True)
class AssignmentChange:
    """A lead that ends with another owner (or in the pool) under the candidate."""

    lead_id: str
    from_owner: str | None
    from_team: str | None
    to_owner: str | None
    to_team: str | None


@dataclass(frozen=True)
class Movement:
    """How often something happened under each run (reclaims for one reason, reminders
    from one timer, ...), with the leads that got more of it and those that got less."""

    kind: str
    detail: str
    baseline: int
    candidate: int
    gained: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HolderChange:
    """A rep's or team's leads: gained and lost by the candidate, open load before/after."""

    holder: str
    gained: list[str]
    lost: list[str]
    load_before: int | None = None
    load_after: int | None = None


@dataclass(frozen=True)
class ReplayDiff:
    leads_replayed: int
    events_replayed: int
    assignments: list[AssignmentChange]
    reps: list[HolderChange]
    teams: list[HolderChange]
    movements: list[Movement]
    rules: list[Movement]
    # Rule ids the candidate adds, removes or edits, against the baseline's ruleset.
    rules_changed: list[str] = field(default_factory=list)
    # The result in business terms, with names (`replay.summary`); set by whoever knows
    # the directory and the window (`replay.whatif.answer`).
    summary: list[str] = field(default_factory=list)

    @property
    def unchanged(self) -> bool:
        """Nothing a user would see differs."""
        return not (self.assignments or self.movements or self.rules)


def _outcome(event: LoggedEvent) -> tuple[str, str] | None:
    """The outcome row an event counts in, if any: (kind, detail)."""
    d = event.data
    match event.type:
        case "lead.returned_to_pool":
            return "reclaim", str(d.get("reason"))
        case "lead.reminder_sent":
            return "reminder", str(d.get("timer"))
        case "nurture.enrolled":
            return "nurture enrolment", str(d.get("sequence"))
        case "notification.queued" if d.get("to") == "lead":
            return "email to lead", str(d.get("template"))
        case "notification.queued":
            return "notification", f"{d.get('to')}: {d.get('template')}"
    return None


# How often each row's key, (kind, detail) or ("rule", rule id), happened to one lead.
Counts = dict[tuple[str, str], int]


def _counts(log: list[LoggedEvent]) -> tuple[Counts, Counts]:
    """How often each outcome (see `_outcome`) and each rule occurs among a lead's
    decisions; a rule counts once per trigger it fired for, however many decisions it
    made then."""
    outcomes: Counts = {}
    rules: Counts = {}
    fired: set[tuple[str, str]] = set()
    for event in log:
        if event.caused_by is None:  # posted, not decided
            continue
        outcome = _outcome(event)
        if outcome is not None:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if event.rule_id is not None and (event.caused_by, event.rule_id) not in fired:
            fired.add((event.caused_by, event.rule_id))
            rule = ("rule", event.rule_id)
            rules[rule] = rules.get(rule, 0) + 1
    return outcomes, rules


@dataclass(frozen=True)
class LeadOutcome:
    """What the diff reads of one replayed lead: where it ended and how often each
    outcome and rule happened to it."""

    owner: str | None  # None: in the pool or never assigned
    team: str | None
    open_owner: str | None  # the rep it counts against at the end (capacity)
    outcomes: Counts
    rules: Counts

    @classmethod
    def of(cls, lead: SimulatedLead) -> LeadOutcome:
        state = lead.state
        owner = None if state.in_pool else state.owner
        return cls(owner, state.team, state.open_owner, *_counts(lead.log))


NO_OUTCOME = LeadOutcome(None, None, None, {}, {})


@dataclass(frozen=True)
class RunOutcome:
    """A replay run as the diff reads it: every lead's outcome, in the order the history
    first mentions them. A few counts per lead, where the run it summarises holds every
    replayed event: this is what crosses from the process that ran it to the one that
    diffs (see `replay.whatif`)."""

    leads: dict[str, LeadOutcome]
    events_replayed: int
    # The process that replayed it (the diff does not read it; it says where a run ran).
    replayed_in: int

    def open_leads(self) -> dict[str, int]:
        """Open leads per rep at the end, counting the replayed leads only."""
        loads: dict[str, int] = {}
        for lead in self.leads.values():
            if lead.open_owner is not None:
                loads[lead.open_owner] = loads.get(lead.open_owner, 0) + 1
        return loads


def summarise(run: SimulatedRun) -> RunOutcome:
    """What `compare` needs of `run`, lead by lead."""
    leads = {lead_id: LeadOutcome.of(lead) for lead_id, lead in run.leads.items()}
    return RunOutcome(leads, run.events_replayed, os.getpid())


def _movements(
    baseline: RunOutcome,
    candidate: RunOutcome,
    lead_ids: list[str],
    counts: Callable[[LeadOutcome], Counts],
) -> list[Movement]:
    """One row per key whose count changes for at least one lead."""
    totals: dict[tuple[str, str], tuple[int, int]] = {}
    gained: dict[tuple[str, str], list[str]] = {}
    lost: dict[tuple[str, str], list[str]] = {}
    for lead_id in lead_ids:
        before = counts(baseline.leads.get(lead_id, NO_OUTCOME))
        after = counts(candidate.leads.get(lead_id, NO_OUTCOME))
        if before == after:
            # Same counts: the totals move alike and no lead gains or loses.
            for name, count in before.items():
                before_total, after_total = totals.get(name, (0, 0))
                totals[name] = (before_total + count, after_total + count)
            continue
        for name in before.keys() | after.keys():
            count_before, count_after = before.get(name, 0), after.get(name, 0)
            before_total, after_total = totals.get(name, (0, 0))
            totals[name] = (before_total + count_before, after_total + count_after)
            if count_after > count_before:
                gained.setdefault(name, []).append(lead_id)
            elif count_after < count_before:
                lost.setdefault(name, []).append(lead_id)
    rows = []
    for name in sorted(set(gained) | set(lost)):
        before_total, after_total = totals[name]
        rows.append(
            Movement(*name, before_total, after_total, gained.get(name, []), lost.get(name, []))
        )
    return rows


def _holders(
    changes: list[AssignmentChange],
    pick: Callable[[AssignmentChange, bool], str | None],
    loads: tuple[dict[str, int], dict[str, int]] | None,
) -> list[HolderChange]:
    gained: dict[str, list[str]] = {}
    lost: dict[str, list[str]] = {}
    for change in changes:
        before, after = pick(change, False), pick(change, True)
        if before == after:
            continue
        lost.setdefault(before or POOL, []).append(change.lead_id)
        gained.setdefault(after or POOL, []).append(change.lead_id)
    rows = []
    for holder in sorted(set(gained) | set(lost)):
        load_before = loads[0].get(holder, 0) if loads and holder != POOL else None
        load_after = loads[1].get(holder, 0) if loads and holder != POOL else None
        rows.append(
            HolderChange(
                holder, gained.get(holder, []), lost.get(holder, []), load_before, load_after
            )
        )
    return rows


def changed_rules(baseline: Ruleset, candidate: Ruleset) -> list[str]:
    """Ids of the rules the candidate adds, removes or edits."""
    before = {rule.id: rule.model_dump(mode="json") for rule in baseline.rules}
    after = {rule.id: rule.model_dump(mode="json") for rule in candidate.rules}
    return sorted(i for i in set(before) | set(after) if before.get(i) != after.get(i))


def compare(
    baseline: RunOutcome, candidate: RunOutcome, rules_changed: list[str] | None = None
) -> ReplayDiff:
    """What the candidate run does differently from the baseline run, lead by lead
    (`rules_changed`, from `changed_rules`, is reported as given)."""
    lead_ids = list(dict.fromkeys([*baseline.leads, *candidate.leads]))
    assignments = []
    for lead_id in lead_ids:
        before = baseline.leads.get(lead_id, NO_OUTCOME)
        after = candidate.leads.get(lead_id, NO_OUTCOME)
        if (before.owner, before.team) != (after.owner, after.team):
            assignments.append(
                AssignmentChange(lead_id, before.owner, before.team, after.owner, after.team)
            )
    loads = (baseline.open_leads(), candidate.open_leads())
    reps = _holders(assignments, lambda c, to: c.to_owner if to else c.from_owner, loads)
    teams = _holders(assignments, lambda c, to: c.to_team if to else c.from_team, None)
    movements = _movements(baseline, candidate, lead_ids, lambda lead: lead.outcomes)
    rules = _movements(baseline, candidate, lead_ids, lambda lead: lead.rules)
    return ReplayDiff(
        leads_replayed=len(lead_ids),
        events_replayed=candidate.events_replayed,
        assignments=assignments,
        reps=reps,
        teams=teams,
        movements=movements,
        rules=rules,
        rules_changed=rules_changed or [],
    )


def to_json(diff: ReplayDiff) -> dict[str, Any]:
    """The diff as plain JSON values (what `--format json` prints)."""
    report = asdict(diff)
    report["unchanged"] = diff.unchanged
    return report


# -- faithfulness ------------------------------------------------------------------------

DecidedFact = tuple[str, str, str | None, int | None]  # type, data (JSON), rule, version


@dataclass(frozen=True)
class Mismatch:
    """A lead whose replayed decisions differ from the recorded ones, from `position` on
    (an index into both lists)."""

    lead_id: str
    position: int
    recorded: list[DecidedFact]
    replayed: list[DecidedFact]


def _fact(event: LoggedEvent) -> DecidedFact:
    data = json.dumps(event.data, sort_keys=True, default=str)
    return event.type, data, event.rule_id, event.ruleset_version


def _decided_here(event: LoggedEvent) -> bool:
    """Whether the lifecycle decided `event` (not a delivery's record of what I/O did)."""
    return event.type not in DELIVERY_EVENT_TYPES


def recorded_decisions(stream: list[LoggedEvent]) -> list[LoggedEvent]:
    """A recorded stream's decided events in logical order: each trigger's decisions right
    after it (an event posted while the previous one was decided lands physically before
    those decisions; see `domain.state.state_at_trigger`)."""
    by_cause: dict[str, list[LoggedEvent]] = {}
    for event in stream:
        if not is_trigger(event) and event.caused_by is not None:
            by_cause.setdefault(event.caused_by, []).append(event)
    ordered: list[LoggedEvent] = []
    for event in stream:
        if not is_trigger(event):
            continue
        if event.caused_by is not None:
            ordered.append(event)  # a fired timer is itself decided
        ordered.extend(by_cause.get(event.event_id, []))
    return ordered


def verify(
    event_log: EventLog,
    rulebook: Rulebook,
    directory: Directory,
    *,
    progress: ReportProgress | None = None,
) -> list[Mismatch]:
    """Replay the whole log under the versions that were active at each event's time and
    return every lead whose decisions (type, data, rule, version) differ from the log's.

    What a delivery records (`notification.sent`, `nurture.email_sent`) is left out of both
    sides: it is the outcome of I/O (an SMTP server, a webhook), which the replay only
    simulates for rulesets whose timers watch it, as if every delivery succeeded at once;
    the timers it starts are still compared, by their `lead.timer_fired` and its decisions.
    Timers fire only up to the log's last recorded time, the replay's "now".
    """
    history = recorded_history(event_log)
    run = simulate(
        history,
        ruleset_timeline(rulebook),
        directory,
        until=log_horizon(event_log),
        progress=progress,
    )
    mismatches = []
    for lead_id, lead in run.leads.items():
        stream = event_log.lead_events(UUID(lead_id))
        recorded = [_fact(e) for e in recorded_decisions(stream) if _decided_here(e)]
        replayed = [_fact(e) for e in lead.decided if _decided_here(e)]
        if recorded != replayed:
            position = next(
                (i for i, (r, s) in enumerate(zip(recorded, replayed, strict=False)) if r != s),
                min(len(recorded), len(replayed)),
            )
            mismatches.append(Mismatch(lead_id, position, recorded, replayed))
    return mismatches
