"""GET /version (which model answers, in which slot and environment) and GET /schema (the form)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from mlci.api.responses import OrjsonResponse
from mlci.api.routes import answer_head
from mlci.api.state import service

router = APIRouter(tags=["model"])


@router.get("/version", summary="Bundle metadata plus the deployment colour and environment")
async def version(request: Request) -> OrjsonResponse:
    state = service(request)
    return OrjsonResponse(
        {**state.bundle.metadata, "colour": state.settings.colour, "environment": state.settings.environment}
    )


@router.get("/schema", summary="Feature names, types, bounds, allowed categories and an example record")
async def schema(request: Request) -> OrjsonResponse:
    return OrjsonResponse(service(request).schema)


answer_head(router)
