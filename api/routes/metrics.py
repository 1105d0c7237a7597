"""GET /metrics: the API process's Prometheus metrics (`api.metrics`), text format."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """This process's counters and histograms, then the flow's figures read from the
    database now (a registry of the app's own, so two apps in one process never clash)."""
    flow: CollectorRegistry = request.app.state.flow_metrics

    def render() -> bytes:
        return generate_latest(REGISTRY) + generate_latest(flow)

    return Response(await run_in_threadpool(render), media_type=CONTENT_TYPE_LATEST)
