"""Traces from real processes: `leadflow dev` with only the standard
`OTEL_EXPORTER_OTLP_ENDPOINT` set exports, over OTLP/HTTP to a real receiver, one trace per
posted lead that crosses the API, the projector's dispatcher and the worker; the console's
timeline links each event to its trace (`LEADFLOW_TRACE_URL`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from chromium import start_chromium
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait
from support import free_port, settles

if TYPE_CHECKING:
    from conftest import Processes

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(300)]

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
TRACE_URL = "http://traces.example/trace/{trace_id}"


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP receiver: every span posted to /v1/traces, as (process, span name,
    trace id)."""

    def __init__(self, port: int) -> None:
        self.spans: list[tuple[str, str, str]] = []
        self.paths: set[str] = set()
        super().__init__(("127.0.0.1", port), _Receive)


class _Receive(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.paths.add(self.path)
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            process = f"{attributes['service.name']}/{attributes['leadflow.process']}"
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.server.spans.append((process, span.name, span.trace_id.hex()))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector(free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_one_lead_is_one_trace_across_the_processes(
    processes: Processes, tmp_path: Path, collector: Collector
) -> None:
    dev = processes.leadflow_dev(
        tmp_path / "data",
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_port}",
            "OTEL_BSP_SCHEDULE_DELAY": "200",  # ms: export within a moment
            "LEADFLOW_TRACE_URL": TRACE_URL,
        },
    )
    dev.wait_ready()
    async with httpx.AsyncClient(base_url=dev.api_url, timeout=30) as http:
        posted = await http.post(
            "/v1/events",
            json={"type": "lead.captured", "data": {"email": "otlp@x.io", "source": "website"}},
            headers={"Authorization": f"Bearer {dev.admin_key}", "traceparent": TRACEPARENT},
        )
        assert posted.status_code == 202, posted.text
        lead_id = posted.json()["lead_id"]

        expected = {
            ("leadflow/api", "POST /v1/events"),
            ("leadflow/projector", "deliver lead.captured"),
            ("leadflow/projector", "SignalWithStartWorkflow:LeadWorkflow"),
            ("leadflow/worker", "RunWorkflow:LeadWorkflow"),
            ("leadflow/worker", "RunActivity:decide"),
        }

        async def traced() -> set[tuple[str, str]] | None:
            seen = {(p, name) for p, name, trace in collector.spans if trace == TRACE_ID}
            return seen if expected <= seen else None

        try:
            await settles(traced, "the lead's spans from every process", 90)
        except AssertionError:
            seen = sorted({(p, n) for p, n, t in collector.spans if t == TRACE_ID})
            raise AssertionError(f"spans of the trace received: {seen}") from None
        timeline = await http.get(
            f"/v1/leads/{lead_id}/events", headers={"Authorization": f"Bearer {dev.admin_key}"}
        )
    assert collector.paths == {"/v1/traces"}
    types = {event["type"]: event["trace_id"] for event in timeline.json()["events"]}
    assert types["lead.captured"] == TRACE_ID
    assert types["lead.assigned"] == TRACE_ID

    # The console's timeline: each event of the lead links to its trace.
    driver = start_chromium()
    try:
        driver.get(f"{dev.api_url}/leads")
        driver.execute_script(
            "sessionStorage.setItem('leadflow.apiKey', arguments[0])", dev.admin_key
        )
        driver.get(f"{dev.api_url}/leads/{lead_id}")
        links = WebDriverWait(driver, 30).until(
            lambda d: d.find_elements(
                By.CSS_SELECTOR, "#lead-timeline td a[href*='traces.example']"
            ),
            message="the timeline's trace links",
        )
        hrefs = {link.get_attribute("href") for link in links}
        headers = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#lead-timeline th")]
    finally:
        driver.quit()
    assert hrefs == {TRACE_URL.replace("{trace_id}", TRACE_ID)}
    assert "Trace" in headers
