"""Streams that make assignment exact under concurrency: each rep's open-lead count
(capacity) and each team's round-robin position. Both are derived from the log and saved
in the same transaction as the lead events that change them, so two leads assigned at
once can never both take a rep's last slot, and a restart or a replay sees the same
position."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.identity import LEADFLOW_NAMESPACE


def rep_workload_id(rep_id: str) -> UUID:
    return uuid5(LEADFLOW_NAMESPACE, f"stream:rep-workload:{rep_id}")


def team_rotation_id(team_id: str) -> UUID:
    return uuid5(LEADFLOW_NAMESPACE, f"stream:team-rotation:{team_id}")


class RepWorkload(Aggregate):
    """How many open leads (owned, not won/lost, not in the pool) a rep holds."""

    class Opened(Aggregate.Created):
        rep_id: str

    class Changed(Aggregate.Event):
        lead_id: str
        delta: int

        def apply(self, aggregate: Any) -> None:
            aggregate.open_leads += self.delta

    class ClaimCounted(Aggregate.Event):
        lead_id: str
        day: str  # UTC date the claim counts for

        def apply(self, aggregate: Any) -> None:
            # Only today's count matters for the daily limit; older days are dropped.
            count = aggregate.claims.get(self.day, 0) + 1
            aggregate.claims = {self.day: count}

    def __init__(self, rep_id: str) -> None:
        self.rep_id = rep_id
        self.open_leads = 0
        self.claims: dict[str, int] = {}

    @classmethod
    def open(cls, rep_id: str) -> RepWorkload:
        return cls._create(cls.Opened, id=rep_workload_id(rep_id), rep_id=rep_id)

    def change(self, lead_id: str, delta: int) -> None:
        self.trigger_event(self.Changed, lead_id=lead_id, delta=delta)

    def count_claim(self, lead_id: str, day: str) -> None:
        self.trigger_event(self.ClaimCounted, lead_id=lead_id, day=day)


class TeamRotation(Aggregate):
    """The last rep a team's round robin gave a lead to."""

    class Opened(Aggregate.Created):
        team_id: str

    class RepChosen(Aggregate.Event):
        lead_id: str
        rep_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.last_assigned = self.rep_id

    def __init__(self, team_id: str) -> None:
        self.team_id = team_id
        self.last_assigned: str | None = None

    @classmethod
    def open(cls, team_id: str) -> TeamRotation:
        return cls._create(cls.Opened, id=team_rotation_id(team_id), team_id=team_id)

    def choose(self, lead_id: str, rep_id: str) -> None:
        self.trigger_event(self.RepChosen, lead_id=lead_id, rep_id=rep_id)
