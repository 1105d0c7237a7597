"""Traces (OpenTelemetry): off unless the standard `OTEL_*` variables ask for them.

With traces on, one trace follows a posted event through every process it crosses:

    POST /v1/events (api)                    the HTTP request, a client's `traceparent`
                                             honoured; its context is kept on each event
                                             it appends (`traceparent`)
      deliver lead.captured (projector)      the dispatcher, continuing the event's trace
        SignalWithStartWorkflow:LeadWorkflow Temporal's interceptor from here on
          HandleSignal / RunWorkflow (worker)
            StartActivity / RunActivity:decide

The events a decision appends keep the trace of the event that caused them, so every
event of a lead's timeline names the trace it belongs to (`trace_id` in
`GET /v1/leads/{id}/events`, a link in the console when `LEADFLOW_TRACE_URL` is set).

Turned on by `OTEL_TRACES_EXPORTER` (`otlp`, `console`, or both, comma-separated) or by an
OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`);
`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` keeps them off. The OTLP exporter
speaks HTTP/protobuf and reads the rest of its `OTEL_EXPORTER_OTLP_*` variables itself (headers,
timeout, certificates), the sampler reads `OTEL_TRACES_SAMPLER(_ARG)`, the batch processor
`OTEL_BSP_*`, the resource `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` (default
service name `leadflow`, with `leadflow.process` naming api, worker or projector).

Off, nothing is built: the processes get no provider, the hooks below see None and do
nothing, and events are appended without a `traceparent`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Span, Tracer, format_trace_id, get_current_span
from temporalio.contrib.opentelemetry import TracingInterceptor

# The instrumentation scope of every span leadflow makes.
TRACER_NAME = "leadflow"
DEFAULT_SERVICE_NAME = "leadflow"
EXPORTERS = ("otlp", "console")


class TracingMisconfigured(ValueError):
    """An `OTEL_*` variable asks for something leadflow cannot export to."""


def tracer_provider_from_environment(
    process: str, environ: Mapping[str, str] = os.environ
) -> TracerProvider | None:
    """The provider the `OTEL_*` variables ask for, or None (traces off: the default)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporters = _exporters_asked(environ)
    if not exporters:
        return None
    provider = TracerProvider(resource=_resource(process))
    for exporter in exporters:
        provider.add_span_processor(_processor(exporter, environ))
    return provider


def _exporters_asked(environ: Mapping[str, str]) -> list[str]:
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not named:
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        return ["otlp"] if endpoint else []
    asked = [name.strip() for name in named.split(",") if name.strip()]
    if asked == ["none"]:
        return []
    unknown = [name for name in asked if name not in EXPORTERS]
    if unknown:
        raise TracingMisconfigured(
            f"OTEL_TRACES_EXPORTER: {', '.join(unknown)} is not one of "
            f"{', '.join(EXPORTERS)} (or none)"
        )
    return asked


def _processor(exporter: str, environ: Mapping[str, str]) -> SpanProcessor:
    if exporter == "console":
        return BatchSpanProcessor(ConsoleSpanExporter())
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if protocol != "http/protobuf":
        raise TracingMisconfigured(
            f"OTLP protocol {protocol!r}: leadflow exports traces over http/protobuf "
            "(collectors listen for it on port 4318)"
        )
    # Imported only when asked for: it brings `requests` and the protobuf messages.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return BatchSpanProcessor(OTLPSpanExporter())


def _resource(process: str) -> Resource:
    resource = Resource.create({"leadflow.process": process})
    named = resource.attributes.get(SERVICE_NAME)
    if not isinstance(named, str) or named.startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def tracer_of(provider: TracerProvider | None) -> Tracer | None:
    return None if provider is None else provider.get_tracer(TRACER_NAME)


def temporal_interceptors(tracer: Tracer | None) -> list[TracingInterceptor]:
    """Temporal's OpenTelemetry interceptor for a client (and the workers built on it):
    spans for signals, workflows and activities, the context carried in their headers."""
    return [] if tracer is None else [TracingInterceptor(tracer)]


def traceparent_of(span: Span) -> str | None:
    """The W3C `traceparent` of `span` (what is kept on an event), None if it is not
    recording."""
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def current_traceparent() -> str | None:
    """The `traceparent` of the span running now (a request's), None with traces off."""
    return traceparent_of(get_current_span())


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id (32 hex digits) in a W3C `traceparent`, None if there is none or the
    trace was not sampled (nothing of it was exported: there is nothing to look at)."""
    if traceparent is None:
        return None
    parts = traceparent.split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[3]) != 2:
        return None
    try:
        trace_id, flags = int(parts[1], 16), int(parts[3], 16)
    except ValueError:
        return None
    return format_trace_id(trace_id) if flags & 1 else None
