"""Replay against a real log, on SQLite and PostgreSQL: leads decided as `LeadWorkflow`
would (the decisions at each event's recorded time, timers fired once due), then
`verify` reproduces every recorded decision, a candidate moving the east website leads
reports exactly those leads, and nothing is ever written to the log."""

from __future__ import annotations

import copy
import json
import multiprocessing
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
import typer
from typer.testing import CliRunner

from domain.events import parse_event
from domain.lifecycle import ActiveRuleset
from domain.timers import RunningTimer, next_due
from leadflow.bootstrap import Store, open_store
from leadflow.replay_cli import replay_app
from leadflow.settings import Settings
from replay.diff import compare, summarise, to_json, verify
from replay.simulator import fixed, recorded_history, ruleset_timeline, simulate
from replay.whatif import PHASES, ReplayOverTime, WhatIf, answer, can_fork
from rules.compile import compile_ruleset
from rules.validation import parse_ruleset
from store.rulebook import default_ruleset_document


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = open_store(settings)
    opened.rulebook.install_defaults(datetime.now(UTC))
    try:
        yield opened
    finally:
        opened.close()


class Workflows:
    """What the lead workflows do with the log, without Temporal: decide each event at its
    recorded time with the version active then, and fire each timer once it is due."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.timers: dict[UUID, dict[str, RunningTimer]] = {}

    def post(self, body: dict[str, Any]) -> UUID:
        event = parse_event(body, now=datetime.now(UTC), phone_region="CN")
        [appended] = self.store.append([event], [None])
        assert appended.lead_id is not None
        lead_id = appended.lead_id
        [logged] = [
            e for e in self.store.event_log.lead_events(lead_id) if e.event_id == appended.event_id
        ]
        decided = self.store.event_log.decide(
            lead_id,
            logged.type,
            logged.event_id,
            datetime.fromisoformat(logged.recorded_at),
            self.store.rulebook.active(),
            self.store.rulebook.directory(),
            self.timers.get(lead_id, {}),
        )
        self.timers[lead_id] = decided.timers
        self.fire_due()
        return lead_id

    def capture(self, email: str, **data: Any) -> UUID:
        return self.post(
            {"type": "lead.captured", "data": {"email": email, "source": "web", **data}}
        )

    def fire_due(self) -> None:
        """Fire every timer due by now, earliest first across leads."""
        while True:
            due = [(t.due, lead, t) for lead, ts in self.timers.items() if (t := next_due(ts))]
            if not due:
                return
            when, lead_id, timer = min(due, key=lambda d: (d[0], str(d[1])))
            if when > datetime.now(UTC):
                return
            decided = self.store.event_log.fire_timer(
                lead_id,
                timer,
                self.store.rulebook.active(),
                self.store.rulebook.directory(),
                self.timers[lead_id],
            )
            self.timers[lead_id] = decided.timers


def with_short_timers() -> dict[str, Any]:
    """The built-in ruleset with its follow-up deadlines in seconds."""
    document = copy.deepcopy(default_ruleset_document())
    seconds = {"first_follow_up": "PT1S", "reclaim_warning": "PT1S", "reclaim": "PT2S"}
    for timer in document["timers"]:
        timer["after"] = seconds.get(timer["id"], timer["after"])
    return document


def moving_east_website_to(rep: str, store: Store) -> ActiveRuleset:
    document = copy.deepcopy(default_ruleset_document())
    [rule] = [r for r in document["rules"] if r["id"] == "east-website"]
    rule["actions"][0]["params"]["rep"] = rep
    ruleset = parse_ruleset(document, store.rulebook.directory())
    return ActiveRuleset(None, ruleset, compile_ruleset(ruleset))


def lifecycle_log(store: Store) -> list[UUID]:
    """A log that went through assignments, follow-ups, nurture and an unsubscribe under
    v1, then reminders, warnings and reclaims under v2 (short timers) for the leads it
    returns, captured under v2."""
    workflows = Workflows(store)
    workflows.capture("ann@x.io", source="website", region="east")
    fair = workflows.capture("bob@x.io", source="fair", region="east")
    workflows.capture("cai@x.io", region="west")
    nurtured = workflows.capture("dan@x.io", intent="low")
    workflows.post(
        {"type": "lead.followed_up", "lead_id": str(fair), "data": {"rep_id": "rep-east-1"}}
    )
    workflows.post({"type": "lead.unsubscribed", "lead_id": str(nurtured), "data": {}})
    rulebook = store.rulebook
    version = rulebook.publish(with_short_timers(), "test", datetime.now(UTC))
    rulebook.activate(version, "test", datetime.now(UTC))
    quick = [workflows.capture(f"w{i}@x.io", region="west") for i in range(2)]
    time.sleep(2.2)  # the short timers come due: reminders, warnings, reclaims
    workflows.fire_due()
    types = [e.type for lead in quick for e in store.event_log.lead_events(lead)]
    assert {"lead.reminder_sent", "lead.returned_to_pool"} <= set(types)
    nurture = [e.type for e in store.event_log.lead_events(nurtured)]
    assert {"nurture.enrolled", "notification.queued", "nurture.exited"} <= set(nurture)
    return quick


def test_replaying_under_the_active_versions_reproduces_the_log(store: Store) -> None:
    quick = lifecycle_log(store)
    quick_captured_at = store.event_log.lead_events(quick[0])[0].recorded_at
    rulebook = store.rulebook
    before = store.event_log.max_position()

    assert verify(store.event_log, rulebook, rulebook.directory()) == []

    assert store.event_log.max_position() == before
    # Had v1 still been active when the quick leads came, the log would not match for them.
    rulebook.activate(1, "test", datetime.fromisoformat(quick_captured_at))
    drifted = verify(store.event_log, rulebook, rulebook.directory())
    assert sorted(m.lead_id for m in drifted) == sorted(str(lead) for lead in quick)


def test_a_candidate_moving_east_website_leads_reports_exactly_those_leads(
    store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflows = Workflows(store)
    east_web = [
        workflows.capture(f"web{i}@x.io", source="website", region="east") for i in range(2)
    ]
    workflows.capture("fair@x.io", source="fair", region="east")
    workflows.capture("west@x.io", source="website", region="west")
    before = store.event_log.max_position()

    history = recorded_history(store.event_log)
    directory = store.rulebook.directory()
    baseline = simulate(history, ruleset_timeline(store.rulebook), directory)
    candidate_ruleset = moving_east_website_to("rep-east-2", store)
    candidate = simulate(history, fixed(candidate_ruleset), directory)
    diff = compare(summarise(baseline), summarise(candidate))

    assert [(c.lead_id, c.from_owner, c.to_owner) for c in diff.assignments] == [
        (str(lead), "rep-east-1", "rep-east-2") for lead in east_web
    ]
    assert store.event_log.max_position() == before

    # The same through `leadflow replay`, reading the store by its settings.
    if settings.database_url is not None:
        monkeypatch.setenv("LEADFLOW_DATABASE_URL", settings.database_url)
    candidate_file = settings.data_dir / "candidate.json"
    document = candidate_ruleset.ruleset.model_dump(mode="json", by_alias=True, exclude_none=True)
    candidate_file.write_text(json.dumps(document))
    cli = typer.Typer()
    cli.add_typer(replay_app)
    args = ["replay", "--ruleset", str(candidate_file), "--format", "json", "--verify"]
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index('{\n  "leads_replayed') :])
    assert [c["lead_id"] for c in report["assignments"]] == [str(lead) for lead in east_web]
    assert report["rules_changed"] == ["east-website"]
    moved = "Over all recorded history: 2 leads would go to Zhang Min instead of Li Wei."
    assert report["summary"][0] == moved
    # The table starts with the summary, in business terms.
    table = CliRunner().invoke(cli, [*args[:3], "--data-dir", str(settings.data_dir)])
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0] == moved
    assert store.event_log.max_position() == before


def test_the_cli_refuses_an_unknown_baseline_or_a_lead_that_is_no_id_without_replaying(
    store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    if settings.database_url is not None:
        monkeypatch.setenv("LEADFLOW_DATABASE_URL", settings.database_url)
    candidate_file = settings.data_dir / "candidate.json"
    candidate_file.write_text(json.dumps(default_ruleset_document()))
    cli = typer.Typer()
    cli.add_typer(replay_app)
    args = ["replay", "--ruleset", str(candidate_file), "--baseline", "99"]

    result = CliRunner().invoke(cli, [*args, "--data-dir", str(settings.data_dir)])
    not_a_lead = CliRunner().invoke(
        cli, [*args[:3], "--lead", "ann@x.io", "--data-dir", str(settings.data_dir)]
    )

    assert result.exit_code == 2
    assert "no ruleset version 99" in result.output
    assert not_a_lead.exit_code == 2
    assert "--lead" in not_a_lead.output and "expected a lead id (a UUID)" in not_a_lead.output


def test_a_replay_past_its_time_limit_stops_and_the_cli_says_how_to_narrow_it(
    store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflows = Workflows(store)
    for i in range(3):
        workflows.capture(f"web{i}@x.io", source="website", region="east")
    before = store.event_log.max_position()
    question = WhatIf(moving_east_website_to("rep-east-2", store).ruleset)
    for parallel_from in (None, 0):  # one process; two, its child killed
        with pytest.raises(ReplayOverTime, match="exceeded its time budget of 0 s"):
            answer(
                question, store.event_log, store.rulebook, parallel_from=parallel_from, time_limit=0
            )
    assert multiprocessing.active_children() == []

    if settings.database_url is not None:
        monkeypatch.setenv("LEADFLOW_DATABASE_URL", settings.database_url)
    candidate_file = settings.data_dir / "candidate.json"
    candidate_file.write_text(json.dumps(default_ruleset_document()))
    cli = typer.Typer()
    cli.add_typer(replay_app)
    args = ["replay", "--ruleset", str(candidate_file), "--format", "json"]

    stopped = CliRunner().invoke(
        cli, [*args, "--time-limit", "0", "--data-dir", str(settings.data_dir)]
    )
    unlimited = CliRunner().invoke(cli, [*args, "--data-dir", str(settings.data_dir)])

    assert stopped.exit_code == 3, stopped.output
    assert "exceeded its time budget of 0 s" in stopped.stderr
    assert "--from/--to" in stopped.stderr and "--lead" in stopped.stderr
    assert stopped.stdout == ""  # no report
    assert unlimited.exit_code == 0, unlimited.output
    assert json.loads(unlimited.stdout)["leads_replayed"] == 3
    assert store.event_log.max_position() == before


@pytest.mark.skipif(not can_fork(), reason="the parallel replay forks")
def test_the_baseline_replayed_in_a_child_process_gives_the_same_report(store: Store) -> None:
    lifecycle_log(store)
    before = store.event_log.max_position()
    directory = store.rulebook.directory()
    moving = moving_east_website_to("rep-east-2", store).ruleset
    no_reclaim = with_short_timers()
    no_reclaim["rules"] = [r for r in no_reclaim["rules"] if r["id"] != "reclaim-48h"]
    # On a worker thread, as the API runs it (the main thread holds the store too).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay") as worker:
        # Against the versions active at each event's time, and against v2 (short timers).
        for question in (WhatIf(moving), WhatIf(parse_ruleset(no_reclaim, directory), baseline=2)):
            reports = []
            for parallel_from in (None, 0):  # one process; two, however few the events
                reported: list[tuple[str, int, int, str]] = []

                def progress(phase: str, done: int, total: int, into: list[Any] = reported) -> None:
                    into.append((phase, done, total, threading.current_thread().name))

                diff = worker.submit(
                    answer,
                    question,
                    store.event_log,
                    store.rulebook,
                    progress,
                    parallel_from=parallel_from,
                ).result()
                reports.append(to_json(diff))
                events = diff.events_replayed
                for phase in PHASES:  # both phases report, and end full
                    assert [r[:3] for r in reported if r[0] == phase][-1] == (phase, events, events)
                assert {r[3] for r in reported} == {"replay_0"}  # only on the caller's thread

            assert reports[0] == reports[1]
            assert not reports[0]["unchanged"]
    # The child left the store's connections alone: they still serve this process.
    assert store.event_log.max_position() == before
    assert verify(store.event_log, store.rulebook, directory) == []
