"""Fast JSON responses (orjson) and the one error shape every 4xx/5xx uses."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from api.observability import error_body


class OrjsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def request_id_of(request) -> str:
    info = request.scope.get("mlci")
    return info["request_id"] if info else ""


def error_response(
    request,
    status: int,
    error: str,
    message: str,
    details: list[dict] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        error_body(error, message, request_id_of(request), details),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )
