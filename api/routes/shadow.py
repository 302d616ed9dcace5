"""GET /shadow/answers: what this API answered to /predict, by request id, for `mlci shadow report`."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from mlci.api.responses import OrjsonResponse
from mlci.api.routes import answer_head
from mlci.api.shadow import MAX_PAGE, AnswerRing
from mlci.api.state import service

router = APIRouter(tags=["monitoring"])


@router.get(
    "/shadow/answers",
    summary="Answers to /predict after `since` (ns), oldest first: request id, status, latency, labels, probabilities",
)
async def answers(
    request: Request,
    since: int = Query(default=0, ge=0, description="return answers recorded after this time (ns since the epoch)"),
    limit: int = Query(default=1000, ge=1, le=MAX_PAGE),
) -> OrjsonResponse:
    state = service(request)
    _authorize(request, state.settings.shadow_token)
    ring: AnswerRing = state.extra["shadow"]
    # Merging the workers' rings and sorting them is CPU work: off the event loop that serves /predict.
    page = await run_in_threadpool(ring.page, since, limit, ring.snapshot())
    return OrjsonResponse(
        {
            "model": {"name": state.bundle.name, "version": state.bundle.version},
            "classes": state.bundle.classes,
            "answers": page.answers,
            "next": page.next,
            "more": page.more,
        }
    )


def _authorize(request: Request, token: str | None) -> None:
    """With MLCI_SHADOW_TOKEN set (every deployed slot), only its holder reads the answers: they are other
    clients' predictions, and the endpoint is on the router's public port like /predict."""
    if token is None:
        return
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise HTTPException(
            status_code=401,
            detail="GET /shadow/answers needs this slot's shadow token (mlci shadow report reads it from the slot)",
            headers={"WWW-Authenticate": "Bearer"},
        )


answer_head(router)
