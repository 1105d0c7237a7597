"""Choosing the rep who gets a lead, from facts derived from the log: each rep's open
leads (`loads`) and the team's last round-robin pick. Pure, so the workflow and the replay
simulator pick the same rep from the same history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from domain.directory import Rep

Strategy = Literal["round_robin", "least_loaded"]


def can_take(rep: Rep, loads: Mapping[str, int]) -> bool:
    """The rep is active and holds fewer open leads than their capacity."""
    return rep.active and loads.get(rep.id, 0) < rep.capacity


def choose_rep(
    candidates: Sequence[Rep],
    strategy: Strategy,
    loads: Mapping[str, int],
    last_assigned: str | None,
) -> str | None:
    """The rep (id) to assign among `candidates` (a team's reps, in directory order), or
    None when nobody can take the lead (inactive or at capacity).

    round_robin: the first rep who can take it after `last_assigned`, wrapping around;
    from the top when `last_assigned` is None or no longer a candidate.
    least_loaded: the rep who can take it with the fewest open leads; ties go to the
    first in directory order.
    """
    if strategy == "least_loaded":
        eligible = [rep for rep in candidates if can_take(rep, loads)]
        if not eligible:
            return None
        return min(eligible, key=lambda rep: loads.get(rep.id, 0)).id
    ids = [rep.id for rep in candidates]
    start = ids.index(last_assigned) + 1 if last_assigned in ids else 0
    for offset in range(len(candidates)):
        rep = candidates[(start + offset) % len(candidates)]
        if can_take(rep, loads):
            return rep.id
    return None
