"""Acting as a person (issue #19): what the events routes check before appending when the
caller is a person signed in to the console (`Caller.role` set), by the pure
`domain.acting` against each lead's current read model row. An API key passes as
before."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from fastapi.concurrency import run_in_threadpool

from domain.acting import LeadPlace, NotPermitted, Person, refusal
from domain.errors import FieldError, LeadNotFound
from domain.events import IncomingEvent
from leadflow.bootstrap import Store
from projections.leads import find_lead
from store.keys import Caller


def lead_place(store: Store, lead_id: str) -> LeadPlace | None:
    """The lead's owner, team and pool flag from the `leads` read model (folded from the log
    when the projector has not reached it yet); None when there is no such lead."""
    with store.engine.connect() as conn:
        state = find_lead(conn, lead_id)
    if state is None:
        try:
            state = store.event_log.lead_state(UUID(lead_id))
        except LeadNotFound:
            return None
    return LeadPlace(owner=state.owner, team=state.team, in_pool=state.in_pool)


def refusals_of(
    store: Store, caller: Caller, events: Sequence[IncomingEvent]
) -> list[FieldError | None]:
    """Why the person `caller` may not append each of `events` (None: they may), reading
    the directory once; all None for an API key."""
    if caller.role is None:
        return [None] * len(events)
    person = Person(caller.role, caller.person_id)
    directory = store.rulebook.directory()
    return [
        refusal(
            person,
            event.type,
            event.data,
            None if event.lead_id is None else lead_place(store, str(event.lead_id)),
            directory,
        )
        for event in events
    ]


def _check_all(
    store: Store, caller: Caller, events: Sequence[IncomingEvent], prefix: str | None
) -> None:
    for index, fault in enumerate(refusals_of(store, caller, events)):
        if fault is not None:
            if prefix is not None:
                fault = FieldError(
                    f"{prefix}/{index}{fault.path}", f"event {index}: {fault.message}"
                )
            raise NotPermitted(fault)


async def check_acting(
    store: Store, caller: Caller, events: Sequence[IncomingEvent], prefix: str | None = None
) -> None:
    """Raise `NotPermitted` (403) when a person may not append one of `events` (`prefix`: the
    pointer of the list they came in, e.g. `/events`); nothing to check for an API key."""
    if caller.role is None:
        return
    await run_in_threadpool(_check_all, store, caller, events, prefix)
