"""Appending posted events: the commit point of the ingest path (SPEC §3). Identity
resolution, the state guards and the idempotency record happen inside one transaction,
retried when a concurrent writer got there first; concurrent posts are committed together
(`append_many`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import LRUCache
from eventsourcing.persistence import IntegrityError

from domain.directory import Directory
from domain.errors import (
    DomainError,
    EventIdInUse,
    IdempotencyKeyReused,
    LeadAttributesFull,
    LeadNotFound,
)
from domain.events import LEADLESS_TYPES, IncomingEvent
from domain.identity import (
    campaign_id_for,
    idempotency_record_id,
    identity_index_id,
)
from domain.lead import (
    Campaign,
    IdempotencyRecord,
    IdentityIndex,
    Lead,
)
from domain.limits import merged_attributes_fault
from domain.pool import check_claim, claim_day
from domain.state import (
    LeadState,
    check_external_event,
)
from domain.workload import RepWorkload, rep_workload_id
from rules.model import PoolPolicy
from store.application import MAX_CONFLICT_RETRIES, LogApplication, recorder_of
from store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Appended:
    """What the API answers for one accepted event (SPEC §4)."""

    event_id: str
    lead_id: UUID | None
    sequence: int
    new_lead: bool
    duplicate: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "lead_id": str(self.lead_id) if self.lead_id else None,
            "sequence": self.sequence,
            "new_lead": self.new_lead,
            "duplicate": self.duplicate,
        }


@dataclass(frozen=True)
class PendingAppend:
    """One append of `append_many`: events with their idempotency keys, and whose keys
    they are (`scope`: the API key's stable id; None: the keys leadflow itself uses)."""

    events: Sequence[IncomingEvent]
    keys: Sequence[str | None]
    scope: str | None = None


class ItemRejected(DomainError):
    """Item `index` of an append was refused; nothing of the append was written."""

    def __init__(self, index: int, cause: DomainError) -> None:
        super().__init__(cause.message, cause.details)
        self.index = index
        self.cause = cause
        self.code = cause.code


class Ingest(LogApplication):
    """Appending posted events (mixed into `EventLog`)."""

    def append(
        self,
        events: Sequence[IncomingEvent],
        keys: Sequence[str | None],
        directory: Directory | None = None,
        pool: PoolPolicy | None = None,
        *,
        scope: str | None = None,
    ) -> list[Appended]:
        """Append validated events atomically, all or nothing, in order.

        `keys[i]` is event i's idempotency key (client event id or Idempotency-Key), one of
        `scope`'s (the API key that sent it): a key seen before in that scope answers the
        earlier result with `duplicate: true` and appends nothing.
        `directory` and `pool` are what claims are checked against (rep known, active, with
        room; the former owner's cool-down and the rep's daily claim limit).
        """
        # A lone capture is first written assuming its identities (and key) are new, without
        # reading: a known one already has its index (or idempotency record) stream, whose
        # unique (stream, version 1) key refuses the write, and the retry reads as usual.
        assume_new = _lone_capture(events)
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                return self._append_once(events, keys, directory, assume_new, pool, scope)
            except IntegrityError:
                # Another writer appended to one of these streams first: read again, retry.
                assume_new = False
                continue
        raise RuntimeError("could not append: too many concurrent writers on one stream")

    def _append_once(
        self,
        events: Sequence[IncomingEvent],
        keys: Sequence[str | None],
        directory: Directory | None,
        assume_new: bool = False,
        pool: PoolPolicy | None = None,
        scope: str | None = None,
    ) -> list[Appended]:
        # The reads and the write share one transaction (the library's nested transactions
        # join it): no BEGIN/ROLLBACK round trips per read, and on SQLite the in-process
        # write lock is taken once. What a concurrent writer did in between still surfaces
        # as an IntegrityError on the unique (stream, version) key, and `append` retries.
        with recorder_of(self).transaction(commit=True):
            return self._append_in_transaction(events, keys, directory, assume_new, pool, scope)

    def _append_in_transaction(
        self,
        events: Sequence[IncomingEvent],
        keys: Sequence[str | None],
        directory: Directory | None,
        assume_new: bool,
        pool: PoolPolicy | None,
        scope: str | None,
    ) -> list[Appended]:
        """One append's reads and writes, inside the caller's transaction. Raises
        ItemRejected before writing anything when an item is refused."""
        unit = IngestUnit(self, directory, pool, scope)
        unit.preload(events, keys, assume_new=assume_new)
        results: list[Appended] = []
        for index, (event, key) in enumerate(zip(events, keys, strict=True)):
            try:
                results.append(unit.add(event, key))
            except DomainError as exc:
                raise ItemRejected(index, exc) from exc
        unit.save()
        return results

    def append_many(
        self,
        appends: Sequence[PendingAppend],
        directory: Directory | None = None,
        pool: PoolPolicy | None = None,
    ) -> list[list[Appended] | DomainError]:
        """Several independent appends, each all or nothing as `append` makes it, committed
        together: one transaction and one commit (a group commit). Each answer is in its
        append's place: its results, or the DomainError (an ItemRejected) that refused it
        and left the others be.

        As `append` does for a lone capture, the group first writes its captures assuming
        their identities are new, without reading; if a unique key refuses that (a known
        identity, two members on one new identity), nothing of it is kept and the group is
        written again with reads (a member then sees the earlier members' writes). If that
        meets a concurrent writer too (another process), each append is made on its own, in
        order, with `append`'s retries.
        """
        if len(appends) > 1:
            for assume_new in (True, False):
                try:
                    return self._append_group(appends, directory, pool, assume_new)
                except IntegrityError:
                    # A read inside the group may have cached an aggregate with an earlier
                    # member's writes, which were just rolled back: forget every cached one.
                    if isinstance(self.repository.cache, LRUCache):
                        self.repository.cache.clear()
        answers: list[list[Appended] | DomainError] = []
        for pending in appends:
            try:
                answers.append(
                    self.append(pending.events, pending.keys, directory, pool, scope=pending.scope)
                )
            except DomainError as refused:
                answers.append(refused)
        return answers

    def _append_group(
        self,
        appends: Sequence[PendingAppend],
        directory: Directory | None,
        pool: PoolPolicy | None,
        assume_new: bool,
    ) -> list[list[Appended] | DomainError]:
        answers: list[list[Appended] | DomainError] = []
        with recorder_of(self).transaction(commit=True):
            for pending in appends:
                events = pending.events
                unread = assume_new and _lone_capture(events)
                try:
                    answers.append(
                        self._append_in_transaction(
                            events, pending.keys, directory, unread, pool, pending.scope
                        )
                    )
                except ItemRejected as refused:
                    answers.append(refused)  # it wrote nothing: the others go on
        return answers


def _lone_capture(events: Sequence[IncomingEvent]) -> bool:
    """An append of one capture: written assuming its identities (and key) are new, without
    reading first (docs/decisions.md, "Storage")."""
    return len(events) == 1 and events[0].is_capture


class IngestUnit(UnitOfWork):
    """The unit of one append: a batch sees its own earlier items; idempotency keys are
    answered from their records (in the scope of the API key that sent them)."""

    def __init__(
        self,
        log: LogApplication,
        directory: Directory | None = None,
        pool: PoolPolicy | None = None,
        scope: str | None = None,
    ) -> None:
        super().__init__(log, directory)
        self.pool = pool or PoolPolicy()
        self.scope = scope
        self.index_ids: dict[tuple[str, str], UUID] = {}  # uuid5 is not free: ~4 µs
        self.seen_keys: dict[str, tuple[str, Appended]] = {}

    def preload(
        self,
        events: Sequence[IncomingEvent],
        keys: Sequence[str | None],
        *,
        assume_new: bool = False,
    ) -> None:
        """Read every stream `add` will look at in two queries, however many events: the
        idempotency records, identity indexes, named leads and campaigns; then the leads the
        found indexes point at. (One read per stream made identity lookups 50-70% of a
        batch's time.) `assume_new`: read nothing, take all of them to be empty."""
        wanted = [
            record_id for key in keys if key is not None for record_id in self._record_ids(key)
        ]
        for event in events:
            if event.type in LEADLESS_TYPES:
                wanted.append(campaign_id_for(str(event.data["campaign_id"])))
            elif event.is_capture:
                wanted.extend(self._index_id(k, v) for k, v in event.identities.items())
            elif event.lead_id is not None:
                wanted.append(event.lead_id)
        if assume_new:
            self.loaded.update(dict.fromkeys(wanted))
            return
        self.load(wanted)
        self.load([a.lead_id for a in self.loaded.values() if isinstance(a, IdentityIndex)])

    def _index_id(self, kind: str, value: str) -> UUID:
        index_id = self.index_ids.get((kind, value))
        if index_id is None:
            index_id = self.index_ids[kind, value] = identity_index_id(kind, value)
        return index_id

    def add(self, event: IncomingEvent, key: str | None) -> Appended:
        if key is not None:
            earlier = self._earlier_answer(key, event.fingerprint)
            if earlier is not None:
                return earlier
        event_id = event.event_id or str(uuid4())
        if event.type in LEADLESS_TYPES:
            result = self._record_spend(event, event_id)
        elif event.is_capture:
            result = self._capture(event, event_id)
        else:
            result = self._record_on_lead(event, event_id)
        if key is not None:
            self.track(
                IdempotencyRecord.remember(
                    idempotency_record_id(key, self.scope),
                    fingerprint=event.fingerprint,
                    event_id=result.event_id,
                    lead_id=result.lead_id,
                    sequence=result.sequence,
                    new_lead=result.new_lead,
                )
            )
            self.seen_keys[key] = (event.fingerprint, result)
        return result

    def _earlier_answer(self, key: str, fingerprint: str) -> Appended | None:
        if key in self.seen_keys:
            seen_fingerprint, seen = self.seen_keys[key]
            record_fingerprint = seen_fingerprint
            answer = Appended(seen.event_id, seen.lead_id, seen.sequence, seen.new_lead, True)
        else:
            record = self._record(key, fingerprint)
            if record is None:
                return None
            record_fingerprint = record.fingerprint
            answer = Appended(
                record.event_id, record.lead_id, record.sequence, record.new_lead, True
            )
        if record_fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                f"idempotency key {key!r} was already used for a different event"
            )
        return answer

    def _record_ids(self, key: str) -> list[UUID]:
        """Where the answer to `key` may be recorded: in its scope, and (read only) where
        keys were kept before they were scoped."""
        if self.scope is None:
            return [idempotency_record_id(key)]
        return [idempotency_record_id(key, self.scope), idempotency_record_id(key)]

    def _record(self, key: str, fingerprint: str) -> IdempotencyRecord | None:
        """The record of an earlier post with `key` in this scope. A record kept before
        keys were scoped counts only for the same event: its key may have been another
        integration's."""
        scoped, *unscoped = self._record_ids(key)
        record = self.get(scoped)
        if isinstance(record, IdempotencyRecord):
            return record
        for record_id in unscoped:
            older = self.get(record_id)
            if isinstance(older, IdempotencyRecord) and older.fingerprint == fingerprint:
                return older
        return None

    def _check_event_id(self, lead: Lead, event_id: str) -> None:
        """Event ids are unique in a lead's stream: a decision names the event it answers
        by its id. Another integration's id (keys are scoped per API key) may clash."""
        if event_id in lead.event_ids:
            raise EventIdInUse(
                f"lead {lead.id} already has an event {event_id!r} (from another API key); "
                "use another event_id",
                [{"path": "/event_id", "message": "already used on this lead"}],
            )

    def _capture(self, event: IncomingEvent, event_id: str) -> Appended:
        lead_id: UUID | None = None
        unindexed: list[UUID] = []
        # Email first: when email and phone point at different leads, the email wins.
        for kind in ("email", "phone"):
            if kind not in event.identities:
                continue
            index_id = self._index_id(kind, event.identities[kind])
            index = self.get(index_id)
            if isinstance(index, IdentityIndex):
                lead_id = lead_id or index.lead_id
            else:
                unindexed.append(index_id)
        new_lead = lead_id is None
        if lead_id is None:
            lead = Lead.capture(
                uuid4(), event_id, event.occurred_at, event.data, event.traceparent, event.actor
            )
            self.adopt(lead, is_new=True)
        else:
            existing = self.get(lead_id)
            assert isinstance(existing, Lead)
            lead = existing
            # Checked before recording: the touch merges its attributes into the lead's.
            full = merged_attributes_fault(lead.state.attributes, event.data.get("attributes", {}))
            if full is not None:
                raise LeadAttributesFull(full.message, [full.as_dict()])
            self._check_event_id(lead, event_id)
            self.adopt(lead)
            lead.record(
                "lead.captured",
                event_id,
                event.occurred_at,
                event.data,
                event.traceparent,
                event.actor,
            )
        for index_id in unindexed:
            self.track(IdentityIndex.for_identity(index_id, lead.id))
        return Appended(event_id, lead.id, lead.version, new_lead, False)

    def _record_on_lead(self, event: IncomingEvent, event_id: str) -> Appended:
        assert event.lead_id is not None
        lead = self.get(event.lead_id)
        if not isinstance(lead, Lead):
            raise LeadNotFound(f"no lead {event.lead_id}")
        check_external_event(lead.state, event.type, event.data)
        self._check_event_id(lead, event_id)
        if event.type == "lead.claimed":
            rep_id = str(event.data["rep_id"])
            # Server time, not the client's occurred_at: a back-dated claim gains nothing.
            day = self._check_claimant(rep_id, lead.state, datetime.now(UTC))
            self.workload_for_change(rep_id).count_claim(str(lead.id), day)
        self.adopt(lead)
        lead.record(
            event.type, event_id, event.occurred_at, event.data, event.traceparent, event.actor
        )
        return Appended(event_id, lead.id, lead.version, False, False)

    def _check_claimant(self, rep_id: str, lead: LeadState, at: datetime) -> str:
        """Raise unless `rep_id` may claim this lead at `at` (see `domain.pool`); returns
        the claim's day, which the daily limit counts by."""
        day = claim_day(at)
        workload = self.existing(rep_workload_id(rep_id), RepWorkload)
        rep = self.directory.rep(rep_id) if self.directory else None
        claims_today = workload.claims.get(day, 0) if workload else 0
        check_claim(lead, rep_id, rep, self.open_leads(rep_id), claims_today, self.pool, at)
        return day

    def _record_spend(self, event: IncomingEvent, event_id: str) -> Appended:
        campaign_key = str(event.data["campaign_id"])
        stream_id = campaign_id_for(campaign_key)
        campaign = self.get(stream_id)
        if not isinstance(campaign, Campaign):
            campaign = Campaign.register(stream_id, campaign_key)
        sequence = campaign.record_spend(event_id, event.occurred_at, event.data)
        self.track(campaign)
        return Appended(event_id, None, sequence, False, False)
