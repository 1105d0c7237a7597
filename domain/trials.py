"""Ruleset trials: a published version run in *shadow* (decided beside the active version for
every trigger, changing nothing) or as a *canary* (really deciding for a share of new leads).

Pure: which version decides a lead (`ruleset_version_for`), the canary's membership, which
trials ran when (`TrialTimeline`, from the trial events on the log), and how two versions'
decisions for one trigger compare (`decision_facts`). The decisions activity, the replay
simulator and `replay.diff.verify` all ask these same functions (docs/trials.md).
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.errors import FieldError, InvalidDocument
from domain.personal import personal_fields
from domain.state import Decision
from domain.timers import RunningTimer

SHADOW, CANARY = "shadow", "canary"
# The salt of the canary's hash: not an experiment's name, so the canary's leads are not
# the leads of any experiment's variant (`rules.experiments.assign_variant` hashes
# `<experiment>:<lead_id>`; no experiment id may contain a space).
CANARY_SALT = "ruleset canary"
# Data that names a record rather than what was decided: not compared.
_VOLATILE_KEYS = frozenset({"notification_id", "message_id"})


@dataclass(frozen=True)
class Trial:
    """A version on trial: since when, started by whom; `share` only for a canary."""

    mode: str  # SHADOW or CANARY
    version: int
    started_at: datetime
    started_by: str | None
    share: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "version": self.version,
            "share": self.share,
            "started_at": self.started_at.isoformat(),
            "started_by": self.started_by,
        }


@dataclass(frozen=True)
class Trials:
    """The trials running at one moment: at most one shadow and one canary."""

    shadow: Trial | None = None
    canary: Trial | None = None

    def running(self) -> list[Trial]:
        return [t for t in (self.shadow, self.canary) if t is not None]

    def mode_of(self, version: int) -> str | None:
        for trial in self.running():
            if trial.version == version:
                return trial.mode
        return None


NO_TRIALS = Trials()


def canary_point(lead_id: str) -> float:
    """The lead's point in [0, 1): sha256 of the canary salt and the lead id. Fixed for a
    lead, so a lead is in every canary of share ≥ its point."""
    digest = hashlib.sha256(f"{CANARY_SALT}:{lead_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_canary(lead_id: str, created_at: str | None, canary: Trial | None) -> bool:
    """Whether the canary decides this lead: a lead created (its capture's `occurred_at`,
    the lead's `created_at`) at or after the canary started, whose point is below the share."""
    if canary is None or canary.share is None or created_at is None:
        return False
    created = datetime.fromisoformat(created_at)
    if created.tzinfo is None:  # stored times are UTC; an offset-less one is read as such
        created = created.replace(tzinfo=UTC)
    if created < canary.started_at:
        return False
    return canary_point(lead_id) < canary.share


def ruleset_version_for(
    lead_id: str, created_at: str | None, active: int | None, trials: Trials
) -> int | None:
    """The version that decides this lead's triggers now: the canary's for a canary lead,
    else the active one. The one rule of membership every caller asks."""
    if trials.canary is not None and in_canary(lead_id, created_at, trials.canary):
        return trials.canary.version
    return active


def comparisons(used: int | None, active: int | None, trials: Trials) -> list[tuple[str, int]]:
    """(mode, other version) for each version a trigger decided under `used` is compared
    with: the active version when the canary decided (what the canary changed), and the
    shadow version unless it is the one that decided."""
    wanted: list[tuple[str, int]] = []
    canary = trials.canary
    if canary is not None and used == canary.version and active is not None and active != used:
        wanted.append((CANARY, active))
    shadow = trials.shadow
    if (
        shadow is not None
        and shadow.version != used
        and all(other != shadow.version for _, other in wanted)
    ):
        wanted.append((SHADOW, shadow.version))
    return wanted


def _plain(type_: str, data: Mapping[str, Any]) -> dict[str, Any]:
    # No personal field either: the rows outlive a lead's erasure (docs/erasure.md).
    left_out = _VOLATILE_KEYS.union(personal_fields(type_))
    return {k: v for k, v in sorted(data.items()) if k not in left_out}


def decision_facts(
    decisions: Iterable[Decision],
    timers_before: Mapping[str, RunningTimer],
    timers_after: Mapping[str, RunningTimer],
) -> list[dict[str, Any]]:
    """What a trigger decided, in words two versions can be compared by: each decided
    event's type with its business data (no ids, no personal data), then each timer it
    started or restarted with its due time and each it cancelled."""
    facts: list[dict[str, Any]] = [{"type": d.type, **_plain(d.type, d.data)} for d in decisions]
    for timer_id in sorted(timers_after):
        timer = timers_after[timer_id]
        before = timers_before.get(timer_id)
        if before is None or before.due_at != timer.due_at or before.step != timer.step:
            facts.append({"type": "timer.started", "timer": timer_id, "due_at": timer.due_at})
    for timer_id in sorted(set(timers_before) - set(timers_after)):
        facts.append({"type": "timer.stopped", "timer": timer_id})
    return facts


def facts_agree(one: Sequence[dict[str, Any]], other: Sequence[dict[str, Any]]) -> bool:
    """Same facts, in the same order."""
    return _canonical(one) == _canonical(other)


def _canonical(facts: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(facts), sort_keys=True, default=str)


class TrialTimeline:
    """Which trials ran when: the trials as they were after each trial event, by time
    (before the first, none). Answers without reading anything."""

    def __init__(self, changes: Sequence[tuple[datetime, Trials]]) -> None:
        ordered = sorted(changes, key=lambda change: change[0])
        self.times = [when for when, _ in ordered]
        self.states = [trials for _, trials in ordered]

    def __call__(self, at: datetime) -> Trials:
        index = bisect_right(self.times, at)
        return NO_TRIALS if index == 0 else self.states[index - 1]

    @property
    def versions(self) -> set[int]:
        """Every version that was ever a canary (the ones a replay must have compiled)."""
        return {s.canary.version for s in self.states if s.canary is not None}


def parse_canary_share(body: object) -> float:
    """The share of a canary request `{"share": 0.1}`: a number strictly between 0 and 1.
    InvalidDocument naming `/share` otherwise."""
    if not isinstance(body, dict):
        raise InvalidDocument([FieldError("", 'expected an object like {"share": 0.1}')])
    errors = [FieldError(f"/{key}", "unknown field") for key in sorted(set(body) - {"share"})]
    share = body.get("share")
    if isinstance(share, bool) or not isinstance(share, int | float):
        errors.append(FieldError("/share", "expected a number between 0 and 1 (e.g. 0.1)"))
    elif not 0 < share < 1:
        errors.append(FieldError("/share", "must be more than 0 and less than 1"))
    if errors or not isinstance(share, int | float):
        raise InvalidDocument(errors)
    return float(share)
