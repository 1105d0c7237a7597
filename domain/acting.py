"""What a person signed in to the console may append (issue #19), by role and by the lead's
place (owner, team, pool) as its read model row shows it. Pure: the caller passes the
directory and the lead.

A person posts only the events of working a lead (`PERSON_TYPES`); captures, campaign spend,
email tracking and unsubscribes stay with the systems that hold API keys. Within those:

- a rep follows up, releases, qualifies, opens an opportunity, wins and loses their own
  leads, and claims from the pool, always as themselves (`rep_id` = self);
- a manager does the same on the leads of the teams they manage (and their own), for
  themselves or a rep of those teams, and reassigns such a lead to an active rep of a team
  they manage;
- a director and an admin may post any of them.

An API key (no role) is not checked here. The named refusals of the log (`lead_not_in_pool`,
`rep_at_capacity`, `not_lead_owner`, ...) come after this check, the same for everybody.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.access import Role, managed_teams
from domain.directory import Directory
from domain.errors import DomainError, FieldError

# The events of working a lead: all a person may post.
PERSON_TYPES = frozenset(
    {
        "lead.followed_up",
        "lead.claimed",
        "lead.released",
        "lead.reassigned",
        "lead.qualified",
        "lead.opportunity_opened",
        "lead.won",
        "lead.lost",
    }
)
# Events a rep (or a manager for a team) may post only on a lead they may work.
_ON_OWN_LEAD = PERSON_TYPES - {"lead.claimed", "lead.reassigned"}
# Events whose `rep_id` must be the person (a rep) or one of their reps (a manager).
_AS_SELF = frozenset({"lead.followed_up", "lead.claimed", "lead.released"})


@dataclass(frozen=True)
class Person:
    """Who acts: a role and the directory rep or person they are."""

    role: Role
    person_id: str | None


@dataclass(frozen=True)
class LeadPlace:
    """Where a lead stands, as its read model row says."""

    owner: str | None
    team: str | None
    in_pool: bool


class NotPermitted(DomainError):
    """The person's role does not let them append this event; nothing is appended."""

    code = "not_permitted"

    def __init__(self, fault: FieldError) -> None:
        super().__init__(fault.message, [fault.as_dict()])
        self.fault = fault


def _team_of(lead: LeadPlace, directory: Directory) -> str | None:
    if lead.team is not None:
        return lead.team
    owner = directory.rep(lead.owner) if lead.owner is not None else None
    return owner.team if owner is not None else None


def may_work(person: Person, lead: LeadPlace, directory: Directory) -> bool:
    """Whether `person` may act on `lead` as its owner would (follow up, qualify, ...)."""
    if person.role in ("director", "admin"):
        return True
    if person.person_id is not None and lead.owner == person.person_id:
        return True
    if person.role == "manager":
        return _team_of(lead, directory) in managed_teams(person.person_id, directory)
    return False


def _may_act_for(person: Person, rep_id: Any, directory: Directory) -> bool:
    """Whether `person` may name `rep_id` as the rep who acts (self; a manager's own reps)."""
    if person.role in ("director", "admin"):
        return True
    if person.person_id is not None and rep_id == person.person_id:
        return True
    if person.role == "manager" and isinstance(rep_id, str):
        rep = directory.rep(rep_id)
        return rep is not None and rep.team in managed_teams(person.person_id, directory)
    return False


def refusal(
    person: Person,
    event_type: str,
    data: dict[str, Any],
    lead: LeadPlace | None,
    directory: Directory,
) -> FieldError | None:
    """Why `person` may not append `event_type` with `data` on `lead` (None: they may), as
    the field it is about and a sentence. `lead` None: no such lead; the log refuses that."""
    if event_type not in PERSON_TYPES:
        return FieldError(
            "/type", f"{event_type} is posted by systems with an API key, not by a person"
        )
    if person.role in ("director", "admin"):
        return None
    rep_id = data.get("rep_id")
    if event_type in _AS_SELF and not _may_act_for(person, rep_id, directory):
        who = "yourself" if person.role == "rep" else "yourself or a rep of a team you manage"
        return FieldError("/data/rep_id", f"a {person.role} may name only {who} here")
    if lead is None:
        return None
    if event_type == "lead.reassigned":
        return _reassign_refusal(person, rep_id, lead, directory)
    if event_type in _ON_OWN_LEAD and not may_work(person, lead, directory):
        whose = "your own leads" if person.role == "rep" else "leads of teams you manage"
        return FieldError("/lead_id", f"a {person.role} may post {event_type} only on {whose}")
    return None


def _reassign_refusal(
    person: Person, rep_id: Any, lead: LeadPlace, directory: Directory
) -> FieldError | None:
    if person.role != "manager":
        return FieldError("/type", f"a {person.role} may not reassign leads")
    teams = managed_teams(person.person_id, directory)
    if _team_of(lead, directory) not in teams:
        return FieldError("/lead_id", "a manager may reassign only leads of teams they manage")
    rep = directory.rep(rep_id) if isinstance(rep_id, str) else None
    if rep is None or not rep.active or rep.team not in teams:
        return FieldError(
            "/data/rep_id", "a manager may reassign only to an active rep of a team they manage"
        )
    return None


def check(
    person: Person,
    event_type: str,
    data: dict[str, Any],
    lead: LeadPlace | None,
    directory: Directory,
) -> None:
    """Raise NotPermitted when `refusal` finds a reason."""
    fault = refusal(person, event_type, data, lead, directory)
    if fault is not None:
        raise NotPermitted(fault)
