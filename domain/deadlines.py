"""What a running timer will do when it fires, for people to read (issue #19): the
consequences of the rules for `timer.<id>` in the ruleset version that planned it —
whom it notifies (by directory name), whether it returns the lead to the pool and why.

Pure: the caller passes the ruleset, the lead and the directory. A rule with conditions is
listed with `conditional: true` (whether it holds is known only when the timer fires); a
rule that always holds and says `stop` ends the list, as it ends evaluation. A nurture step
(`nurture:<sequence>`) sends its step's email.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from domain.directory import Directory
from domain.state import LeadState
from domain.timers import NURTURE_PREFIX, RunningTimer
from rules.model import AllOf, Ruleset

DeadlineKind = Literal["ruleset", "nurture"]


@dataclass(frozen=True)
class Consequence:
    """One thing the timer's rules do: `action` (a rules action name, or `send_email` for a
    nurture step) with what a person needs to word it."""

    action: str
    rule_id: str | None = None
    to: str | None = None  # notify's `to` (owner, manager, director, team, rep:<id>)
    recipient: str | None = None  # the directory id that resolves to, when one person
    recipient_name: str | None = None
    reason: str | None = None  # return_to_pool's reason
    template: str | None = None
    conditional: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def kind_of(timer: RunningTimer) -> DeadlineKind:
    return "nurture" if timer.step is not None else "ruleset"


def _recipient(to: str, lead: LeadState, directory: Directory) -> tuple[str | None, str | None]:
    """The directory id and name `notify {to}` reaches for this lead now, when one person."""
    person_id: str | None = None
    if to == "owner":
        person_id = lead.owner
    elif to.startswith("rep:"):
        person_id = to.removeprefix("rep:")
    elif to in ("manager", "director"):
        team_id = lead.team
        if team_id is None and lead.owner is not None:
            owner = directory.rep(lead.owner)
            team_id = owner.team if owner is not None else None
        team = directory.team(team_id) if team_id is not None else None
        if team is not None:
            person_id = team.manager if to == "manager" else team.director
    elif to == "team" and lead.team is not None:
        team = directory.team(lead.team)
        return lead.team, team.name if team is not None else None
    if person_id is None:
        return None, None
    person = directory.person_or_rep(person_id)
    return person_id, person.name if person is not None else None


def consequences(
    timer: RunningTimer, ruleset: Ruleset | None, lead: LeadState, directory: Directory
) -> list[Consequence]:
    """What `timer` will do for `lead` when it fires, in the order the rules run."""
    if timer.step is not None:
        name = timer.timer_id.removeprefix(NURTURE_PREFIX)
        sequence = ruleset.sequences.get(name) if ruleset is not None else None
        steps = sequence.steps if sequence is not None else []
        step = steps[timer.step].template if timer.step < len(steps) else None
        return [Consequence("send_email", template=step)]
    if ruleset is None:
        return []
    trigger = f"timer.{timer.timer_id}"
    found: list[Consequence] = []
    for rule in sorted(ruleset.rules, key=lambda r: -r.priority):
        if trigger not in rule.when:
            continue
        always = isinstance(rule.conditions, AllOf) and not rule.conditions.all_
        for action in rule.actions:
            params = action.params
            to = params.get("to") if action.name == "notify" else None
            recipient: str | None = None
            recipient_name: str | None = None
            if isinstance(to, str):
                recipient, recipient_name = _recipient(to, lead, directory)
            reason = params.get("reason")
            template = params.get("template")
            found.append(
                Consequence(
                    action=action.name,
                    rule_id=rule.id,
                    to=to if isinstance(to, str) else None,
                    recipient=recipient,
                    recipient_name=recipient_name,
                    reason=reason if isinstance(reason, str) else None,
                    template=template if isinstance(template, str) else None,
                    conditional=not always,
                )
            )
        if rule.stop and always:
            break
    return found
