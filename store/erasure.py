"""Erasing a lead's personal data from the log (GDPR / PIPL; docs/erasure.md).

In one transaction: the lead's stream gets a `lead.erased` fact (who asked, when; no
personal data), its data key is deleted (every sealed field of its events, wherever a copy
of the log lives, becomes unreadable), the identity index entries that pointed at it are
deleted (a later capture of that email or phone is a new lead), and events stored before
sealing existed have their personal fields blanked in place — the one case where a stored
event's bytes change, since nothing else could make that plaintext unreadable.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from sqlalchemy import delete, update

from domain.identity import decided_event_id, identity_index_id
from domain.lead import IdentityIndex
from domain.personal import ERASED_TYPE, personal_fields
from domain.state import LoggedEvent
from store.application import MAX_CONFLICT_RETRIES, LogApplication, recorder_of
from store.sealing import SEALED_MARKER, SEALED_TOPICS, forget_overwritten_pages

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeadErased:
    """What an erasure did (or found done: `already`)."""

    lead_id: UUID
    event: LoggedEvent  # the `lead.erased` fact
    already: bool
    identities_removed: int = 0
    events_blanked: int = 0  # events stored before sealing, blanked in place

    def as_dict(self) -> dict[str, Any]:
        return {
            "lead_id": str(self.lead_id),
            "erased": True,
            "already_erased": self.already,
            "erased_at": self.event.recorded_at,
            "erased_by": self.event.data.get("erased_by"),
            "sequence": self.event.sequence,
            "identities_removed": self.identities_removed,
            "legacy_events_blanked": self.events_blanked,
        }


class Erasure(LogApplication):
    """Erasing leads' personal data (mixed into `EventLog`)."""

    def erase_lead(self, lead_id: UUID, *, erased_by: str, now: datetime) -> LeadErased:
        """Make the lead's personal data unreadable everywhere in the log (see the module).
        Idempotent: a lead already erased answers its earlier erasure. LeadNotFound for
        an unknown lead."""
        recorder = recorder_of(self)
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                with recorder.transaction(commit=True):
                    events = self.lead_events(lead_id)  # LeadNotFound
                    done = [e for e in events if e.type == ERASED_TYPE]
                    if done:
                        return LeadErased(lead_id, done[0], already=True)
                    identities = _identities(events)
                    lead = self.get_lead(lead_id)
                    erased = lead.erase(
                        decided_event_id(f"erase:{lead_id}"), now, {"erased_by": erased_by}
                    )
                    self.save(lead)
                    self.keyring.erase(str(lead_id), now)
                    removed = self._remove_identities(lead_id, identities)
                    blanked = self._blank_unsealed(lead_id)
                break
            except IntegrityError:
                continue  # the lead's workflow appended meanwhile: read it again
        else:
            raise RuntimeError("could not erase: too many concurrent writers on the lead")
        assert recorder.datastore.engine is not None
        forget_overwritten_pages(recorder.datastore.engine)
        log.info(
            "lead %s: personal data erased (%d identities, %d older events blanked)",
            lead_id,
            removed,
            blanked,
            extra={"lead_id": str(lead_id), "event_type": ERASED_TYPE},
        )
        return LeadErased(lead_id, erased.to_logged(), False, removed, blanked)

    def _remove_identities(self, lead_id: UUID, identities: set[tuple[str, str]]) -> int:
        """Delete the identity index streams that point at this lead (an identity that
        resolved to another lead when this one was touched with it stays that lead's)."""
        recorder = recorder_of(self)
        index_ids = [identity_index_id(kind, value) for kind, value in sorted(identities)]
        streams = recorder.select_streams(index_ids)
        mine = [
            index_id
            for index_id, stored in streams.items()
            if isinstance(index := self.mapper.to_domain_event(stored[0]), IdentityIndex.Created)
            and index.lead_id == lead_id
        ]
        if not mine:
            return 0
        table = recorder.events_record_cls.__table__
        with recorder.transaction(commit=True) as session:
            session.connection().execute(delete(table).where(table.c.originator_id.in_(mine)))
        cache = self.repository.cache
        if cache is not None:
            for index_id in mine:
                with contextlib.suppress(KeyError):
                    cache.get(index_id, evict=True)
        return len(mine)

    def _blank_unsealed(self, lead_id: UUID) -> int:
        """Blank, in place, the personal fields of this lead's events stored before sealing
        existed (plaintext no key deletion could reach)."""
        recorder = recorder_of(self)
        table = recorder.events_record_cls.__table__
        blanked = 0
        with recorder.transaction(commit=True) as session:
            connection = session.connection()
            for stored in recorder.select_events(lead_id):
                event_type = SEALED_TOPICS.get(stored.topic)
                if event_type is None or SEALED_MARKER in stored.state:
                    continue
                state = json.loads(stored.state)
                data = state.get("data") or {}
                names = [n for n in personal_fields(event_type) if data.get(n) not in (None, {})]
                if not names:
                    continue
                for name in names:
                    del data[name]
                connection.execute(
                    update(table)
                    .where(
                        table.c.originator_id == lead_id,
                        table.c.originator_version == stored.originator_version,
                    )
                    .values(state=json.dumps(state, separators=(",", ":")).encode())
                )
                blanked += 1
        return blanked


def _identities(events: list[LoggedEvent]) -> set[tuple[str, str]]:
    """Every (kind, normalised value) the lead was captured with, touches included."""
    found: set[tuple[str, str]] = set()
    for event in events:
        if event.type == "lead.captured":
            for kind in ("email", "phone"):
                value = event.data.get(kind)
                if isinstance(value, str):
                    found.add((kind, value))
    return found
