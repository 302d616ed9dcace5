"""POST /predict: strict input, micro-batched single records, which model answered."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.responses import error_response, request_id_of
from api.schema import ErrorResponse, PredictResponse
from api.state import service

router = APIRouter(tags=["predict"])
INLINE_ROWS = 64  # bigger batches run in the thread pool so the event loop keeps serving
REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}},
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in (
        (400, "malformed JSON"),
        (413, "body over the size limit"),
        (415, "content type is not application/json"),
        (422, "invalid records: the details name the record index and the field"),
        (500, "server error"),
        (503, "model not ready"),
    )
}


def validation_details(error: ValidationError) -> tuple[bool, list[dict[str, Any]]]:
    """(is the body malformed JSON, [{record, field, problem}])."""
    details = []
    malformed = False
    for item in error.errors(include_url=False, include_context=False):
        if item["type"] == "json_invalid":
            malformed = True
        loc = list(item["loc"])
        record = None
        fieldname = None
        if loc and loc[0] == "records":
            if len(loc) >= 2 and isinstance(loc[1], int):
                record = loc[1]
                fieldname = ".".join(str(p) for p in loc[2:]) or None
            else:
                fieldname = "records"
        elif loc:
            fieldname = ".".join(str(p) for p in loc)
        problem = item["msg"]
        if item["type"] == "extra_forbidden":
            problem = "unknown field"
        elif item["type"] == "missing":
            problem = "required field is missing"
        elif item.get("input", ...) is None and fieldname and record is not None:
            problem = "null is not allowed: this feature is not nullable"
        details.append({"record": record, "field": fieldname, "problem": problem})
    return malformed, details


def _summary(details: list[dict[str, Any]]) -> str:
    first = details[0]
    where = []
    if first["record"] is not None:
        where.append(f"record {first['record']}")
    if first["field"]:
        where.append(f"field {first['field']!r}")
    more = f" (and {len(details) - 1} more problem(s))" if len(details) > 1 else ""
    return f"{', '.join(where) or 'body'}: {first['problem']}{more}"


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=ERRORS,
    openapi_extra=REQUEST_BODY,
    summary="Predict labels and class probabilities for 1..MLCI_MAX_BATCH records",
)
async def predict(request: Request) -> Response:
    state = service(request)
    if not state.ready:
        return error_response(request, 503, "not_ready", f"model not ready: {state.ready_reason}")
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        return error_response(
            request,
            415,
            "unsupported_media_type",
            f"content type must be application/json, got {content_type or 'none'!r}",
        )
    body = await request.body()
    try:
        payload = state.request_model.model_validate_json(body)
    except ValidationError as error:
        malformed, details = validation_details(error)
        if malformed:
            return error_response(
                request, 400, "malformed_json", f"body is not valid JSON: {details[0]['problem']}", details
            )
        return error_response(request, 422, "invalid_input", _summary(details), details)
    records = [r.__dict__ for r in payload.records]  # type: ignore[attr-defined]  # a model made at run time
    request.scope["mlci"]["records"] = len(records)
    bundle = state.bundle
    columns = bundle.columns_from_records(records)
    if len(records) == 1:
        label, proba = await state.batcher.submit(columns)
        labels, probabilities = [label], proba.reshape(1, -1)
    elif len(records) <= INLINE_ROWS:
        labels, probabilities = bundle.predict(columns)
    else:
        labels, probabilities = await run_in_threadpool(bundle.predict, columns)
    state.metrics.count_labels(labels)
    classes = bundle.classes
    rows = np.asarray(probabilities, dtype=np.float64).tolist()
    content = {
        "model": {"name": bundle.name, "version": bundle.version},
        "request_id": request_id_of(request),
        "predictions": [{"label": label, "probabilities": dict(zip(classes, row))} for label, row in zip(labels, rows)],
    }
    return Response(orjson.dumps(content), media_type="application/json")
