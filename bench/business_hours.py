"""What a business-hours timer costs to plan, against a wall-clock timer, in the same run.

Run from the repository root:

    .venv/bin/python bench/business_hours.py [--starts N] [--repeats R]

Three measurements over the same N start instants (seeded, spread over 2026-2027, so
they fall on working hours, nights, weekends and the default calendar's holidays):

- `plan_timers` of one timer started by `lead.assigned`, `after` PT24H, wall clock vs
  `calendar: "business"` in the default directory's `cn-business` calendar (Asia/Shanghai,
  09:00-12:00 and 13:30-18:00, 2026-2027 holidays and make-up days). The calendar's
  per-date windows are built on first use; "warm" runs after one pass has built them (what
  a worker sees after its first decisions), "cold" with a fresh calendar each repetition.
- `add_business_time` alone for PT24H, P7D and P30D of working time (P30D of working
  time is ~3 months of calendar: the day walk is linear in the days crossed).
- A whole decision on the virtual clock (`LeadMachine.receive` of a capture that assigns
  and starts the timer, the path the decisions activity and the replay share), wall vs
  business.

Repetitions are interleaved; the best of each is shown, with ratio = business / wall.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/business_hours.py`: the repository root first (bench/rules.py would
# shadow the `rules` package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import copy
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from bench.environment import machine_info
from domain.calendar import BusinessCalendar, add_business_time
from domain.directory import Directory, parse_directory
from domain.lifecycle import ActiveRuleset
from domain.machine import LeadMachine
from domain.timers import plan_timers
from rules.compile import compile_ruleset
from rules.model import Timer
from rules.validation import parse_ruleset

DIRECTORY_DOC: dict[str, Any] = json.loads(
    resources.files("rules").joinpath("default_directory.json").read_text()
)
WALL = Timer(id="sla", start_on=["lead.assigned"], after="PT24H")
BUSINESS = Timer(id="sla", start_on=["lead.assigned"], after="PT24H", calendar="business")
RULESET: dict[str, Any] = {
    "name": "bench",
    "timers": [{"id": "sla", "start_on": ["lead.assigned"], "after": "PT24H"}],
    "rules": [
        {
            "id": "assign",
            "when": ["lead.captured"],
            "actions": [{"name": "assign_to_rep", "params": {"rep": "rep-east-1"}}],
        }
    ],
}


class NoLoad:
    def open_leads(self, rep_id: str) -> int:
        return 0

    def last_assigned(self, team_id: str) -> str | None:
        return None


def fresh_calendar() -> BusinessCalendar:
    calendar = parse_directory(DIRECTORY_DOC).team_calendar("east")
    assert calendar is not None
    return calendar


def starts(n: int) -> list[datetime]:
    rng = random.Random(18)
    first = datetime(2026, 1, 1, tzinfo=UTC)
    return [first + timedelta(seconds=rng.randrange(2 * 365 * 86400)) for _ in range(n)]


def timed(run: Callable[[], object]) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def plan_all(instants: list[datetime], spec: Timer, calendar: BusinessCalendar) -> None:
    for at in instants:
        plan_timers({}, [spec], [("lead.assigned", "e")], at, calendar)


def add_all(instants: list[datetime], duration: timedelta, calendar: BusinessCalendar) -> None:
    for at in instants:
        add_business_time(calendar, at, duration)


def decide_all(instants: list[datetime], active: ActiveRuleset, directory: Directory) -> None:
    for index, at in enumerate(instants):
        machine = LeadMachine(f"lead-{index}", active, directory, NoLoad())
        machine.receive("lead.captured", {"email": "a@x.io", "source": "website"}, at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--starts", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    instants = starts(args.starts)
    directory = parse_directory(DIRECTORY_DOC)
    warm = directory.team_calendar("east")
    assert warm is not None
    business_doc = copy.deepcopy(RULESET)
    business_doc["timers"][0]["calendar"] = "business"
    wall_rules = parse_ruleset(RULESET, directory)
    business_rules = parse_ruleset(business_doc, directory)
    wall_active = ActiveRuleset(1, wall_rules, compile_ruleset(wall_rules))
    business_active = ActiveRuleset(1, business_rules, compile_ruleset(business_rules))
    plan_all(instants, BUSINESS, warm)  # builds the windows of every date once
    decisions = instants[: max(1, args.starts // 10)]

    cases: dict[str, Callable[[], object]] = {
        "plan_timers, wall clock": lambda: plan_all(instants, WALL, warm),
        "plan_timers, business (warm)": lambda: plan_all(instants, BUSINESS, warm),
        "plan_timers, business (cold)": lambda: plan_all(instants, BUSINESS, fresh_calendar()),
        "add_business_time PT24H": lambda: add_all(instants, timedelta(hours=24), warm),
        "add_business_time P7D": lambda: add_all(instants, timedelta(days=7), warm),
        "add_business_time P30D": lambda: add_all(instants, timedelta(days=30), warm),
        "decision, wall clock": lambda: decide_all(decisions, wall_active, directory),
        "decision, business": lambda: decide_all(decisions, business_active, directory),
    }
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(args.repeats):
        for name, run in cases.items():
            best[name] = min(best[name], timed(run))

    print(machine_info(["holidays", "tzdata"]))
    print(f"{args.starts} starts, {len(decisions)} decisions, best of {args.repeats}")
    wall_plan, wall_decision = best["plan_timers, wall clock"], best["decision, wall clock"]
    for name, seconds in best.items():
        count = len(decisions) if name.startswith("decision") else len(instants)
        baseline = wall_decision if name.startswith("decision") else wall_plan
        print(
            f"{name:32} {seconds / count * 1e6:9.2f} µs each   "
            f"ratio to wall clock {seconds / baseline:6.2f}x"
        )


if __name__ == "__main__":
    main()
