import json
from importlib import resources
from typing import Any

import pytest
from business_rules.operators import BooleanType, NumericType, SelectType, StringType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.directory import Directory, parse_directory
from rules.builtin_templates import BUILTIN_TEMPLATES
from rules.catalog import ACTIONS, OPERATORS, VARIABLES
from rules.model import Ruleset, Template
from rules.schema import ruleset_schema
from rules.templates import find_template, render
from rules.validation import InvalidRuleset, parse_ruleset, validate_ruleset


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(resources.files("rules").joinpath(name).read_text())
    return doc


DIRECTORY = parse_directory(load("default_directory.json"))


def rule(rule_id: str = "r", **fields: Any) -> dict[str, Any]:
    return {"id": rule_id, "when": ["lead.captured"], **fields}


def leaf(name: str, operator: str, value: Any = None) -> dict[str, Any]:
    return {"name": name, "operator": operator, "value": value}


def action(name: str, **params: Any) -> dict[str, Any]:
    return {"name": name, "params": params}


def ruleset(*rules: dict[str, Any], **sections: Any) -> dict[str, Any]:
    return {"name": "test", "rules": list(rules), **sections}


def errors(doc: object, directory: Directory | None = DIRECTORY) -> dict[str, str]:
    return {e.path: e.message for e in validate_ruleset(doc, directory)}


def test_the_default_ruleset_validates_against_the_default_directory() -> None:
    assert validate_ruleset(load("default_ruleset.json"), DIRECTORY) == []
    parsed = parse_ruleset(load("default_ruleset.json"), DIRECTORY)
    assert [t.id for t in parsed.timers] == [
        "first_follow_up",
        "reclaim",
        "reclaim_warning",
        "idle",
    ]
    assert [t.delay.total_seconds() for t in parsed.timers] == [86400, 172800, 144000, 604800]


def test_the_spec_example_validates_without_a_directory() -> None:
    # SPEC §5's example names rep-a, which only a directory could reject.
    doc = load("default_ruleset.json")
    doc["rules"][1]["actions"][0]["params"]["rep"] = "rep-a"
    assert validate_ruleset(doc, None) == []
    assert errors(doc) == {"/rules/1/actions/0/params/rep": "no rep 'rep-a' in the directory"}


def test_unknown_variable_is_named_by_its_path() -> None:
    doc = ruleset(
        rule("a"),
        rule("b"),
        rule("c", conditions={"all": [leaf("colour", "equal_to", "red")]}),
    )
    assert list(errors(doc)) == ["/rules/2/conditions/all/0/name"]
    assert "unknown variable 'colour'" in errors(doc)["/rules/2/conditions/all/0/name"]


def test_nested_groups_give_nested_paths() -> None:
    conditions = {
        "any": [leaf("source", "equal_to", "web"), {"all": [leaf("sorce", "equal_to", "x")]}]
    }
    assert list(errors(ruleset(rule(conditions=conditions)))) == [
        "/rules/0/conditions/any/1/all/0/name"
    ]


@pytest.mark.parametrize(
    ("condition", "path", "message"),
    [
        (leaf("source", "greater_than", 3), "operator", "use one of equal_to"),
        (leaf("score", "starts_with", "1"), "operator", "not an operator of numeric"),
        (leaf("has_phone", "equal_to", True), "operator", "is_true, is_false"),
        (leaf("tags", "equal_to", "vip"), "operator", "contains, does_not_contain"),
        (leaf("source", "frobnicate", "x"), "operator", "not an operator of string"),
        (leaf("score", "greater_than", "10"), "value", "compares with a number"),
        (leaf("score", "greater_than", True), "value", "compares with a number"),
        (leaf("score", "greater_than", float("inf")), "value", "compares with a number"),
        (leaf("source", "equal_to", 5), "value", "compares with a string"),
        (leaf("source", "equal_to", None), "value", "compares with a string"),
        (leaf("tags", "contains", ["vip"]), "value", "compares with a string"),
        (leaf("email_domain", "matches_regex", "(unclosed"), "value", "not a valid regular"),
        (leaf("attributes.budget", "matches_regex", "a" * 1001), "value", "at most 1000"),
        ({"name": "score", "operator": "greater_than"}, "value", "required by greater_than"),
        (leaf("variant.colour-test", "equal_to", "A"), "name", "no experiment 'colour-test'"),
        (leaf("variant.subject-test", "equal_to", "C"), "value", "not a variant of experiment"),
        ({**leaf("source", "equal_to", "x"), "label": "?"}, "label", "unknown field"),
        (leaf("has_phone", "is_true", [True]), "value", "takes no value"),
    ],
)
def test_condition_errors(condition: dict[str, Any], path: str, message: str) -> None:
    experiments = {"subject-test": {"variants": {"A": {"weight": 1}, "B": {"weight": 1}}}}
    doc = ruleset(rule(conditions={"all": [condition]}), experiments=experiments)
    found = errors(doc)
    assert list(found) == [f"/rules/0/conditions/all/0/{path}"]
    assert message in found[f"/rules/0/conditions/all/0/{path}"]


def test_an_unknown_variable_and_operator_are_both_reported() -> None:
    doc = ruleset(rule(conditions={"all": [leaf("colour", "frobnicate", "x")]}))
    assert errors(doc) == {
        "/rules/0/conditions/all/0/name": errors(doc)["/rules/0/conditions/all/0/name"],
        "/rules/0/conditions/all/0/operator": "unknown operator 'frobnicate'",
    }


def test_well_typed_conditions_of_every_kind_are_accepted() -> None:
    experiments = {"subject-test": {"variants": {"A": {"weight": 1}, "B": {"weight": 1}}}}
    conditions = {
        "any": [
            {"all": []},
            {"any": []},
            leaf("score", "greater_than_or_equal_to", 10.5),
            {"name": "has_phone", "operator": "is_true"},
            leaf("in_pool", "is_false", "ignored"),
            leaf("tags", "does_not_contain", "spam"),
            leaf("attributes.budget", "equal_to", "5000"),
            leaf("variant.subject-test", "equal_to", "B"),
            leaf("email_domain", "matches_regex", r"^(gmail|qq)\.com$"),
        ]
    }
    assert errors(ruleset(rule(conditions=conditions), experiments=experiments)) == {}


@pytest.mark.parametrize(
    "group",
    [{"all": [], "any": []}, {"all": [], "name": "source"}, {"all": {"name": "source"}}, [], "x"],
)
def test_malformed_groups(group: object) -> None:
    assert list(errors(ruleset(rule(conditions=group)))) in (
        ["/rules/0/conditions"],
        ["/rules/0/conditions/all"],
    )


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    conditions: dict[str, Any] = leaf("source", "equal_to", "x")
    for _ in range(5000):
        conditions = {"all": [conditions]}
    found = errors(ruleset(rule(conditions=conditions)))
    assert len(found) == 1
    assert "deeper than 32" in next(iter(found.values()))


def test_actions_and_params() -> None:
    doc = ruleset(
        rule(
            actions=[
                {"name": "teleport", "params": {}},
                {"name": "assign_to_team", "params": {"team": "east", "strategy": "random"}},
                {"name": "assign_to_rep", "params": {"rep_id": "rep-east-1"}},
                {"name": "add_score", "params": {"points": "5"}},
                {"name": "create_task", "params": {"task": "call", "due_in": "P1M"}},
                {"name": "notify", "params": {"to": "ceo", "template": "welcome"}},
                {"name": "set_stage", "params": {"stage": "new"}},
                {"name": "add_tag"},
                {"name": "add_tag", "params": {"tag": "ok"}, "when": "now"},
            ]
        )
    )
    found = errors(doc)
    base = "/rules/0/actions"
    assert found == {
        f"{base}/0/name": found[f"{base}/0/name"],
        f"{base}/1/params/strategy": found[f"{base}/1/params/strategy"],
        f"{base}/2/params/rep_id": "unknown param",
        f"{base}/2/params/rep": "required param",
        f"{base}/3/params/points": found[f"{base}/3/params/points"],
        f"{base}/4/params/due_in": found[f"{base}/4/params/due_in"],
        f"{base}/5/params/to": found[f"{base}/5/params/to"],
        f"{base}/6/params/stage": found[f"{base}/6/params/stage"],
        f"{base}/7/params/tag": "required param",
        f"{base}/8/when": "unknown field",
    }
    assert "unknown action 'teleport'" in found[f"{base}/0/name"]
    assert "years and months" in found[f"{base}/4/params/due_in"]


ANYWHERE = "in templates or the built-in ones"


def test_references_are_checked_against_the_ruleset_and_builtins() -> None:
    doc = ruleset(
        rule(
            "a",
            when=["timer.nope", "lead.teleported"],
            actions=[
                {"name": "enroll_in_sequence", "params": {"sequence": "monthly"}},
                {"name": "exit_sequence", "params": {"sequence": "monthly"}},
                {"name": "exit_sequence", "params": {}},
                {"name": "notify", "params": {"to": "owner", "template": "lead-reclaimed"}},
                {"name": "notify", "params": {"to": "owner", "template": "my-template"}},
                {"name": "notify", "params": {"to": "owner", "template": "typo"}},
                {"name": "assign_variant", "params": {"experiment": "nope"}},
            ],
        ),
        templates={"my-template": {"subject": "Hi {name}", "body": "..."}},
        sequences={"weekly": {"steps": [{"wait": "P7D", "template": "gone"}]}},
    )
    assert errors(doc) == {
        "/rules/0/when/0": "no timer 'nope' is declared in timers",
        "/rules/0/when/1": "unknown trigger 'lead.teleported'",
        "/rules/0/actions/0/params/sequence": "no sequence 'monthly' in sequences",
        "/rules/0/actions/1/params/sequence": "no sequence 'monthly' in sequences",
        "/rules/0/actions/5/params/template": f"no template 'typo' {ANYWHERE}",
        "/rules/0/actions/6/params/experiment": "no experiment 'nope' in experiments",
        "/sequences/weekly/steps/0/template": f"no template 'gone' {ANYWHERE}",
    }


def test_directory_references_only_with_a_directory() -> None:
    doc = ruleset(
        rule(
            actions=[
                {"name": "assign_to_rep", "params": {"rep": "rep-x"}},
                {"name": "assign_to_team", "params": {"team": "north", "strategy": "round_robin"}},
                {"name": "notify", "params": {"to": "rep:rep-y", "template": "lead-idle"}},
                {
                    "name": "notify",
                    "params": {"to": "team", "template": "lead-idle", "channel": "irc"},
                },
                {
                    "name": "notify",
                    "params": {"to": "rep:rep-east-2", "template": "lead-idle", "channel": "email"},
                },
                {
                    "name": "notify",
                    "params": {"to": "team", "template": "lead-idle", "channel": "east-robot"},
                },
            ]
        )
    )
    assert errors(doc, None) == {}
    assert errors(doc) == {
        "/rules/0/actions/0/params/rep": "no rep 'rep-x' in the directory",
        "/rules/0/actions/1/params/team": "no team 'north' in the directory",
        "/rules/0/actions/2/params/to": "no rep 'rep-y' in the directory",
        "/rules/0/actions/3/params/channel": "no channel 'irc' in the directory",
    }


def test_timers_durations_triggers_and_duplicates() -> None:
    doc = ruleset(
        rule("same"),
        rule("other", when=["timer.t1"]),
        rule("same", when=["lead.assigned", "lead.timer_fired", "nurture.email_sent"]),
        timers=[
            {"id": "t1", "start_on": ["lead.assigned"], "after": "PT2S"},
            {"id": "t1", "start_on": ["lead.assigned"], "after": "P1M"},
            {"id": "t2", "start_on": [], "cancel_on": ["lead.vanished"], "after": "2 days"},
            {"id": "t3", "start_on": ["campaign.spend_recorded"], "after": 60},
        ],
    )
    assert errors(doc) == {
        "/rules/2/id": "duplicate rule id 'same' (first at /rules/0)",
        # No rule ever runs for these: they are recorded outside the decision step.
        "/rules/2/when/1": "rules run for a fired timer as `timer.<id>`: name that instead",
        "/rules/2/when/2": errors(doc)["/rules/2/when/2"],
        "/timers/1/id": "duplicate timer id 't1' (first at /timers/0)",
        "/timers/1/after": errors(doc)["/timers/1/after"],
        "/timers/2/start_on": "must name at least one event type",
        "/timers/2/cancel_on/0": "unknown event type 'lead.vanished'",
        "/timers/2/after": "'2 days' is not an ISO 8601 duration such as PT24H, P7D or PT2S",
        "/timers/3/start_on/0": "unknown event type 'campaign.spend_recorded'",
        "/timers/3/after": "must be an ISO 8601 duration string such as PT24H",
    }


def test_timers_on_deliveries_are_allowed_but_not_loops_without_end() -> None:
    doc = ruleset(
        rule("no-open", when=["timer.no_open"], actions=[action("add_tag", tag="no-open")]),
        rule(
            "nag",
            when=["timer.nag"],
            actions=[action("notify", to="owner", template="follow-up-overdue")],
        ),
        timers=[
            # "tag leads that did not open within 4 days of the email": fine.
            {
                "id": "no_open",
                "start_on": ["nurture.email_sent"],
                "cancel_on": ["email.opened"],
                "after": "P4D",
            },
            {"id": "nag", "start_on": ["notification.sent"], "after": "PT1H"},
            {
                "id": "again",
                "start_on": ["lead.assigned"],
                "restart_on": ["lead.timer_fired"],
                "after": "PT1H",
            },
        ],
    )
    found = errors(doc)
    assert set(found) == {"/rules/1/actions/0", "/timers/2/restart_on/0"}
    assert "notify again and again" in found["/rules/1/actions/0"]
    assert "start itself again forever" in found["/timers/2/restart_on/0"]
    assert (
        "nurture.email_sent is recorded when the delivery ends"
        in errors(ruleset(rule("r", when=["nurture.email_sent"])))["/rules/0/when/0"]
    )


def test_sections_experiments_and_templates() -> None:
    doc = {
        "name": "",
        "colour": "red",
        "rules": [rule(when=[], priority="high", stop="yes", actions={})],
        "templates": {
            "t": {"subject": "s"},
            "u": {"subject": "s", "body": "b", "subject_variants": {"Z": "z"}},
        },
        "experiments": {
            "e": {"variants": {}},
            "f": {"variants": {"A": {"weight": 0}, "B": {"weight": 1.5}}},
        },
        "sequences": {
            "s": {"steps": []},
            "q": {"steps": [{"wait": "PT1H", "template": "welcome"}], "exit_on": "all"},
        },
    }
    assert set(errors(doc)) == {
        "/name",
        "/colour",
        "/rules/0/when",
        "/rules/0/priority",
        "/rules/0/stop",
        "/rules/0/actions",
        "/templates/t/body",
        "/templates/u/subject_variants/Z",
        "/experiments/e/variants",
        "/experiments/f/variants/A/weight",
        "/experiments/f/variants/B/weight",
        "/sequences/s/steps",
        "/sequences/q/exit_on",
    }


def test_parse_ruleset_raises_with_every_error() -> None:
    with pytest.raises(InvalidRuleset) as caught:
        parse_ruleset({"rules": [{"id": "x"}]}, None)
    assert caught.value.code == "invalid_ruleset"
    assert [e.path for e in caught.value.errors] == ["/name", "/rules/0/when"]
    assert caught.value.details[0] == {"path": "/name", "message": "required"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)

# Keys and values that steer random documents into the validator's deeper branches.
names = st.sampled_from(
    [
        "name",
        "rules",
        "timers",
        "when",
        "id",
        "conditions",
        "all",
        "any",
        "operator",
        "value",
        "actions",
        "params",
        "templates",
        "sequences",
        "steps",
        "experiments",
        "variants",
        "weight",
        "source",
        "score",
        "tags",
        "greater_than",
        "contains",
        "matches_regex",
        "notify",
        "to",
        "template",
        "start_on",
        "after",
        "PT2S",
        "timer.x",
        "lead.captured",
        "variant.e",
        "rep",
    ]
)
steered = st.recursive(
    st.none() | st.booleans() | st.integers() | names | st.text(max_size=4),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(names, children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(json_values | steered)
def test_random_json_gives_errors_never_exceptions(doc: object) -> None:
    found = validate_ruleset(doc, DIRECTORY)
    assert all(e.path == "" or e.path.startswith("/") for e in found)
    if not found:
        assert isinstance(parse_ruleset(doc, DIRECTORY), Ruleset)


@st.composite
def mutated_default(draw: st.DrawFn) -> dict[str, Any]:
    """The default ruleset with one value somewhere inside it replaced by random JSON."""
    doc = load("default_ruleset.json")
    node: Any = doc
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return doc
        key = draw(st.sampled_from(keys))
        child = node[key]
        if not isinstance(child, dict | list) or not child or draw(st.booleans()):
            node[key] = draw(json_values | steered)
            return doc
        node = child


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_default())
def test_a_randomly_damaged_default_ruleset_gives_errors_never_exceptions(
    doc: dict[str, Any],
) -> None:
    found = validate_ruleset(doc, DIRECTORY)
    if not found:
        assert isinstance(parse_ruleset(doc, DIRECTORY), Ruleset)


def test_operators_are_exactly_business_rules_operators() -> None:
    reference = {
        "string": StringType,
        "numeric": NumericType,
        "boolean": BooleanType,
        "select": SelectType,
    }
    for type_name, operators in OPERATORS.items():
        exported = {op["name"]: op["input_type"] for op in reference[type_name].get_all_operators()}
        assert operators == exported


def test_the_schema_describes_variables_operators_actions_and_triggers() -> None:
    schema = json.loads(json.dumps(ruleset_schema()))
    variables = {v["name"]: v for v in schema["variables"]}
    assert set(VARIABLES) < set(variables)
    assert variables["score"]["operators"] == list(OPERATORS["numeric"])
    assert variables["variant.<experiment>"]["pattern"] == r"^variant\..+$"
    assert [a["name"] for a in schema["actions"]] == list(ACTIONS)
    assign = next(a for a in schema["actions"] if a["name"] == "assign_to_team")
    assert assign["params"]["properties"]["strategy"]["enum"] == ["round_robin", "least_loaded"]
    assert assign["params"]["required"] == ["team", "strategy"]
    assert "lead.captured" in schema["triggers"]["events"]
    assert "ruleset.published" not in schema["triggers"]["events"]
    assert {o["name"] for o in schema["operators"]["string"]} >= {"matches_regex", "non_empty"}
    assert schema["ruleset"]["required"] == ["name"]


def test_templates_render_with_visible_unknown_placeholders() -> None:
    template = Template(
        subject="Hello {name}",
        body="{name} at {company}: {unknown} {0} {name!r}",
        subject_variants={"B": "Hey {name}"},
    )
    message = render(template, {"name": "Ann", "company": None})
    assert message.subject == "Hello Ann"
    assert message.body == "Ann at : {unknown} {0} {name!r}"
    assert render(template, {"name": "Ann"}, variant="B").subject == "Hey Ann"
    assert render(template, {"name": "Ann"}, variant="C").subject == "Hello Ann"


def test_ruleset_templates_override_builtins() -> None:
    mine = Template(subject="Overdue!", body="...")
    doc = parse_ruleset(ruleset(templates={"follow-up-overdue": mine.model_dump()}), None)
    assert find_template(doc, "follow-up-overdue") == mine
    assert find_template(doc, "lead-idle") == BUILTIN_TEMPLATES["lead-idle"]
    assert find_template(doc, "nope") is None
    needed = {"follow-up-overdue", "lead-reclaimed", "lead-idle", "reclaim-warning", "welcome"}
    assert needed | {f"article-{n}" for n in range(1, 5)} <= set(BUILTIN_TEMPLATES)


def sized(kind: str, n: int) -> dict[str, Any]:
    """A valid ruleset but for `n` of `kind`, whose limit the test puts n at or just past."""
    one_step = {"wait": "P1D", "template": "welcome"}
    match kind:
        case "rules":
            return ruleset(*(rule(f"r{i}") for i in range(n)))
        case "conditions":
            half = [leaf("source", "equal_to", "web")] * (n // 2)
            rest = [leaf("region", "equal_to", "east")] * (n - n // 2)
            return ruleset(rule(conditions={"any": [{"all": half}, {"all": rest}]}))
        case "actions":
            return ruleset(rule(actions=[{"name": "add_tag", "params": {"tag": "t"}}] * n))
        case "timers":
            timers = [
                {"id": f"t{i}", "start_on": ["lead.assigned"], "after": "PT1H"} for i in range(n)
            ]
            return ruleset(timers=timers)
        case "sequences":
            return ruleset(sequences={f"s{i}": {"steps": [one_step]} for i in range(n)})
        case "steps":
            return ruleset(sequences={"s": {"steps": [one_step] * n}})
        case "templates":
            return ruleset(templates={f"t{i}": {"subject": "s", "body": "b"} for i in range(n)})
        case "subject":
            return ruleset(templates={"t": {"subject": "s" * n, "body": "b"}})
        case "body":
            return ruleset(templates={"t": {"subject": "s", "body": "b" * n}})
        case "subject_variant":
            experiments = {"e": {"variants": {"A": {"weight": 1}}}}
            template = {"subject": "s", "body": "b", "subject_variants": {"A": "v" * n}}
            return ruleset(templates={"t": template}, experiments=experiments)
        case "experiments":
            return ruleset(
                experiments={f"e{i}": {"variants": {"A": {"weight": 1}}} for i in range(n)}
            )
        case "variants":
            return ruleset(
                experiments={"e": {"variants": {f"v{i}": {"weight": 1} for i in range(n)}}}
            )
        case "condition_text":
            return ruleset(rule(conditions={"all": [leaf("source", "equal_to", "w" * n)]}))
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "limit", "path", "message"),
    [
        ("rules", 500, "/rules", "a ruleset may have at most 500 rules"),
        (
            "conditions",
            100,
            "/rules/0/conditions",
            "a rule may have at most 100 conditions (name, operator, value), however grouped",
        ),
        ("actions", 20, "/rules/0/actions", "a rule may have at most 20 actions"),
        ("timers", 50, "/timers", "a ruleset may have at most 50 timers"),
        ("sequences", 50, "/sequences", "a ruleset may have at most 50 sequences"),
        ("steps", 60, "/sequences/s/steps", "a sequence may have at most 60 steps"),
        ("templates", 200, "/templates", "a ruleset may have at most 200 templates"),
        ("subject", 200, "/templates/t/subject", "must be at most 200 characters"),
        ("body", 20_000, "/templates/t/body", "must be at most 20000 characters"),
        (
            "subject_variant",
            200,
            "/templates/t/subject_variants/A",
            "must be at most 200 characters",
        ),
        ("experiments", 20, "/experiments", "a ruleset may have at most 20 experiments"),
        ("variants", 10, "/experiments/e/variants", "an experiment may have at most 10 variants"),
        (
            "condition_text",
            1000,
            "/rules/0/conditions/all/0/value",
            "may have at most 1000 characters",
        ),
    ],
)
def test_sizes_are_bounded_and_the_limit_itself_is_allowed(
    kind: str, limit: int, path: str, message: str
) -> None:
    assert errors(sized(kind, limit)) == {}
    assert errors(sized(kind, limit + 1)) == {path: message}


def test_nul_characters_and_lone_surrogates_are_refused_wherever_they_are() -> None:
    doc = ruleset(
        rule(
            "r\x00",
            conditions={"all": [leaf("source", "equal_to", "web\ud800")]},
            actions=[{"name": "add_tag", "params": {"tag": "a\udfffb"}}],
        ),
        templates={
            "bad\ud83d": {"subject": "s", "body": "b"},
            "t": {"subject": "s", "body": "b\x00", "subject_variants": {"\x00": "x"}},
        },
    )
    found = validate_ruleset(doc, DIRECTORY)
    said = "must not contain NUL characters or lone surrogates"
    assert [(e.path, e.message) for e in found] == [
        ("/rules/0/id", said),
        ("/rules/0/conditions/all/0/value", said),
        ("/rules/0/actions/0/params/tag", said),
        ("/templates", r"key 'bad\ud83d' contains a NUL character or lone surrogate"),
        ("/templates/t/body", said),
        ("/templates/t/subject_variants", r"key '\x00' contains a NUL character or lone surrogate"),
    ]
    # The answer can be sent: every path and message encodes as UTF-8.
    json.dumps([e.as_dict() for e in found], ensure_ascii=False).encode()
    # A surrogate pair is one valid character (an emoji), not a lone surrogate.
    assert errors(ruleset(rule("r", description="ok \U0001f600"))) == {}
