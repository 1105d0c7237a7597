"""POST /v1/leads/{id}/erase and GET /v1/leads/{id}/export (admin): a lead's right to be
forgotten and to see what is held about it (GDPR, PIPL; docs/erasure.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from sqlalchemy import select

from api.deps import StoreDep, require
from api.erasure_responses import LeadErasure, LeadExport
from api.responses import KEYED, answer, refused
from api.routes.leads import lead_body, timeline_entry
from leadflow.bootstrap import Store, projections
from store.keys import Caller
from store.quarantine import OPEN, RESOLVED, SKIPPED

router = APIRouter(prefix="/v1/leads", tags=["leads"])

Admin = Annotated[Caller, Depends(require("admin"))]
NO_LEAD = refused(*KEYED, 404, meanings={404: "No such lead (`lead_not_found`)."})


@router.post("/{lead_id}/erase", response_model=answer(LeadErasure), responses=NO_LEAD)
async def erase_lead(lead_id: UUID, store: StoreDep, caller: Admin) -> dict[str, Any]:
    """Make the lead's personal data (email, phone, name, company, attributes, notes,
    recipients) unreadable everywhere leadflow keeps it: its data key is deleted, its
    identity index entries removed, read models blanked by the projector as it reads the
    `lead.erased` fact. The lead itself stays (stage, owner, counts in reports). Repeating
    it answers the first erasure (`already_erased: true`)."""
    return await run_in_threadpool(_erase, store, lead_id, caller.key_id)


def _erase(store: Store, lead_id: UUID, erased_by: str) -> dict[str, Any]:
    erased = store.event_log.erase_lead(lead_id, erased_by=erased_by, now=datetime.now(UTC))
    blanked = store.quarantine.forget_errors(str(lead_id))
    return {**erased.as_dict(), "quarantine_errors_blanked": blanked}


@router.get("/{lead_id}/export", response_model=answer(LeadExport), responses=NO_LEAD)
async def export_lead(lead_id: UUID, store: StoreDep, caller: Admin) -> dict[str, Any]:
    """Everything held about the lead as JSON: its events, decoded (personal fields null
    once erased), its state, its rows in every read model and its quarantine items."""
    return await run_in_threadpool(_export, store, lead_id)


def _export(store: Store, lead_id: UUID) -> dict[str, Any]:
    log = store.event_log
    events = log.lead_events(lead_id)  # LeadNotFound: 404
    state = log.lead_state(lead_id)
    erased_at = log.keyring.erased_at(str(lead_id))
    read_models: dict[str, list[dict[str, Any]]] = {}
    with store.engine.connect() as conn:
        for projection in projections():
            table = getattr(projection, "table", None)
            if table is None or "lead_id" not in table.c:
                continue
            rows = conn.execute(select(table).where(table.c.lead_id == str(lead_id))).mappings()
            read_models[table.name] = [
                jsonable_encoder({k: v for k, v in row.items() if k != "state"}) for row in rows
            ]
    items = store.quarantine.find(
        statuses=(*OPEN, RESOLVED, SKIPPED), lead_id=str(lead_id), limit=1000
    )
    return {
        "lead_id": str(lead_id),
        "exported_at": datetime.now(UTC).isoformat(),
        "erased": state.erased,
        "data_key": {
            "exists": log.keyring.key_for_reading(str(lead_id)) is not None,
            "erased_at": None if erased_at is None else erased_at.isoformat(),
        },
        "state": jsonable_encoder(lead_body(state)),
        "events": [timeline_entry(e) for e in events],
        "read_models": read_models,
        "quarantine": [item.as_json() for item in items],
    }
