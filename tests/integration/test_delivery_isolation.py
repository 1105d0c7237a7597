"""One lead's delivery failure stays with that lead (the dispatcher and the quarantine, on
real SQLite and PostgreSQL). Temporal is the edge faked here: a `deliver` that refuses the
leads a test names, as Temporal refuses a payload over its blob limit, or that is away for
everyone, as during an outage."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from support import until
from temporalio.service import RPCError, RPCStatusCode

from delivery.dispatcher import FOLLOWER_NAME, DeliveryOutage, Dispatcher
from delivery.temporal import is_outage
from domain.events import parse_event
from domain.state import LoggedEvent
from leadflow.bootstrap import Store
from store.log_watch import LogWatch
from store.quarantine import (
    DELIVERY,
    PARKED,
    RESOLVED,
    RETRYING,
    SKIPPED,
    RetryPolicy,
)

REFUSED = RPCError("Blob data size exceeds limit.", RPCStatusCode.INVALID_ARGUMENT, b"")
AWAY = RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")


@dataclass
class FakeTemporal:
    """Takes deliveries, refusing with the error given the events of the leads in `refuse`
    (every event of a lead, or one type of event when keyed by `(lead_id, type)`)."""

    delivered: list[LoggedEvent] = field(default_factory=list)
    refuse: dict[str | tuple[str, str], Exception] = field(default_factory=dict)
    away: bool = False

    async def deliver(self, event: LoggedEvent) -> None:
        if self.away:
            raise AWAY
        for key in (event.lead_id, (event.lead_id, event.type)):
            if key in self.refuse:
                raise self.refuse[key]
        self.delivered.append(event)

    def of(self, lead_id: UUID) -> list[tuple[str, int]]:
        return [(e.type, e.sequence) for e in self.delivered if e.lead_id == str(lead_id)]


def post(store: Store, body: dict[str, Any]) -> Any:
    [result] = store.append([parse_event(body, now=datetime.now(UTC), phone_region="CN")], [None])
    return result


def capture(store: Store, email: str) -> UUID:
    lead_id: UUID = post(
        store, {"type": "lead.captured", "data": {"email": email, "source": "web"}}
    ).lead_id
    return lead_id


def follow_up(store: Store, lead_id: UUID) -> None:
    post(
        store,
        {"type": "lead.followed_up", "lead_id": str(lead_id), "data": {"rep_id": "rep-a"}},
    )


def dispatcher_of(store: Store, temporal: FakeTemporal, **policy: Any) -> Dispatcher:
    store.quarantine.policy = RetryPolicy(
        **{"max_attempts": 3, "first_delay": timedelta(0), **policy}
    )
    return Dispatcher(
        store.event_log, store.positions, temporal.deliver, store.quarantine, is_outage=is_outage
    )


async def test_a_refused_lead_is_held_while_the_others_are_delivered(store: Store) -> None:
    temporal = FakeTemporal()
    dispatcher = dispatcher_of(store, temporal, first_delay=timedelta(hours=1))
    poison, ann, bob = (capture(store, f"{n}@example.com") for n in ("poison", "ann", "bob"))
    temporal.refuse[str(poison)] = REFUSED

    await dispatcher.dispatch_page()
    follow_up(store, poison)  # later events of a held lead wait for it
    follow_up(store, ann)
    await dispatcher.dispatch_page()
    await dispatcher.retry_due()  # not due for an hour

    assert temporal.of(ann) == [("lead.captured", 1), ("lead.followed_up", 2)]
    assert temporal.of(bob) == [("lead.captured", 1)]
    assert temporal.of(poison) == []
    assert store.positions.get(FOLLOWER_NAME) == store.event_log.max_position()
    [item] = store.quarantine.find()
    assert (item.stage, item.lead_id, item.event_type, item.sequence) == (
        DELIVERY,
        str(poison),
        "lead.captured",
        1,
    )
    assert (item.status, item.attempts) == (RETRYING, 1)
    assert "Blob data size exceeds limit" in item.error


async def test_a_held_lead_is_retried_on_its_own_and_delivered_in_order(store: Store) -> None:
    temporal = FakeTemporal()
    dispatcher = dispatcher_of(store, temporal)
    poison = capture(store, "poison@example.com")
    temporal.refuse[str(poison)] = REFUSED
    await dispatcher.dispatch_page()
    follow_up(store, poison)
    await dispatcher.dispatch_page()
    await dispatcher.retry_due()  # due at once (no delay in this policy): fails again
    [item] = store.quarantine.find()
    assert (item.status, item.attempts) == (RETRYING, 2)

    del temporal.refuse[str(poison)]  # the cause went away (Temporal's limit raised, say)
    await dispatcher.retry_due()

    assert temporal.of(poison) == [("lead.captured", 1), ("lead.followed_up", 2)]
    assert store.quarantine.find() == []
    assert store.quarantine.get(item.item_id).status == RESOLVED
    # Released: its next event goes the normal way.
    follow_up(store, poison)
    await dispatcher.dispatch_page()
    assert temporal.of(poison)[-1] == ("lead.followed_up", 3)


async def test_after_the_last_attempt_a_lead_is_parked_until_an_operator_acts(
    store: Store,
) -> None:
    temporal = FakeTemporal()
    dispatcher = dispatcher_of(store, temporal, max_attempts=2)
    poison = capture(store, "poison@example.com")
    temporal.refuse[str(poison), "lead.captured"] = REFUSED
    await dispatcher.dispatch_page()
    await dispatcher.retry_due()
    [item] = store.quarantine.find()
    assert (item.status, item.attempts, item.next_attempt_at) == (PARKED, 2, None)
    assert store.quarantine.counts()[PARKED] == 1

    follow_up(store, poison)
    await dispatcher.dispatch_page()
    assert await dispatcher.retry_due() == 0  # parked: nothing happens by itself
    assert temporal.of(poison) == []

    # The operator drops the capture Temporal cannot take; the follow-up goes through.
    store.quarantine.request(item.item_id, "skip")
    assert await dispatcher.retry_due() == 1
    assert temporal.of(poison) == [("lead.followed_up", 2)]
    assert store.quarantine.get(item.item_id).status == SKIPPED


async def test_an_operator_retry_delivers_a_parked_lead(store: Store) -> None:
    temporal = FakeTemporal()
    dispatcher = dispatcher_of(store, temporal, max_attempts=1)
    poison = capture(store, "poison@example.com")
    temporal.refuse[str(poison)] = REFUSED
    await dispatcher.dispatch_page()
    [item] = store.quarantine.find()
    assert item.status == PARKED

    del temporal.refuse[str(poison)]
    store.quarantine.request(item.item_id, "retry")
    await dispatcher.retry_due()

    assert temporal.of(poison) == [("lead.captured", 1)]
    assert store.quarantine.get(item.item_id).status == RESOLVED


async def test_a_running_dispatcher_acts_on_an_operator_retry_while_the_log_is_still(
    store: Store,
) -> None:
    """Between pages the dispatcher looks at the quarantine on a schedule of its own
    (`quarantine_check_seconds`), so an operator's retry needs no new event to be seen."""
    temporal = FakeTemporal()
    dispatcher = dispatcher_of(store, temporal, max_attempts=1)
    dispatcher.quarantine_check_seconds = 0.05
    poison = capture(store, "poison@example.com")
    temporal.refuse[str(poison)] = REFUSED
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher.run_forever(stop, LogWatch(poll_seconds=0.05)))
    try:
        await until(lambda: store.quarantine.find(statuses=[PARKED]), "parked", 10)
        [item] = store.quarantine.find()
        del temporal.refuse[str(poison)]
        store.quarantine.request(item.item_id, "retry")
        await until(lambda: temporal.of(poison), "delivered after the retry", 10)
    finally:
        stop.set()
        await running
    assert temporal.of(poison) == [("lead.captured", 1)]
    assert store.quarantine.get(item.item_id).status == RESOLVED


async def test_an_outage_for_everyone_keeps_the_page_and_parks_nobody(store: Store) -> None:
    temporal = FakeTemporal(away=True)
    dispatcher = dispatcher_of(store, temporal, max_attempts=1)
    ann, bob = capture(store, "ann@example.com"), capture(store, "bob@example.com")

    for _ in range(3):
        with pytest.raises(DeliveryOutage):
            await dispatcher.dispatch_page()
    assert store.positions.get(FOLLOWER_NAME) == 0
    assert store.quarantine.find() == []

    temporal.away = False
    await dispatcher.dispatch_page()
    assert (temporal.of(ann), temporal.of(bob)) == ([("lead.captured", 1)], [("lead.captured", 1)])


async def test_an_outage_of_one_lead_is_retried_without_ever_parking_it(store: Store) -> None:
    temporal = FakeTemporal()
    dispatcher = dispatcher_of(store, temporal, max_attempts=1)
    flaky, ann = capture(store, "flaky@example.com"), capture(store, "ann@example.com")
    temporal.refuse[str(flaky)] = AWAY  # an outage seen by one lead's call only

    await dispatcher.dispatch_page()
    for _ in range(3):
        await dispatcher.retry_due()

    [item] = store.quarantine.find()
    assert (item.status, item.attempts) == (RETRYING, 0)
    assert temporal.of(ann) == [("lead.captured", 1)]
    del temporal.refuse[str(flaky)]
    await dispatcher.retry_due()
    assert temporal.of(flaky) == [("lead.captured", 1)]
