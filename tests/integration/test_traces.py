"""Traces over the real pipeline (SQLite and PostgreSQL, a real Temporal dev server): one
posted lead is one trace from the HTTP request through the append, the dispatcher's
signal, the workflow and its activities, in an in-memory exporter; the trace id is kept on
the event and on the decisions it caused, and the lead's timeline names it. With no
tracer nothing is stamped."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from api.app import create_app
from leadflow.settings import Settings
from leadflow.tracing import TRACER_NAME

if TYPE_CHECKING:
    from conftest import RunPipeline

ADMIN = {"Authorization": "Bearer lf_test_admin"}
# The trace a client started: the API continues it (W3C trace context).
CLIENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01"


@pytest.fixture
def exported() -> Iterator[tuple[Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer(TRACER_NAME), exporter
    provider.shutdown()


def capture(email: str) -> dict[str, Any]:
    return {"type": "lead.captured", "data": {"email": email, "source": "website"}}


def only(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, f"{name}: {len(found)} spans in {sorted(s.name for s in spans)}"
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


async def test_a_posted_lead_is_one_trace_from_the_request_to_its_activities(
    temporal_settings: Settings,
    run_pipeline: RunPipeline,
    exported: tuple[Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = exported
    async with run_pipeline(temporal_settings, tracer=tracer) as pipeline:
        with TestClient(create_app(temporal_settings, tracer)) as api:
            posted = await asyncio.to_thread(
                api.post,
                "/v1/events",
                json=capture("traced@x.io"),
                headers={**ADMIN, "traceparent": TRACEPARENT},
            )
            assert posted.status_code == 202, posted.text
            lead_id = UUID(posted.json()["lead_id"])
            await pipeline.eventually(lead_id, lambda state: state.owner is not None)
            timeline = await asyncio.to_thread(
                api.get, f"/v1/leads/{lead_id}/events", headers=ADMIN
            )

    spans = [s for s in exporter.get_finished_spans() if s.context is not None]
    trace = [s for s in spans if s.context and f"{s.context.trace_id:032x}" == CLIENT_TRACE_ID]
    request = only(trace, "POST /v1/events")
    deliver = only(trace, "deliver lead.captured")
    signal = only(trace, "SignalWithStartWorkflow:LeadWorkflow")
    # The chain the trace follows across the API, the dispatcher and Temporal.
    assert parent_of(request) == int(CLIENT_SPAN_ID, 16)
    assert parent_of(deliver) == request.context.span_id
    assert parent_of(signal) == deliver.context.span_id
    assert request.attributes is not None and request.attributes["http.route"] == "/v1/events"
    assert request.attributes["http.response.status_code"] == 202
    assert deliver.attributes is not None and deliver.attributes["leadflow.lead_id"] == str(lead_id)
    names = {span.name for span in trace}
    # The worker's side: the workflow started by the signal, and its decision activity.
    assert {"RunWorkflow:LeadWorkflow", "HandleSignal:event", "RunActivity:decide"} <= names, names
    run_activity = only(trace, "RunActivity:decide")
    start_activity = only(trace, "StartActivity:decide")
    assert parent_of(run_activity) == start_activity.context.span_id

    # The lead's timeline names the trace: the posted event, and what it caused.
    assert timeline.status_code == 200
    events = timeline.json()["events"]
    by_type = {event["type"]: event for event in events}
    assert by_type["lead.captured"]["trace_id"] == CLIENT_TRACE_ID
    assert by_type["lead.assigned"]["trace_id"] == CLIENT_TRACE_ID
    assert all("traceparent" not in event for event in events)


async def test_without_a_tracer_nothing_is_traced_or_stamped(
    temporal_settings: Settings,
    run_pipeline: RunPipeline,
    exported: tuple[Tracer, InMemorySpanExporter],
) -> None:
    """Traces off (the default): a client's `traceparent` is not kept, no event carries a
    trace, and nothing reaches an exporter that is not wired in."""
    _, exporter = exported
    async with run_pipeline(temporal_settings) as pipeline:
        with TestClient(create_app(temporal_settings)) as api:
            posted = await asyncio.to_thread(
                api.post,
                "/v1/events",
                json=capture("untraced@x.io"),
                headers={**ADMIN, "traceparent": TRACEPARENT},
            )
            lead_id = UUID(posted.json()["lead_id"])
            await pipeline.eventually(lead_id, lambda state: state.owner is not None)
            timeline = await asyncio.to_thread(
                api.get, f"/v1/leads/{lead_id}/events", headers=ADMIN
            )
        stored = pipeline.store.event_log.lead_events(lead_id)
    assert {event["trace_id"] for event in timeline.json()["events"]} == {None}
    assert {event.traceparent for event in stored} == {None}
    assert exporter.get_finished_spans() == ()
