"""The dispatcher: the log is the outbox (SPEC §3.2).

It follows the log from its tracked position and delivers every external lead event to
that lead's `LeadWorkflow` by signal-with-start. Events of one lead go in log order; leads
are delivered concurrently. It reads when the log grows (`store.log_watch`), not on
a timer.

One lead's failure stays with that lead (`store.quarantine`, stage `delivery`): an
event that cannot be delivered (a payload Temporal refuses, say) is recorded there, that
lead's later events are held, and the page goes on; the lead is tried again on its own
with backoff and parked after `RetryPolicy.max_attempts` failures. Only an outage —
Temporal away for every lead of a page — holds the position, and the page is delivered
again once Temporal is back (the workflow drops sequences it has seen). So a crash or an
outage never loses an event, and no event stops another lead's.

Several dispatchers (in several projector processes) share the log by partitions
(`store.partitions`, leased by `store.leases`): each delivers the leads of the partitions
it holds and keeps a position per partition; one page read serves all of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from prometheus_client import Counter

from domain.lead import EXTERNAL_LEAD_TOPICS
from domain.state import LoggedEvent
from store.log import EventLog
from store.log_watch import QUARANTINE_CHECK_SECONDS, Every, LogWatch, follow
from store.partitions import Partitions, partition_of
from store.positions import PositionStore, worth_moving
from store.quarantine import (
    DELIVERY,
    RESOLVED,
    SKIP_REQUESTED,
    SKIPPED,
    FailedEvent,
    Quarantine,
    QuarantineItem,
)

log = logging.getLogger(__name__)

FOLLOWER_NAME = "dispatcher"

DELIVERIES = Counter(
    "leadflow_dispatcher_deliveries",
    "Lead events the dispatcher handed to their workflows, by outcome (delivered, failed)",
    ["outcome"],
)

Deliver = Callable[[LoggedEvent], Awaitable[None]]
# Whether a delivery error means Temporal is away (for every lead) rather than that this
# lead's event cannot be delivered.
IsOutage = Callable[[BaseException], bool]


class DeliveryOutage(Exception):
    """No lead of a page could be delivered, for a reason that is nobody's event's fault
    (Temporal away): the page is delivered again later, its position kept."""


@dataclass(frozen=True)
class _Failure:
    position: int
    event: LoggedEvent
    error: BaseException


def _failed_event(position: int, event: LoggedEvent) -> FailedEvent:
    return FailedEvent(
        stream_id=event.lead_id,
        lead_id=event.lead_id,
        position=position,
        event_id=event.event_id,
        event_type=event.type,
        sequence=event.sequence,
    )


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class Dispatcher:
    def __init__(
        self,
        event_log: EventLog,
        positions: PositionStore,
        deliver: Deliver,
        quarantine: Quarantine,
        *,
        is_outage: IsOutage,
        concurrency: int = 32,
        page_size: int = 500,
        poll_seconds: float = 0.2,
        quarantine_check_seconds: float = QUARANTINE_CHECK_SECONDS,
        partitions: Partitions | None = None,
    ) -> None:
        self.event_log = event_log
        self.partitions = partitions or Partitions.whole()
        self.positions = positions
        self.deliver = deliver
        self.quarantine = quarantine
        self.is_outage = is_outage
        self.concurrency = concurrency
        self.page_size = page_size
        self.poll_seconds = poll_seconds
        self.quarantine_check_seconds = quarantine_check_seconds

    async def run_forever(self, stop: asyncio.Event, watch: LogWatch | None = None) -> None:
        """Deliver until `stop` is set: whenever `watch` says the log grew, and at the latest
        every `watch.poll_seconds` (without a watch: every `poll_seconds`). An outage keeps
        the page, and it is delivered again after a backoff (`store.log_watch.follow`).
        Held leads whose retry is due are looked for every `quarantine_check_seconds`."""
        check_quarantine = Every(self.quarantine_check_seconds)

        async def step() -> int:
            delivered = await self.dispatch_page()
            if check_quarantine():
                await self.retry_due()
            return delivered

        await follow(
            step,
            stop,
            watch or LogWatch(self.poll_seconds),
            page_size=self.page_size,
            what="delivery",
        )

    async def dispatch_page(self) -> int:
        """Deliver the next page of events (but those of leads held in quarantine); returns
        how many events the page had. Raises DeliveryOutage, with the position kept, when
        no lead could be delivered because Temporal is away."""
        positions = await asyncio.to_thread(self._positions)
        start = min(positions.values())
        entries, last = await asyncio.to_thread(
            self.event_log.lead_page_after, start, self.page_size, self.partitions
        )
        if not worth_moving(start, len(entries), last):
            return 0
        held = await asyncio.to_thread(self._open_items)
        by_lead: dict[str, list[tuple[int, LoggedEvent]]] = defaultdict(list)
        for entry in entries:
            position, event = entry
            # A partition of ours already delivered past this position.
            if position <= positions.get(self._partition(event.lead_id), position):
                continue
            if event.lead_id not in held:  # held: its events wait for its retry
                by_lead[event.lead_id].append(entry)
        failures = [
            failure
            for failure in await self._deliver_streams(list(by_lead.values()))
            if failure is not None
        ]
        everyone_failed = bool(failures) and len(failures) == len(by_lead)
        if everyone_failed and all(self.is_outage(f.error) for f in failures):
            raise DeliveryOutage(_describe(failures[0].error)) from failures[0].error
        if failures:
            await asyncio.to_thread(self._record, failures, held)
        moved = {
            self.partitions.tracking_name(FOLLOWER_NAME, partition): max(position, last)
            for partition, position in positions.items()
        }
        await asyncio.to_thread(self.positions.set_all, moved)
        log.debug("delivered %d events up to position %d", len(entries), last)
        return len(entries)

    async def retry_due(self) -> int:
        """Deliver again, in order, the held events of every lead whose retry is due (or
        that an operator asked to retry or skip); returns how many leads were handled."""
        due = await asyncio.to_thread(self._due, datetime.now(UTC))
        for item in due:
            await self._retry(item)
        return len(due)

    async def _retry(self, item: QuarantineItem) -> None:
        assert item.position is not None
        partition = self._partition(item.stream_id)
        up_to = (await asyncio.to_thread(self._positions))[partition]
        held = await asyncio.to_thread(self._held_entries, item, up_to)
        if item.status == SKIP_REQUESTED:
            held = [(p, e) for p, e in held if p != item.position]
            log.warning(
                "lead %s: delivery of %s skipped",
                item.lead_id,
                item.event_id,
                extra={"lead_id": item.lead_id},
            )
        [failure] = await self._deliver_streams([held])
        now = datetime.now(UTC)

        def settle() -> None:
            with self.quarantine.engine.begin() as conn:
                if failure is None:
                    done = SKIPPED if item.status == SKIP_REQUESTED else RESOLVED
                    self.quarantine.close(conn, item.item_id, done, now)
                    return
                failed = _failed_event(failure.position, failure.event)
                counted = not self.is_outage(failure.error)
                error = _describe(failure.error)
                if item.status == SKIP_REQUESTED or failure.position != item.position:
                    # Another event of the lead failed: the skipped one is done with.
                    self.quarantine.close(conn, item.item_id, SKIPPED, now)
                    self.quarantine.failed(conn, DELIVERY, failed, error, now, counted=counted)
                else:
                    self.quarantine.failed(
                        conn, DELIVERY, failed, error, now, counted=counted, earlier=item
                    )

        await asyncio.to_thread(settle)
        if failure is None:
            log.info(
                "lead %s: held events delivered", item.lead_id, extra={"lead_id": item.lead_id}
            )

    def _held_entries(self, item: QuarantineItem, up_to: int) -> list[tuple[int, LoggedEvent]]:
        assert item.position is not None
        notifications = self.event_log.stream_notifications(
            UUID(item.stream_id), item.position, up_to, EXTERNAL_LEAD_TOPICS
        )
        decoder = self.event_log.logged_event_decoder
        decoder.load_keys(notifications)
        return [(n.id, decoder.decode(n)) for n in notifications]

    async def _deliver_streams(
        self, streams: list[list[tuple[int, LoggedEvent]]]
    ) -> list[_Failure | None]:
        """Deliver each stream's events in order, streams concurrently; for each stream,
        None or the failure that stopped it (its later events were not delivered)."""
        gate = asyncio.Semaphore(self.concurrency)

        async def deliver_in_order(stream: list[tuple[int, LoggedEvent]]) -> _Failure | None:
            async with gate:
                for position, event in stream:
                    try:
                        await self.deliver(event)
                    except Exception as error:
                        DELIVERIES.labels("failed").inc()
                        return _Failure(position, event, error)
                    DELIVERIES.labels("delivered").inc()
                return None

        return list(await asyncio.gather(*(deliver_in_order(s) for s in streams)))

    def _partition(self, lead_id: str) -> int:
        return 0 if self.partitions.is_whole else partition_of(lead_id, self.partitions.count)

    def _positions(self) -> dict[int, int]:
        """The position of each partition this dispatcher holds."""
        held = sorted(self.partitions.held)
        names = [self.partitions.tracking_name(FOLLOWER_NAME, partition) for partition in held]
        return dict(zip(held, self.positions.get_all(names, FOLLOWER_NAME), strict=True))

    def _due(self, now: datetime) -> list[QuarantineItem]:
        with self.quarantine.engine.connect() as conn:
            due = self.quarantine.due(conn, [DELIVERY], now)
        return [item for item in due if self.partitions.holds(item.stream_id)]

    def _open_items(self) -> dict[str, QuarantineItem]:
        with self.quarantine.engine.connect() as conn:
            return self.quarantine.open_items(conn, DELIVERY)

    def _record(self, failures: list[_Failure], held: dict[str, QuarantineItem]) -> None:
        now = datetime.now(UTC)
        with self.quarantine.engine.begin() as conn:
            for failure in failures:
                counted = not self.is_outage(failure.error)
                item = self.quarantine.failed(
                    conn,
                    DELIVERY,
                    _failed_event(failure.position, failure.event),
                    _describe(failure.error),
                    now,
                    counted=counted,
                    earlier=held.get(failure.event.lead_id),
                )
                log.warning(
                    "lead %s: %s (sequence %d) not delivered, %s after %d attempt(s): %s",
                    failure.event.lead_id,
                    failure.event.type,
                    failure.event.sequence,
                    item.status,
                    item.attempts,
                    item.error,
                    extra={"lead_id": str(failure.event.lead_id)},
                )
