"""Who may claim a lead from the public pool (SPEC §4 `lead.claimed`, §5 capacity), pure."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.directory import Rep
from domain.errors import (
    ClaimCooldown,
    DailyClaimLimitReached,
    FieldError,
    InvalidEvent,
    LeadNotInPool,
    RepAtCapacity,
    RepInactive,
)
from domain.state import LeadState
from rules.model import PoolPolicy


def claim_day(at: datetime) -> str:
    """The day (UTC) a claim counts for in the daily limit."""
    return at.astimezone(UTC).date().isoformat()


def check_claim(
    lead: LeadState,
    rep_id: str,
    rep: Rep | None,
    open_leads: int,
    claims_today: int,
    policy: PoolPolicy,
    at: datetime,
) -> None:
    """Raise unless `rep_id` may claim `lead` at `at`: the lead is in the pool; the rep is
    in the directory, active and below capacity; a former owner has waited out the
    cool-down; the rep is under the daily claim limit."""
    if not lead.in_pool:
        raise LeadNotInPool("only a lead in the public pool can be claimed")
    if rep is None:
        raise InvalidEvent([FieldError("/data/rep_id", f"no rep {rep_id!r} in the directory")])
    if not rep.active:
        raise RepInactive(f"rep {rep_id} is not active")
    if open_leads >= rep.capacity:
        raise RepAtCapacity(f"rep {rep_id} holds {open_leads} open leads (capacity {rep.capacity})")
    lost_at = lead.former_owners.get(rep_id)
    if policy.cooldown is not None and lost_at is not None:
        until = datetime.fromisoformat(lost_at) + policy.cooldown
        if at < until:
            raise ClaimCooldown(
                f"{rep_id} owned this lead until {lost_at}; "
                f"they may claim it again from {until.isoformat()}"
            )
    limit = policy.daily_claim_limit
    if limit is not None and claims_today >= limit:
        raise DailyClaimLimitReached(
            f"{rep_id} already claimed {claims_today} leads on {claim_day(at)}"
        )
