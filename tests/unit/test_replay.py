"""What-if replay on hand-built histories, with the built-in ruleset and demo directory:
a candidate identical to the baseline changes nothing, a candidate that moves the east
website leads reports exactly those leads, leads share one clock (round robin and
capacity see the other leads' assignments and reclaims as they happened), and the
baseline replayed in a forked child gives the same outcome, progress and errors as
replayed here, without leaving a process behind."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from domain.directory import Directory, parse_directory
from domain.lifecycle import ActiveRuleset
from domain.machine import LeadMachine
from domain.state import LoggedEvent
from leadflow.replay_cli import render_table
from replay.diff import (
    changed_rules,
    compare,
    recorded_decisions,
    summarise,
    to_json,
)
from replay.simulator import SharedWorkloads, fixed, select_history, simulate
from replay.whatif import ReplayFailed, can_fork, replay_runs
from rules.compile import compile_ruleset
from rules.validation import parse_ruleset
from store.rulebook import RulesetNotFound

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


def _bundled(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(resources.files("rules").joinpath(name).read_text())
    return loaded


DIRECTORY_DOC = _bundled("default_directory.json")
DIRECTORY = parse_directory(DIRECTORY_DOC)
RULESET_DOC = _bundled("default_ruleset.json")


def active(document: dict[str, Any], version: int | None, directory: Directory) -> ActiveRuleset:
    ruleset = parse_ruleset(document, directory)
    return ActiveRuleset(version, ruleset, compile_ruleset(ruleset))


DEFAULT = active(RULESET_DOC, 1, DIRECTORY)


def moving_east_website_to(rep: str) -> dict[str, Any]:
    document = copy.deepcopy(RULESET_DOC)
    [rule] = [r for r in document["rules"] if r["id"] == "east-website"]
    rule["actions"][0]["params"]["rep"] = rep
    return document


class History:
    """External events as the log would hold them, in log order."""

    def __init__(self) -> None:
        self.events: list[LoggedEvent] = []

    def add(self, lead: str, type_: str, at: datetime, **data: Any) -> None:
        sequence = 1 + sum(1 for e in self.events if e.lead_id == lead)
        self.events.append(
            LoggedEvent(
                lead_id=lead,
                sequence=sequence,
                event_id=f"{lead}/{sequence}",
                type=type_,
                occurred_at=at.isoformat(),
                recorded_at=at.isoformat(),
                data=data,
            )
        )

    def capture(self, lead: str, at: datetime, region: str, source: str = "web") -> None:
        self.add(lead, "lead.captured", at, email=f"{lead}@x.io", region=region, source=source)


def mixed_history() -> History:
    """East website and other leads, a west lead followed up, and a low-intent lead (nurtured,
    and the west team's, as a lead from no region)."""
    history = History()
    history.capture("east-web-1", T0, "east", "website")
    history.capture("east-fair", T0 + H, "east", "fair")
    history.capture("west-1", T0 + 2 * H, "west")
    history.capture("east-web-2", T0 + 3 * H, "east", "website")
    history.add("nurtured", "lead.captured", T0 + 4 * H, email="n@x.io", intent="low")
    history.add("west-1", "lead.followed_up", T0 + 5 * H, rep_id="rep-west-1", kind="call")
    return history


def test_an_identical_candidate_changes_nothing_over_days_of_timers() -> None:
    history = mixed_history().events
    until = T0 + timedelta(days=10)  # reminders, reclaims, idle and nurture all happen
    reported: list[tuple[int, int]] = []
    baseline = simulate(
        history, fixed(DEFAULT), DIRECTORY, until=until, progress=lambda *p: reported.append(p)
    )
    assert reported[-1] == (6, 6)  # the progress bar ends full
    same = active(RULESET_DOC, None, DIRECTORY)
    candidate = simulate(history, fixed(same), DIRECTORY, until=until)

    diff = compare(
        summarise(baseline), summarise(candidate), changed_rules(DEFAULT.ruleset, same.ruleset)
    )

    assert diff.unchanged
    assert diff.assignments == [] and diff.rules_changed == []
    assert diff.leads_replayed == 5
    kinds = {e.type for lead in baseline.leads.values() for e in lead.decided}
    assert {"lead.reminder_sent", "lead.returned_to_pool", "nurture.enrolled"} <= kinds
    assert "no change" in render_table(diff)


def test_a_candidate_moving_east_website_leads_reports_exactly_those_leads() -> None:
    history = mixed_history().events
    until = T0 + 6 * H  # before any reclaim: every lead still has its first owner
    baseline = simulate(history, fixed(DEFAULT), DIRECTORY, until=until)
    moved = active(moving_east_website_to("rep-east-2"), None, DIRECTORY)
    candidate = simulate(history, fixed(moved), DIRECTORY, until=until)

    diff = compare(
        summarise(baseline), summarise(candidate), changed_rules(DEFAULT.ruleset, moved.ruleset)
    )

    assert [(c.lead_id, c.from_owner, c.to_owner) for c in diff.assignments] == [
        ("east-web-1", "rep-east-1", "rep-east-2"),
        ("east-web-2", "rep-east-1", "rep-east-2"),
    ]
    assert {c.to_team for c in diff.assignments} == {"east"}
    reps = {h.holder: h for h in diff.reps}
    assert reps["rep-east-1"].lost == ["east-web-1", "east-web-2"]
    assert reps["rep-east-2"].gained == ["east-web-1", "east-web-2"]
    # east-fair stays with rep-east-1 (the east team's round robin starts there).
    assert (reps["rep-east-1"].load_before, reps["rep-east-1"].load_after) == (3, 1)
    assert (reps["rep-east-2"].load_before, reps["rep-east-2"].load_after) == (0, 2)
    assert [t.holder for t in diff.teams] == []  # same team, another rep
    assert diff.rules_changed == ["east-website"]
    assert diff.movements == []  # reminders and notifications are the same, for other reps
    report = to_json(diff)
    assert json.loads(json.dumps(report))["assignments"][0]["lead_id"] == "east-web-1"
    assert "east-web-2" in render_table(diff)


def test_the_candidate_s_reminders_and_reclaims_are_counted_per_lead() -> None:
    history = mixed_history().events
    until = T0 + 3 * timedelta(days=1)
    without_reclaim = copy.deepcopy(RULESET_DOC)
    without_reclaim["rules"] = [r for r in RULESET_DOC["rules"] if r["id"] != "reclaim-48h"]
    baseline = simulate(history, fixed(DEFAULT), DIRECTORY, until=until)
    candidate_ruleset = active(without_reclaim, None, DIRECTORY)
    candidate = simulate(history, fixed(candidate_ruleset), DIRECTORY, until=until)

    diff = compare(summarise(baseline), summarise(candidate))

    rows = {(m.kind, m.detail): m for m in diff.movements}
    reclaims = rows["reclaim", "no_follow_up_48h"]
    # Every lead but west-1, which was followed up.
    assert sorted(reclaims.lost) == ["east-fair", "east-web-1", "east-web-2", "nurtured"]
    assert (reclaims.baseline, reclaims.candidate) == (4, 0)
    [rule] = diff.rules
    # Once per lead it fired for, though each time it both reclaimed and notified.
    assert (rule.detail, rule.baseline, rule.candidate) == ("reclaim-48h", 4, 0)
    assert {c.lead_id for c in diff.assignments} == set(reclaims.lost)
    assert {c.from_owner for c in diff.assignments} == {None}  # from the pool to their rep


def small_west_directory() -> Directory:
    document = copy.deepcopy(DIRECTORY_DOC)
    for rep in document["reps"]:
        if rep["id"] == "rep-west-1":
            rep["capacity"] = 1
    return parse_directory(document)


def test_leads_share_one_clock_as_when_each_event_is_decided_in_time_order() -> None:
    directory = small_west_directory()
    ruleset = active(RULESET_DOC, 1, directory)
    history = History()
    history.capture("a", T0, "west")  # rep-west-1, now full; reclaimed at T0 + 48 h
    history.capture("b", T0 + H, "west")
    history.capture("c", T0 + 2 * H, "west")  # rep-west-1 is full: rep-west-2 again
    history.capture("d", T0 + 47 * H, "west")
    history.add("b", "lead.followed_up", T0 + 47 * H, rep_id="rep-west-2", kind="call")
    history.capture("e", T0 + 49 * H, "west")  # a went back to the pool: rep-west-1 has room
    until = T0 + 50 * H

    run = simulate(history.events, fixed(ruleset), directory, until=until)

    # The same history, event by event in time order, each lead's timers fired first.
    workloads = SharedWorkloads()
    machines: dict[str, LeadMachine] = {}
    for event in history.events:
        at = datetime.fromisoformat(event.recorded_at)
        for machine in machines.values():
            before = machine.state.open_owner
            workloads.rotated(machine.advance(at))
            workloads.moved(before, machine.state.open_owner)
        machine = machines.setdefault(
            event.lead_id, LeadMachine(event.lead_id, ruleset, directory, workloads)
        )
        before = machine.state.open_owner
        workloads.rotated(machine.receive(event.type, event.data, at))
        workloads.moved(before, machine.state.open_owner)
    for machine in machines.values():
        machine.advance(until)

    owners = {lead: (r.state.owner, r.state.in_pool) for lead, r in run.leads.items()}
    assert owners == {lead: (m.state.owner, m.state.in_pool) for lead, m in machines.items()}
    assert owners == {
        "a": (None, True),
        "b": ("rep-west-2", False),
        "c": (None, True),
        "d": ("rep-west-2", False),
        "e": ("rep-west-1", False),
    }
    for lead, machine in machines.items():
        replayed = [(e.type, e.data, e.rule_id) for e in run.leads[lead].decided]
        assert replayed == [(e.type, e.data, e.rule_id) for e in machine.log if e.caused_by]


class Stop(Exception):
    pass


def test_a_run_can_be_stopped_while_only_timers_fire_between_two_events() -> None:
    # 1,000 leads for reps with room for them all, nobody following up, then a month
    # without events: the reminders and reclaims fire before the last event, and the run
    # reports meanwhile.
    document = copy.deepcopy(DIRECTORY_DOC)
    for rep in document["reps"]:
        rep["capacity"] = 1000
    roomy = parse_directory(document)
    history = History()
    for n in range(1000):
        history.capture(f"lead-{n}", T0, "west")
    history.add("lead-0", "lead.followed_up", T0 + timedelta(days=30), rep_id="rep-west-1")
    reported: list[tuple[int, int]] = []

    def stop_during_the_month(done: int, total: int) -> None:
        reported.append((done, total))
        if reported.count((1000, 1001)) == 2:  # the captures' own report, then a timers'
            raise Stop

    with pytest.raises(Stop):
        simulate(
            history.events,
            fixed(active(RULESET_DOC, 1, roomy)),
            roomy,
            progress=stop_during_the_month,
        )

    assert reported == [(200 * n, 1001) for n in range(1, 6)] + [(1000, 1001)]


def test_a_window_selects_leads_by_capture_time_with_all_their_events() -> None:
    history = mixed_history().events
    selected = select_history(history, captured_from=T0 + 2 * H, captured_to=T0 + 4 * H)
    assert {e.lead_id for e in selected} == {"west-1", "east-web-2"}
    assert [e.type for e in selected if e.lead_id == "west-1"] == [
        "lead.captured",
        "lead.followed_up",
    ]
    assert {e.lead_id for e in select_history(history, lead_id="nurtured")} == {"nurtured"}


def test_recorded_decisions_are_read_in_logical_order() -> None:
    def event(sequence: int, type_: str, caused_by: str | None = None) -> LoggedEvent:
        at = T0.isoformat()
        return LoggedEvent("l", sequence, f"e{sequence}", type_, at, at, caused_by=caused_by)

    # A follow-up posted while the capture was being decided lands before its decisions.
    stream = [
        event(1, "lead.captured"),
        event(2, "lead.followed_up"),
        event(3, "lead.assigned", "e1"),
        event(4, "lead.task_created", "e1"),
        event(5, "nurture.exited", "e2"),
    ]
    assert [e.event_id for e in recorded_decisions(stream)] == ["e3", "e4", "e5"]


# -- the two runs in two processes -------------------------------------------------------


def children() -> set[int]:
    """This process's child processes, zombies (exited, never joined) included."""
    ours = str(os.getpid())
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):  # gone meanwhile
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] == ours:
                found.add(int(stat.parent.name))
    return found


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


needs_fork = pytest.mark.skipif(not can_fork(), reason="the parallel replay forks")


@needs_fork
def test_the_baseline_replayed_in_a_child_gives_the_same_diff_and_progress_here() -> None:
    history = mixed_history().events
    until = T0 + 30 * H  # reminders and nurture happen, no reclaim yet
    moved = active(moving_east_website_to("rep-east-2"), None, DIRECTORY)
    reported: dict[bool, list[tuple[str, int, int]]] = {False: [], True: []}
    threads = set()
    outcomes = {}
    for parallel in (False, True):

        def progress(phase: str, done: int, total: int, parallel: bool = parallel) -> None:
            threads.add(threading.get_ident())
            reported[parallel].append((phase, done, total))

        outcomes[parallel] = replay_runs(
            history, fixed(DEFAULT), fixed(moved), DIRECTORY, until, progress, parallel=parallel
        )

    (seq_before, seq_after), (par_before, par_after) = outcomes[False], outcomes[True]
    assert par_before.replayed_in != os.getpid()  # the baseline ran in the child
    assert {seq_before.replayed_in, seq_after.replayed_in, par_after.replayed_in} == {os.getpid()}
    assert (par_before.leads, par_after.leads) == (seq_before.leads, seq_after.leads)
    diff = compare(par_before, par_after)
    assert diff == compare(seq_before, seq_after)
    assert [c.lead_id for c in diff.assignments] == ["east-web-1", "east-web-2"]
    # Both phases report, and end full, on the caller's thread only.
    assert threads == {threading.get_ident()}
    for parallel in (False, True):
        for phase in ("baseline", "candidate"):
            assert [r for r in reported[parallel] if r[0] == phase][-1] == (phase, 6, 6)


def missing_version(_at: datetime) -> ActiveRuleset:
    raise RulesetNotFound("no ruleset version 7")


class TwoPartError(Exception):
    """An error that pickles but cannot be rebuilt from its message alone."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")


def unrebuildable(_at: datetime) -> ActiveRuleset:
    raise TwoPartError("lifecycle", "broken")


@needs_fork
def test_an_error_in_the_child_s_run_is_raised_here_and_the_child_is_reaped() -> None:
    history = mixed_history().events
    before_children, before_fds = children(), open_fds()

    for parallel in (False, True):
        with pytest.raises(RulesetNotFound, match="no ruleset version 7") as raised:
            replay_runs(history, missing_version, fixed(DEFAULT), DIRECTORY, T0, parallel=parallel)
    # The child's traceback comes along, as the cause.
    assert isinstance(raised.value.__cause__, ReplayFailed)
    assert "missing_version" in str(raised.value.__cause__)
    with pytest.raises(ReplayFailed, match="TwoPartError: lifecycle: broken"):
        replay_runs(history, unrebuildable, fixed(DEFAULT), DIRECTORY, T0, parallel=True)

    assert (children(), open_fds()) == (before_children, before_fds)


def stuck(_at: datetime) -> ActiveRuleset:
    time.sleep(3600)  # unless killed
    return DEFAULT


@needs_fork
@pytest.mark.timeout(60)  # a child left running would keep the replay waiting for it
def test_a_failing_candidate_run_ends_the_child_whose_outcome_is_no_longer_wanted() -> None:
    history = mixed_history().events
    before_children, before_fds = children(), open_fds()

    with pytest.raises(RulesetNotFound, match="no ruleset version 7"):
        replay_runs(history, stuck, missing_version, DIRECTORY, T0, parallel=True)

    assert (children(), open_fds()) == (before_children, before_fds)


@needs_fork
def test_a_killed_child_fails_the_replay_instead_of_hanging_it() -> None:
    history = mixed_history().events
    before_children, before_fds = children(), open_fds()
    killed: list[int] = []

    def kill_the_child(phase: str, done: int, total: int) -> None:
        if not killed:
            [child] = children() - before_children
            os.kill(child, signal.SIGKILL)  # as the kernel's OOM killer would
            killed.append(child)

    with pytest.raises(ReplayFailed, match="ended without an outcome"):
        replay_runs(history, stuck, fixed(DEFAULT), DIRECTORY, T0, kill_the_child, parallel=True)

    assert killed
    assert (children(), open_fds()) == (before_children, before_fds)
