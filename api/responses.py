"""Fast JSON responses (orjson) and the one error shape every 4xx/5xx uses."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from mlci.api.envelope import error_body

# An error answer lists at most this many problems, then how many more there were: 1,000 empty
# records are 30,000 problems, and listing them all made a 3 KB request cost a 2.4 MB answer.
MAX_DETAILS = 50


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
    details_truncated: int = 0,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        error_body(error, message, request_id_of(request), details, details_truncated),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )
