"""Rule evaluation throughput: leadflow's compiled evaluator against a hand-written if/elif
chain of the same 20-rule ruleset, with business_rules.engine.run_all for reference.

Run from the repository root:

    .venv/bin/python bench/rules.py [--facts N] [--repeats R] [--quick]

All three run over the same facts (computed with `facts_for` from seeded random leads)
and must agree on every lead's fired rule before anything is timed. Repetitions are
interleaved, so drift on the machine hits every implementation alike; the table shows the
best repetition of each. Target: the compiled evaluator at ≥ 0.1x the if/elif chain.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/rules.py`, this file's folder leads sys.path and its name would
# shadow the `rules` package: the repository root must come first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import platform
import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from business_rules.actions import BaseActions, rule_action
from business_rules.engine import run_all
from business_rules.fields import FIELD_TEXT
from business_rules.operators import BooleanType, NumericType, SelectType, StringType
from business_rules.variables import BaseVariables, rule_variable

from domain.state import LeadState
from rules.catalog import VARIABLES
from rules.compile import compile_ruleset
from rules.evaluate import evaluate, facts_for
from rules.validation import parse_ruleset

TARGET_RATIO = 0.1
TRIGGER = "lead.captured"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def eq(name: str, value: object) -> dict[str, Any]:
    return {"name": name, "operator": "equal_to", "value": value}


def cond(name: str, operator: str, value: object = None) -> dict[str, Any]:
    return {"name": name, "operator": operator, "value": value}


# (rule id, conditions), highest priority first; every rule stops, like a routing table.
RULES: list[tuple[str, dict[str, Any]]] = [
    ("spam-domain", {"all": [cond("email_domain", "matches_regex", r"^(mailinator|tempmail)\.")]}),
    ("test-leads", {"all": [eq("source", "test")]}),
    (
        "vip",
        {"all": [cond("tags", "contains", "vip"), cond("score", "greater_than_or_equal_to", 80)]},
    ),
    ("east-website", {"all": [eq("source", "website"), eq("region", "east")]}),
    (
        "east-big-manufacturing",
        {
            "all": [
                eq("region", "east"),
                eq("company_size", "1000+"),
                eq("industry", "manufacturing"),
            ]
        },
    ),
    ("west-website", {"all": [eq("source", "website"), eq("region", "west")]}),
    ("expo-high-intent", {"all": [eq("channel", "trade-show"), eq("intent", "high")]}),
    (
        "north-south-campaign",
        {
            "all": [
                cond("campaign_id", "starts_with", "cn-2026"),
                {"any": [eq("region", "north"), eq("region", "south")]},
            ]
        },
    ),
    ("hot-with-phone", {"all": [cond("score", "greater_than", 60), cond("has_phone", "is_true")]}),
    ("partner-referral", {"all": [cond("attributes.partner", "non_empty")]}),
    ("finance", {"all": [cond("industry", "equal_to_case_insensitive", "Finance")]}),
    ("government", {"all": [cond("email_domain", "ends_with", ".gov.cn")]}),
    ("wechat-with-phone", {"all": [eq("channel", "wechat"), cond("has_phone", "is_true")]}),
    ("repeat-visitor", {"all": [cond("touch_count", "greater_than_or_equal_to", 3)]}),
    ("demo-request", {"all": [eq("form_id", "demo-request")]}),
    ("south", {"all": [eq("region", "south")]}),
    ("north", {"all": [eq("region", "north")]}),
    ("east", {"all": [eq("region", "east")]}),
    ("west", {"all": [eq("region", "west")]}),
    ("everyone-else", {"all": []}),
]

RULESET = {
    "name": "bench-20",
    "rules": [
        {
            "id": rule_id,
            "when": [TRIGGER],
            "priority": len(RULES) - index,
            "stop": True,
            "conditions": conditions,
            "actions": [{"name": "add_tag", "params": {"tag": rule_id}}],
        }
        for index, (rule_id, conditions) in enumerate(RULES)
    ],
}

_SPAM = re.compile(r"^(mailinator|tempmail)\.")


def hand_written(f: Mapping[str, Any]) -> str:
    """The same 20 rules as a programmer would write them by hand."""
    region, source, domain = f["region"], f["source"], f["email_domain"] or ""
    if _SPAM.search(domain):
        return "spam-domain"
    elif source == "test":
        return "test-leads"
    elif any(tag.lower() == "vip" for tag in f["tags"]) and f["score"] >= 80:
        return "vip"
    elif source == "website" and region == "east":
        return "east-website"
    elif region == "east" and f["company_size"] == "1000+" and f["industry"] == "manufacturing":
        return "east-big-manufacturing"
    elif source == "website" and region == "west":
        return "west-website"
    elif f["channel"] == "trade-show" and f["intent"] == "high":
        return "expo-high-intent"
    elif (f["campaign_id"] or "").startswith("cn-2026") and region in ("north", "south"):
        return "north-south-campaign"
    elif f["score"] > 60 and f["has_phone"]:
        return "hot-with-phone"
    elif f.get("attributes.partner"):
        return "partner-referral"
    elif (f["industry"] or "").lower() == "finance":
        return "finance"
    elif domain.endswith(".gov.cn"):
        return "government"
    elif f["channel"] == "wechat" and f["has_phone"]:
        return "wechat-with-phone"
    elif f["touch_count"] >= 3:
        return "repeat-visitor"
    elif f["form_id"] == "demo-request":
        return "demo-request"
    elif region == "south":
        return "south"
    elif region == "north":
        return "north"
    elif region == "east":
        return "east"
    elif region == "west":
        return "west"
    else:
        return "everyone-else"


def random_leads(count: int, seed: int = 7) -> list[dict[str, object]]:
    """Facts of `count` varied leads, weighted so that most go deep into the chain before
    a rule takes them (the mean position is printed)."""
    rng = random.Random(seed)

    def pick(options: dict[Any, int]) -> Any:
        return rng.choices(list(options), weights=list(options.values()))[0]

    leads = []
    for index in range(count):
        state = LeadState(
            lead_id=f"lead-{index}",
            email=f"u{index}@"
            + pick(
                {"qq.com": 40, "163.com": 40, "acme.cn": 15, "mailinator.com": 2, "x.gov.cn": 3}
            ),
            phone=pick({None: 2, "+8613800138000": 1}),
            source=pick({"website": 15, "ads": 30, "expo": 20, "referral": 30, "test": 1}),
            channel=pick({None: 10, "trade-show": 2, "wechat": 2, "search": 6}),
            region=pick({None: 5, "east": 5, "west": 5, "north": 5, "south": 5, "central": 5}),
            industry=pick({None: 10, "manufacturing": 5, "finance": 1, "FINANCE": 1, "retail": 8}),
            company_size=pick({None: 5, "1-50": 5, "50-200": 5, "1000+": 2}),
            campaign_id=pick({None: 10, "cn-2026-spring": 1, "us-2025": 4}),
            form_id=pick({None: 10, "demo-request": 1, "newsletter": 4}),
            intent=pick({None: 3, "low": 3, "medium": 3, "high": 1}),
            score=rng.randint(0, 70),
            tags=tuple(rng.sample(["vip", "VIP", "expo", "returning"], rng.randint(0, 2))),
            touch_count=pick({1: 8, 2: 3, 3: 1}),
            attributes={"partner": "p-1"} if rng.random() < 0.02 else {},
            created_at=(NOW - timedelta(hours=rng.randint(0, 200))).isoformat(),
        )
        leads.append(facts_for(state, NOW, {}))
    return leads


_TYPES = {
    "string": StringType,
    "numeric": NumericType,
    "boolean": BooleanType,
    "select": SelectType,
}


class LeadVariables(BaseVariables):  # business-rules reads variables as methods
    def __init__(self, facts: Mapping[str, object]) -> None:
        self.facts = facts


def _reader(name: str) -> Callable[[LeadVariables], object]:
    return lambda self: self.facts.get(name)


for _variable in VARIABLES.values():
    setattr(
        LeadVariables,
        _variable.name,
        rule_variable(_TYPES[_variable.type])(_reader(_variable.name)),
    )
setattr(
    LeadVariables, "attributes.partner", rule_variable(StringType)(_reader("attributes.partner"))
)


class FiredRules(BaseActions):
    def __init__(self) -> None:
        self.fired: list[str] = []

    @rule_action(params={"rule_id": FIELD_TEXT})
    def fire(self, rule_id: str) -> None:
        self.fired.append(rule_id)


# business-rules asserts on an empty `all`, so its "always" is a condition every lead meets.
_ALWAYS = {"all": [cond("touch_count", "greater_than_or_equal_to", 0)]}
BUSINESS_RULES = [
    {
        "conditions": conditions if conditions != {"all": []} else _ALWAYS,
        "actions": [{"name": "fire", "params": {"rule_id": rule_id}}],
    }
    for rule_id, conditions in RULES
]


def business_rules_first(facts: Mapping[str, object]) -> str:
    actions = FiredRules()
    run_all(BUSINESS_RULES, LeadVariables(facts), actions, stop_on_first_trigger=True)
    return actions.fired[0]


def rate(evaluate_one: Callable[[Mapping[str, object]], object], leads: list[Any], n: int) -> float:
    """Evaluations per second over `n` evaluations cycling through `leads`."""
    batch = (leads * (n // len(leads) + 1))[:n]
    started = time.perf_counter()
    for facts in batch:
        evaluate_one(facts)
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=1000, help="distinct leads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer evaluations")
    args = parser.parse_args()

    leads = random_leads(args.facts)
    compiled = compile_ruleset(parse_ruleset(RULESET, None))

    def leadflow(facts: Mapping[str, object]) -> list[Any]:
        return evaluate(compiled, TRIGGER, facts)

    for facts in leads:
        ours = [fired.rule_id for fired in leadflow(facts)]
        assert ours == [hand_written(facts)] == [business_rules_first(facts)], facts

    scale = 10 if args.quick else 1
    sizes = {"if/elif": 400_000 // scale, "leadflow": 200_000 // scale, "run_all": 10_000 // scale}
    runners = {"if/elif": hand_written, "leadflow": leadflow, "run_all": business_rules_first}
    best = dict.fromkeys(runners, 0.0)
    for _ in range(args.repeats):
        for name, runner in runners.items():
            best[name] = max(best[name], rate(runner, leads, sizes[name]))

    order = [rule_id for rule_id, _ in RULES]
    depth = sum(order.index(hand_written(f)) + 1 for f in leads) / len(leads)
    print(f"rules: 20-rule ruleset, {len(leads)} leads, the rule that fires is on average")
    print(f"number {depth:.1f} of the chain; best of {args.repeats} interleaved repetitions,")
    print(f"Python {platform.python_version()} on {platform.machine()}")
    print()
    print(f"{'implementation':<36}{'evaluations/s':>15}{'vs if/elif':>12}")
    labels = {
        "if/elif": "hand-written if/elif (baseline)",
        "leadflow": "leadflow compiled evaluate()",
        "run_all": "business_rules.engine.run_all",
    }
    for name, label in labels.items():
        print(f"{label:<36}{best[name]:>15,.0f}{best[name] / best['if/elif']:>11.3f}x")
    ratio = best["leadflow"] / best["if/elif"]
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"\ntarget ≥ {TARGET_RATIO}x of if/elif: {verdict} ({ratio:.3f}x); ", end="")
    print(f"compiled is {best['leadflow'] / best['run_all']:.0f}x business-rules run_all")


if __name__ == "__main__":
    main()
