"""Traces are off unless the standard OTEL_* variables ask for them, and what they ask for
is what is built (leadflow.tracing)."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from leadflow.tracing import (
    TracingMisconfigured,
    trace_id_of,
    tracer_provider_from_environment,
)


def exporters(provider: TracerProvider) -> list[type]:
    processors = provider._active_span_processor._span_processors
    assert all(isinstance(p, BatchSpanProcessor) for p in processors)
    return [type(p._batch_processor._exporter) for p in processors]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_SERVICE_NAME": "crm"},  # naming the service alone turns nothing on
        {"OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "TRUE"},
    ],
)
def test_traces_are_off_unless_asked_for(environ: dict[str, str]) -> None:
    assert tracer_provider_from_environment("api", environ) is None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"OTEL_TRACES_EXPORTER": "otlp"}, [OTLPSpanExporter]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, [OTLPSpanExporter]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, [OTLPSpanExporter]),
        ({"OTEL_TRACES_EXPORTER": "console"}, [ConsoleSpanExporter]),
        (
            {
                "OTEL_TRACES_EXPORTER": "otlp, console",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            [OTLPSpanExporter, ConsoleSpanExporter],
        ),
    ],
)
def test_the_exporters_asked_for_are_built(environ: dict[str, str], expected: list[type]) -> None:
    provider = tracer_provider_from_environment("worker", environ)
    assert provider is not None
    try:
        assert exporters(provider) == expected
    finally:
        provider.shutdown()


def test_the_service_is_leadflow_and_names_its_process_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The resource is read from the process's environment, as the SDK does.
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    on = {"OTEL_TRACES_EXPORTER": "console"}
    provider = tracer_provider_from_environment("projector", on)
    assert provider is not None
    assert provider.resource.attributes[SERVICE_NAME] == "leadflow"
    assert provider.resource.attributes["leadflow.process"] == "projector"
    provider.shutdown()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "crm-leads")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod")
    named = tracer_provider_from_environment("api", on)
    assert named is not None
    assert named.resource.attributes[SERVICE_NAME] == "crm-leads"
    assert named.resource.attributes["deployment.environment"] == "prod"
    named.shutdown()


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "jaeger"),
        ({"OTEL_TRACES_EXPORTER": "otlp,zipkin"}, "zipkin"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "grpc"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            },
            "grpc",
        ),
    ],
)
def test_what_cannot_be_exported_to_is_refused_by_name(environ: dict[str, str], named: str) -> None:
    with pytest.raises(TracingMisconfigured, match=named):
        tracer_provider_from_environment("api", environ)


@pytest.mark.parametrize(
    ("traceparent", "trace_id"),
    [
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ),
        # Not sampled: nothing of that trace was exported.
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", None),
        (None, None),
        ("garbage", None),
        ("00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),
    ],
)
def test_the_trace_id_is_read_from_a_traceparent(
    traceparent: str | None, trace_id: str | None
) -> None:
    assert trace_id_of(traceparent) == trace_id
