"""The API's routers: one module per concern."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.routing import APIRoute


def answer_head(router: APIRouter) -> None:
    """HEAD wherever GET works (HTTP requires it; monitors and `curl -I` use it).

    Each GET route of `router` gets a HEAD twin, left out of the OpenAPI document (one operation per
    path is enough there); the server sends the GET answer's headers without its body. FastAPI's own
    pages (/docs, /openapi.json) are Starlette routes, which answer HEAD already."""
    for route in list(router.routes):
        if isinstance(route, APIRoute) and "GET" in (route.methods or ()):
            router.add_api_route(
                route.path,
                route.endpoint,
                methods=["HEAD"],
                include_in_schema=False,
                name=f"{route.name}_head",
                response_class=route.response_class,
            )
