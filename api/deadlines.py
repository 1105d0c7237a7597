"""A lead's deadlines as the API shows them (issue #19): the `lead_deadlines` rows
(`store.deadlines`) with what each timer will do, worded from the ruleset version that
planned it (`domain.deadlines.consequences`)."""

from __future__ import annotations

from typing import Any

from domain.deadlines import consequences, kind_of
from domain.directory import Directory
from domain.state import LeadState
from leadflow.bootstrap import Store
from rules.model import Ruleset
from store.deadlines import Deadline
from store.rulebook import RulesetNotFound


class DeadlineWords:
    """Words deadlines for one request: each ruleset version is read once."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._directory: Directory | None = None
        self._rulesets: dict[int | None, Ruleset | None] = {}

    def _ruleset(self, version: int | None) -> Ruleset | None:
        if version not in self._rulesets:
            try:
                found = self._store.rulebook.version(version).ruleset if version else None
            except RulesetNotFound:
                found = None
            self._rulesets[version] = found
        return self._rulesets[version]

    def body(self, deadline: Deadline, lead: LeadState) -> dict[str, Any]:
        """One deadline as `GET /v1/leads/{id}` shows it."""
        if self._directory is None:
            self._directory = self._store.rulebook.directory()
        timer = deadline.timer
        return {
            "timer": timer.timer_id,
            "due_at": timer.due_at,
            "kind": kind_of(timer),
            "sequence": timer.sequence,
            "step": timer.step,
            "ruleset_version": deadline.ruleset_version,
            "consequences": [
                c.as_dict()
                for c in consequences(
                    timer, self._ruleset(deadline.ruleset_version), lead, self._directory
                )
            ],
        }
