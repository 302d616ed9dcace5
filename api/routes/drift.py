"""GET /drift: per feature, how far the inputs answered so far are from the training data (PSI)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from mlci.api.responses import OrjsonResponse
from mlci.api.routes import answer_head
from mlci.api.state import service

router = APIRouter(tags=["monitoring"])


@router.get(
    "/drift",
    summary="Input drift per feature: PSI against the training distribution, threshold, drifted, records counted",
)
async def drift(request: Request) -> OrjsonResponse:
    return OrjsonResponse(service(request).drift.report().to_dict())


answer_head(router)
