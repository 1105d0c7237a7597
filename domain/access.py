"""Who may see which leads (issue #19): the roles of the people who sign in to the console.

A system calling with an API key sees every lead its key's scopes allow. A person sees by
role: a rep the leads they own and the public pool; a manager also every lead of the teams
they manage; a director and an admin everything. Pure: the caller passes the directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from domain.directory import Directory

Role = Literal["rep", "manager", "director", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)


@dataclass(frozen=True)
class LeadScope:
    """The leads a caller may see: every lead, or those owned by one of `owners`, those of
    one of `teams`, and (with `pool`) those in the public pool."""

    everything: bool = False
    owners: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()
    pool: bool = False

    def allows(self, *, owner: str | None, team: str | None, in_pool: bool) -> bool:
        """Whether a lead with this owner, team and pool flag is in the scope."""
        if self.everything:
            return True
        if in_pool and self.pool:
            return True
        return (owner is not None and owner in self.owners) or (
            team is not None and team in self.teams
        )


EVERYTHING = LeadScope(everything=True)


def managed_teams(person_id: str | None, directory: Directory) -> frozenset[str]:
    """The ids of the teams `person_id` manages."""
    if person_id is None:
        return frozenset()
    return frozenset(team.id for team in directory.teams if team.manager == person_id)


def lead_scope(role: Role, person_id: str | None, directory: Directory) -> LeadScope:
    """The leads a person with `role`, who is `person_id` in the directory, may see."""
    if role in ("director", "admin"):
        return EVERYTHING
    owners = frozenset({person_id}) if person_id else frozenset()
    if role == "rep":
        return LeadScope(owners=owners, pool=True)
    return LeadScope(owners=owners, teams=managed_teams(person_id, directory), pool=True)
