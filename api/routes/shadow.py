"""GET /shadow/answers: what this API answered to /predict, by request id, for `mlci shadow report`."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from api.responses import OrjsonResponse
from api.routes import answer_head
from api.shadow import MAX_PAGE, AnswerRing
from api.state import service

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
    ring: AnswerRing = state.extra["shadow"]
    page = ring.page(since, limit)
    return OrjsonResponse(
        {
            "model": {"name": state.bundle.name, "version": state.bundle.version},
            "classes": state.bundle.classes,
            "answers": page.answers,
            "next": page.next,
            "more": page.more,
        }
    )


answer_head(router)
