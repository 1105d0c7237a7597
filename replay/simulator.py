"""What-if replay: every lead's external events, re-run through the pure lifecycle on one
virtual clock (SPEC §8).

Each lead gets a `LeadMachine` (the same `step`, `plan_timers` and `plan_sequences` that
`LeadWorkflow` drives through its activities). All leads share one clock and one set of
rep workloads and team rotations, so capacity and round robin see the other leads exactly
as the system did: before each event, every timer due by then fires, earliest first across
leads. Nothing is written anywhere; the log is only read, by the helpers at the bottom.
"""

from __future__ import annotations

import gc
import heapq
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.configuration import RULESET_ACTIVATIONS_ID, RulesetActivations
from domain.directory import Directory
from domain.lifecycle import ActiveRuleset
from domain.machine import LeadMachine
from domain.state import LeadState, LoggedEvent
from domain.timers import next_due
from domain.trials import TrialTimeline, ruleset_version_for
from rules.compile import compile_ruleset
from rules.model import Ruleset
from store.log import EventLog
from store.rulebook import Rulebook

RulesetFor = Callable[[datetime], ActiveRuleset]
ReportProgress = Callable[[int, int], None]

# How many events between two progress reports: often enough for a smooth bar.
PROGRESS_EVERY = 200
HISTORY_PAGE = 1000


@dataclass
class SharedWorkloads:
    """Open leads per rep and each team's last round-robin pick, kept from the decided
    events of every simulated lead (what `RepWorkload` and `TeamRotation` keep on the log)."""

    open: dict[str, int] = field(default_factory=dict)
    rotation: dict[str, str] = field(default_factory=dict)

    def open_leads(self, rep_id: str) -> int:
        """Leads `rep_id` holds open now, on the virtual clock."""
        return self.open.get(rep_id, 0)

    def last_assigned(self, team_id: str) -> str | None:
        """The rep the team's round robin picked last."""
        return self.rotation.get(team_id)

    def moved(self, before: str | None, after: str | None) -> None:
        """A lead's open owner went from `before` to `after`."""
        if before == after:
            return
        if before is not None:
            self.open[before] = self.open.get(before, 0) - 1
        if after is not None:
            self.open[after] = self.open.get(after, 0) + 1

    def rotated(self, decided: Iterable[LoggedEvent]) -> None:
        """Record the round-robin picks among `decided` (the lifecycle's `rotations`)."""
        for event in decided:
            if event.type == "lead.assigned" and event.data.get("strategy") == "round_robin":
                self.rotation[str(event.data["team"])] = str(event.data["owner"])


@dataclass(frozen=True)
class SimulatedLead:
    """One lead's replayed stream (external and decided events, in logical order) and its
    state at the end."""

    lead_id: str
    log: list[LoggedEvent]
    state: LeadState

    @property
    def decided(self) -> list[LoggedEvent]:
        """What leadflow decided (fired timers included), in order."""
        return [e for e in self.log if e.caused_by is not None]


@dataclass(frozen=True)
class SimulatedRun:
    """Every replayed lead, in the order the history first mentions them."""

    leads: dict[str, SimulatedLead]
    events_replayed: int
    horizon: datetime | None

    def open_leads(self) -> dict[str, int]:
        """Open leads per rep at the end, counting the replayed leads only."""
        loads: dict[str, int] = {}
        for lead in self.leads.values():
            owner = lead.state.open_owner
            if owner is not None:
                loads[owner] = loads.get(owner, 0) + 1
        return loads


def select_history(
    history: Sequence[LoggedEvent],
    *,
    captured_from: datetime | None = None,
    captured_to: datetime | None = None,
    lead_id: str | None = None,
) -> list[LoggedEvent]:
    """The events of the leads first captured in [`captured_from`, `captured_to`) (by the
    capture's `occurred_at`), or of one lead; every event of a selected lead is kept, so
    its timers and later touches play out as they did."""
    if captured_from is None and captured_to is None and lead_id is None:
        return list(history)  # every lead: no capture times to look up
    captured: dict[str, datetime] = {}
    for event in history:
        if event.type == "lead.captured" and event.lead_id not in captured:
            captured[event.lead_id] = datetime.fromisoformat(event.occurred_at)

    def wanted(lead: str) -> bool:
        at = captured.get(lead)
        if lead_id is not None and lead != lead_id:
            return False
        if at is None:
            return captured_from is None and captured_to is None
        if captured_from is not None and at < captured_from:
            return False
        return captured_to is None or at < captured_to

    return [e for e in history if wanted(e.lead_id)]


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (process-wide) while a replay runs.

    A replay allocates a few objects per event and keeps them (the leads' logs), none of
    them in reference cycles; with the collector on, its repeated passes over that growing
    heap took a quarter of the replay's time (100k events). Reference counting still frees
    everything else at once; cycles made meanwhile by other threads wait until it resumes.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def simulate(
    history: Sequence[LoggedEvent],
    ruleset_for: RulesetFor,
    directory: Directory,
    *,
    until: datetime | None = None,
    progress: ReportProgress | None = None,
) -> SimulatedRun:
    """Replay `history` (external events, in log order, each at its `recorded_at`) under
    `ruleset_for(time)` and return every lead's decisions.

    Timers fire in virtual time, earliest first across all leads, before any event recorded
    after them; after the last event they fire up to `until` (default: the last event's
    time), the "now" of the replay. Reports `progress(events done, events)` every
    `PROGRESS_EVERY` events and at the last, and every `PROGRESS_EVERY` timers fired
    between two events, so a caller can stop the run (by raising) even while only timers
    fire. Pure: reads nothing, writes nothing (it pauses the cyclic garbage collector while
    it runs, see `cycle_collection_paused`).
    """
    with cycle_collection_paused():
        return _simulate(history, ruleset_for, directory, until, progress)


def _simulate(
    history: Sequence[LoggedEvent],
    ruleset_for: RulesetFor,
    directory: Directory,
    until: datetime | None,
    progress: ReportProgress | None,
) -> SimulatedRun:
    workloads = SharedWorkloads()
    machines: dict[str, LeadMachine] = {}
    # (due, lead order, lead id): the earliest running timer of each lead; stale entries
    # (a timer cancelled or restarted since) are skipped when popped.
    due_heap: list[tuple[datetime, int, str]] = []
    order: dict[str, int] = {}
    total = len(history)

    def schedule(machine: LeadMachine) -> None:
        due = next_due(machine.timers)
        if due is not None:
            heapq.heappush(due_heap, (due.due, order[machine.lead_id], machine.lead_id))

    def fire_until(at: datetime, done: int) -> None:
        fired = 0
        while due_heap and due_heap[0][0] <= at:
            when, _, lead = heapq.heappop(due_heap)
            machine = machines[lead]
            due = next_due(machine.timers)
            if due is None or due.due != when:
                continue
            machine.active = _ruleset_of(ruleset_for, when, machine)
            before = machine.state.open_owner
            decided = machine.fire(due)
            workloads.moved(before, machine.state.open_owner)
            workloads.rotated(decided)
            schedule(machine)
            fired += 1
            # Timers alone may run long between two events (a timer restarted by its own
            # firing): the caller still hears from the run, and can stop it.
            if progress is not None and fired % PROGRESS_EVERY == 0:
                progress(done, total)

    for done, event in enumerate(history, start=1):
        at = datetime.fromisoformat(event.recorded_at)
        fire_until(at, done - 1)
        machine = machines.get(event.lead_id)
        if machine is None:
            order[event.lead_id] = len(order)
            machine = LeadMachine(event.lead_id, ruleset_for(at), directory, workloads)
            machines[event.lead_id] = machine
        machine.active = ruleset_for(at)
        before = machine.state.open_owner
        taken = machine.take(event)
        taken_owner = machine.state.open_owner
        workloads.moved(before, taken_owner)
        # After the take: a capture gives the lead the `created_at` a canary asks about.
        machine.active = _ruleset_of(ruleset_for, at, machine)
        decided = machine.decide(taken, at)
        workloads.moved(taken_owner, machine.state.open_owner)
        workloads.rotated(decided)
        schedule(machine)
        if progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
            progress(done, total)
    horizon = until
    if horizon is None and history:
        horizon = datetime.fromisoformat(history[-1].recorded_at)
    if horizon is not None:
        fire_until(horizon, total)
    if progress is not None and total == 0:
        progress(0, 0)
    leads = {
        lead: SimulatedLead(lead, list(machine.log), machine.state)
        for lead, machine in machines.items()
    }
    return SimulatedRun(leads, total, horizon)


def _ruleset_of(ruleset_for: RulesetFor, at: datetime, machine: LeadMachine) -> ActiveRuleset:
    """The version that decided this lead at `at`: a timeline of what was active also
    knows the canaries (`RulesetTimeline.for_lead`); any other `ruleset_for` is per time."""
    if isinstance(ruleset_for, RulesetTimeline):
        return ruleset_for.for_lead(at, machine.lead_id, machine.state.created_at)
    return ruleset_for(at)


def fixed(active: ActiveRuleset) -> RulesetFor:
    """One ruleset at every time (a candidate, or `--baseline VERSION`)."""
    return lambda _at: active


EMPTY_RULESET = ActiveRuleset(None, Ruleset(name="empty"), compile_ruleset(Ruleset(name="empty")))


class RulesetTimeline:
    """Which version was active when: the last activation at or before a time (before
    the first one, an empty ruleset, as `Rulebook.active` answers). Holds every version
    it can answer already compiled, so answering reads nothing: a replay's forked child
    runs it (see `replay.whatif`)."""

    def __init__(
        self,
        activations: Sequence[tuple[datetime, ActiveRuleset]],
        trials: TrialTimeline | None = None,
        canaries: dict[int, ActiveRuleset] | None = None,
    ) -> None:
        # Stable by time: two activations at the same instant keep their log order.
        ordered = sorted(activations, key=lambda activation: activation[0])
        self.times = [when for when, _ in ordered]
        self.versions = [active for _, active in ordered]
        self.trials = trials
        self.canaries = canaries or {}

    def __call__(self, at: datetime) -> ActiveRuleset:
        index = bisect_right(self.times, at)
        if index == 0:
            return EMPTY_RULESET
        return self.versions[index - 1]

    def for_lead(self, at: datetime, lead_id: str, created_at: str | None) -> ActiveRuleset:
        """The version that decided `lead_id` at `at`: the canary's for a canary lead
        (`domain.trials.ruleset_version_for`, as the decisions activity asks), else the
        active one."""
        active = self(at)
        if self.trials is None:
            return active
        version = ruleset_version_for(lead_id, created_at, active.version, self.trials(at))
        if version is None or version == active.version:
            return active
        return self.canaries[version]


def ruleset_timeline(rulebook: Rulebook) -> RulesetTimeline:
    """The activations and the canaries recorded on the log, as a `ruleset_for` for
    `simulate`, with each version that decided read and compiled now. (A shadow decided
    nothing: a replay leaves it out.)"""
    log = rulebook.log
    stored = log.recorder.select_events(RULESET_ACTIVATIONS_ID)
    events = [log.mapper.to_domain_event(s) for s in stored]
    activations = [
        (e.activated_at, rulebook.version(e.version))
        for e in events
        if isinstance(e, RulesetActivations.Activated)
    ]
    trials = rulebook.trial_timeline()
    canaries = {version: rulebook.version(version) for version in trials.versions}
    return RulesetTimeline(activations, trials, canaries)


def recorded_history(event_log: EventLog) -> list[LoggedEvent]:
    """Every external lead event on the log, in log order."""
    history: list[LoggedEvent] = []
    position = 0
    while True:
        events, last = event_log.read_lead_events_after(position, HISTORY_PAGE)
        if last is None:
            return history
        history.extend(events)
        position = last


def log_horizon(event_log: EventLog) -> datetime | None:
    """When the log's last event was recorded: the replay's "now", so timers that had not
    fired yet then do not fire in the replay either."""
    last = event_log.max_position()
    if last == 0:
        return None
    [notification] = event_log.recorder.select_notifications(start=last, limit=1)
    event: Any = event_log.mapper.to_domain_event(notification)
    when: datetime = event.timestamp
    return when
