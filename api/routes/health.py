"""GET /health (the process is alive) and GET /ready (bundle loaded and warmed; 503 until then)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from mlci.api.responses import OrjsonResponse
from mlci.api.routes import answer_head
from mlci.api.state import service

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process answers")
async def health() -> OrjsonResponse:
    return OrjsonResponse({"status": "ok"})


@router.get(
    "/ready",
    summary="Readiness: bundle loaded, warmed and reproducing its reference outputs",
    responses={503: {"description": "not ready yet (or the warm-up check failed)"}},
)
async def ready(request: Request) -> OrjsonResponse:
    state = service(request)
    body = {
        "status": "ready" if state.ready else "not_ready",
        "reason": None if state.ready else state.ready_reason,
        "model": {"name": state.bundle.name, "version": state.bundle.version},
        "warmup_ms": state.warmup_ms,
    }
    return OrjsonResponse(body, status_code=200 if state.ready else 503)


answer_head(router)
