"""What putting rulesets and replays into words costs (issue #18), each against the step it
rides on, measured in the same run:

- `POST /v1/rulesets/describe`'s work (`describe_against`: both rulesets in sentences and
  the changes) against validating the candidate (`validate_ruleset`, which the route does
  first, as `POST /v1/rulesets/validate` does), on a ruleset of R rules with a fifth of them
  changed;
- a replay's `summary` (`summary_in_words`) against the diff it summarises (`compare` of
  two runs of L leads, a third of them moved);
- both in zh-CN against the same in en (issue #19): another language's table must cost
  no more than 1.2x the English one.

Run from the repository root:

    .venv/bin/python bench/words.py [--rules R] [--leads L] [--repeats N]

Best of N interleaved repetitions. Targets: the summary at most 1x the diff; describing at
most 2x validating (it writes two rulesets, the base and the candidate, where validation
reads one), so the words never cost more than the step they describe.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/words.py`, this file's folder leads sys.path: the root comes first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import copy
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.directory import parse_directory
from replay.diff import LeadOutcome, RunOutcome, compare
from replay.summary import Window, summary_in_words
from rules.describe import describe_against
from rules.validation import parse_ruleset, validate_ruleset
from store.rulebook import default_directory_document, default_ruleset_document

TARGETS = {"describe": 2.0, "summary": 1.0, "describe zh-CN": 1.2, "summary zh-CN": 1.2}
REPS = ["rep-east-1", "rep-east-2", "rep-west-1", "rep-west-2"]


def big_ruleset(rules: int) -> dict[str, Any]:
    """The default ruleset with `rules` more routing rules, each with two conditions and
    two actions."""
    document = copy.deepcopy(default_ruleset_document())
    for i in range(rules):
        document["rules"].append(
            {
                "id": f"route-{i}",
                "when": ["lead.captured"],
                "priority": 1000 - i,
                "conditions": {
                    "all": [
                        {"name": "source", "operator": "equal_to", "value": f"src-{i}"},
                        {"name": "score", "operator": "greater_than", "value": i},
                    ]
                },
                "actions": [
                    {"name": "assign_to_rep", "params": {"rep": REPS[i % len(REPS)]}},
                    {
                        "name": "create_task",
                        "params": {"task": "first_follow_up", "due_in": "PT24H"},
                    },
                ],
            }
        )
    return document


def changed(document: dict[str, Any]) -> dict[str, Any]:
    """A fifth of the routing rules assign to the next rep and get a later task."""
    candidate = copy.deepcopy(document)
    for i, rule in enumerate(r for r in candidate["rules"] if r["id"].startswith("route-")):
        if i % 5 == 0:
            rule["actions"][0]["params"]["rep"] = REPS[(i + 1) % len(REPS)]
            rule["actions"][1]["params"]["due_in"] = "PT48H"
    return candidate


def runs(leads: int) -> tuple[RunOutcome, RunOutcome]:
    """Two runs of `leads` leads: a third end with another rep, a tenth get a reclaim more."""
    before: dict[str, LeadOutcome] = {}
    after: dict[str, LeadOutcome] = {}
    for i in range(leads):
        rep = REPS[i % len(REPS)]
        moved = REPS[(i + 1) % len(REPS)] if i % 3 == 0 else rep
        reminders = {("reminder", "first_follow_up"): 1}
        reclaims = {("reclaim", "no_follow_up_48h"): 1} if i % 10 == 0 else {}
        before[f"lead-{i}"] = LeadOutcome(rep, "east", rep, reminders, {("rule", "r"): 1})
        after[f"lead-{i}"] = LeadOutcome(
            moved, "east", moved, {**reminders, **reclaims}, {("rule", "r"): 1}
        )
    return RunOutcome(before, leads, 0), RunOutcome(after, leads, 0)


def best(work: Callable[[], object], timings: list[float]) -> None:
    started = time.perf_counter()
    work()
    timings.append(time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    directory = parse_directory(default_directory_document())
    base_doc = big_ruleset(args.rules)
    candidate_doc = changed(base_doc)
    base = parse_ruleset(base_doc, directory)
    candidate = parse_ruleset(candidate_doc, directory)
    baseline_run, candidate_run = runs(args.leads)
    diff = compare(baseline_run, candidate_run, ["route-0"])
    now = datetime(2026, 12, 6, tzinfo=UTC)
    window = Window(captured_from=now - timedelta(days=30), now=now)

    steps = ("validate", "describe", "describe zh-CN", "diff", "summary", "summary zh-CN")
    timings: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(args.repeats):
        best(lambda: validate_ruleset(candidate_doc, directory), timings["validate"])
        best(lambda: describe_against(base, 1, candidate, directory), timings["describe"])
        best(
            lambda: describe_against(base, 1, candidate, directory, "zh-CN"),
            timings["describe zh-CN"],
        )
        best(lambda: compare(baseline_run, candidate_run, ["route-0"]), timings["diff"])
        best(lambda: summary_in_words(diff, directory, window), timings["summary"])
        best(lambda: summary_in_words(diff, directory, window, "zh-CN"), timings["summary zh-CN"])

    described = describe_against(base, 1, candidate, directory)
    print(f"python {platform.python_version()} on {platform.machine()}, best of {args.repeats}")
    print(
        f"ruleset: {len(base.rules)} rules, {len(described['changes'])} changed; "
        f"replay: {args.leads:,} leads, {len(diff.assignments):,} moved"
    )
    print("| step | ms | vs baseline |\n|---|---:|---:|")
    for name, baseline in (
        ("validate", "validate"),
        ("describe", "validate"),
        ("describe zh-CN", "describe"),
        ("diff", "diff"),
        ("summary", "diff"),
        ("summary zh-CN", "summary"),
    ):
        ms = min(timings[name]) * 1000
        ratio = min(timings[name]) / min(timings[baseline])
        met = (
            ""
            if name == baseline
            else f" (target <= {TARGETS[name]:g}x: "
            + ("met)" if ratio <= TARGETS[name] else "NOT met)")
        )
        print(f"| {name} | {ms:,.2f} | {ratio:.3f}x{met} |")
    print("summary:", *summary_in_words(diff, directory, window), sep="\n  ")
    print("summary (zh-CN):", *summary_in_words(diff, directory, window, "zh-CN"), sep="\n  ")


if __name__ == "__main__":
    main()
