"""Which leads a caller may read (issue #19, `domain.access`): a lead outside the caller's
`lead_scope` answers 404 exactly like an unknown one, so lead ids do not leak."""

from __future__ import annotations

from uuid import UUID

from domain.errors import LeadNotFound
from domain.state import LeadState
from leadflow.bootstrap import Store
from projections.leads import find_lead
from store.keys import Caller


def current_lead(store: Store, lead_id: UUID) -> LeadState:
    """The lead's state from the `leads` projection; a lead the projector has not reached
    yet (just captured) is folded from the log instead. LeadNotFound if there is none."""
    with store.engine.connect() as conn:
        projected = find_lead(conn, str(lead_id))
    return projected if projected is not None else store.event_log.lead_state(lead_id)


def visible_lead(store: Store, caller: Caller, lead_id: UUID) -> LeadState:
    """`current_lead`, or LeadNotFound when it is outside the caller's scope."""
    state = current_lead(store, lead_id)
    if not caller.lead_scope.allows(owner=state.owner, team=state.team, in_pool=state.in_pool):
        raise LeadNotFound(f"no lead {lead_id}")
    return state


def check_visible(store: Store, caller: Caller, lead_id: UUID) -> None:
    """LeadNotFound unless the caller may see the lead (nothing is read for a caller who
    sees every lead: an unknown lead is the route's own 404)."""
    if not caller.lead_scope.everything:
        visible_lead(store, caller, lead_id)
