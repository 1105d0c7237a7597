"""One what-if question, asked the same way by `leadflow replay` and `POST /v1/replays`:
a candidate ruleset, what to compare it with, and which leads; `answer` replays the log's
history under both and diffs them (SPEC §8). Reads the store, never writes to it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.directory import Directory
from domain.errors import FieldError, InvalidDocument
from domain.lifecycle import ActiveRuleset
from leadflow.eventlog import EventLog
from leadflow.rulebook import Rulebook
from replay.diff import ReplayDiff, changed_rules, compare
from replay.simulator import (
    RulesetFor,
    cycle_collection_paused,
    fixed,
    log_horizon,
    recorded_history,
    ruleset_timeline,
    select_history,
    simulate,
)
from rules.compile import compile_ruleset
from rules.model import Ruleset
from rules.validation import InvalidRuleset, parse_ruleset

# The two runs of a replay, in the order `answer` makes them.
PHASES = ("baseline", "candidate")

# (phase, events replayed in that phase, events to replay in it)
PhaseProgress = Callable[[str, int, int], None]

_REQUEST_KEYS = {"ruleset", "baseline", "from", "to", "lead_id"}


@dataclass
class InvalidReplay(InvalidDocument):
    """A replay request with bad fields; the candidate's own errors are under `/ruleset`."""

    code = "invalid_replay"
    what = "replay request"


@dataclass(frozen=True)
class WhatIf:
    """What a candidate ruleset would have changed: compared with `baseline` (a version;
    None: the versions active at each event's time), over the leads first captured in
    [`captured_from`, `captured_to`), or only `lead_id`."""

    candidate: Ruleset
    baseline: int | None = None
    captured_from: datetime | None = None
    captured_to: datetime | None = None
    lead_id: str | None = None


def parse_time(value: str) -> datetime:
    """An ISO 8601 date or date-time; without an offset it is taken as UTC (a window is
    usually given as a bare date). Raises ValueError when it is neither."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_what_if(body: object, directory: Directory) -> WhatIf:
    """The question a `POST /v1/replays` body asks:
    `{"ruleset": {...}, "baseline"?: int, "from"?: T, "to"?: T, "lead_id"?: str}`.

    Raises InvalidReplay naming every bad field by JSON Pointer into the body; the
    candidate's errors are the ones `POST /v1/rulesets/validate` reports, under `/ruleset`.
    Whether the baseline version exists is the caller's to check (`check_baseline`).
    """
    if not isinstance(body, Mapping):
        raise InvalidReplay([FieldError("", "expected a JSON object")])
    errors = [FieldError(f"/{key}", "unknown field") for key in body if key not in _REQUEST_KEYS]
    candidate: Ruleset | None = None
    if "ruleset" not in body:
        errors.append(FieldError("/ruleset", "required: the candidate ruleset document"))
    else:
        try:
            # Checked as a publish would check it, against the directory.
            candidate = parse_ruleset(body["ruleset"], directory)
        except InvalidRuleset as invalid:
            errors += [FieldError("/ruleset" + e.path, e.message) for e in invalid.errors]
    baseline = body.get("baseline")
    if baseline is not None and (type(baseline) is not int or baseline < 1):
        errors.append(FieldError("/baseline", "expected a ruleset version (an integer ≥ 1)"))
    bounds: dict[str, datetime | None] = {}
    for key in ("from", "to"):
        bounds[key] = None
        if body.get(key) is None:
            continue
        with contextlib.suppress(ValueError, TypeError):  # TypeError: not a string
            bounds[key] = parse_time(body[key])
        if bounds[key] is None:
            errors.append(FieldError(f"/{key}", "expected an ISO 8601 date or date-time"))
    lead_id = body.get("lead_id")
    if lead_id is not None and not isinstance(lead_id, str):
        errors.append(FieldError("/lead_id", "expected a lead id (a string)"))
    if errors or candidate is None:
        raise InvalidReplay(errors)
    return WhatIf(candidate, baseline, bounds["from"], bounds["to"], lead_id)


def check_baseline(question: WhatIf, rulebook: Rulebook) -> None:
    """Raises RulesetNotFound when the question names a version that was never published."""
    if question.baseline is not None:
        rulebook.get(question.baseline)


def answer(
    question: WhatIf,
    event_log: EventLog,
    rulebook: Rulebook,
    progress: PhaseProgress | None = None,
) -> ReplayDiff:
    """Replay the selected leads' history under the baseline, then under the candidate, on
    one virtual clock up to the log's last recorded time, and diff the two runs.

    Reports progress per phase (see `PHASES`). Raises RulesetNotFound for an unknown
    baseline version. Writes nothing.
    """
    with cycle_collection_paused():  # the history and both runs: see there
        return _answer(question, event_log, rulebook, progress)


def _answer(
    question: WhatIf,
    event_log: EventLog,
    rulebook: Rulebook,
    progress: PhaseProgress | None,
) -> ReplayDiff:
    directory = rulebook.directory()
    baseline_for: RulesetFor
    if question.baseline is not None:
        fixed_baseline = rulebook.version(question.baseline)
        baseline_for = fixed(fixed_baseline)
        compared_with = fixed_baseline.ruleset
    else:
        baseline_for = ruleset_timeline(rulebook)
        compared_with = rulebook.active().ruleset
    candidate = ActiveRuleset(None, question.candidate, compile_ruleset(question.candidate))
    history = select_history(
        recorded_history(event_log),
        captured_from=question.captured_from,
        captured_to=question.captured_to,
        lead_id=question.lead_id,
    )
    now = log_horizon(event_log)
    runs = []
    for phase, ruleset_for in zip(PHASES, (baseline_for, fixed(candidate)), strict=True):
        report = _phase(progress, phase)
        runs.append(simulate(history, ruleset_for, directory, until=now, progress=report))
    before, after = runs
    return compare(before, after, changed_rules(compared_with, question.candidate))


def _phase(progress: PhaseProgress | None, phase: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(phase, done, total)


def request_json(question: WhatIf, document: Any) -> dict[str, Any]:
    """The question as JSON, with the candidate `document` as it was posted."""
    return {
        "ruleset": document,
        "baseline": question.baseline,
        "from": None if question.captured_from is None else question.captured_from.isoformat(),
        "to": None if question.captured_to is None else question.captured_to.isoformat(),
        "lead_id": question.lead_id,
    }
