"""GET /metrics: Prometheus text format: this app's own registry, or every worker's (see Metrics), then the
drift gauges computed from every worker's counts (mlci.api.drift)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from mlci.api.routes import answer_head
from mlci.api.state import service

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    state = service(request)
    return Response(state.metrics.exposition() + state.drift.exposition(), media_type=CONTENT_TYPE_LATEST)


answer_head(router)
