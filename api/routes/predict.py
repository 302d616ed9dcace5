"""POST /predict: strict input, micro-batched single records, which model answered."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from mlci.api.responses import error_response, request_id_of
from mlci.api.schema import ErrorResponse, PredictResponse
from mlci.api.state import service
from mlci.api.validation import Invalid, summary, validate
from mlci.contract import answers

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


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=ERRORS,
    openapi_extra=REQUEST_BODY,
    summary="Predict 1..MLCI_MAX_BATCH records: a label and class probabilities each, or a value (regression)",
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
    payload = await validate(state.request_model, state.quick_model, body)
    if isinstance(payload, Invalid):
        if payload.malformed:
            problem = payload.details[0]["problem"]
            return error_response(
                request, 400, "malformed_json", f"body is not valid JSON: {problem}", payload.details, payload.truncated
            )
        return error_response(request, 422, "invalid_input", summary(payload), payload.details, payload.truncated)
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
    state.metrics.count_predictions(labels)
    state.drift.observe(columns)  # counts per feature and bin only: the records themselves are not kept
    task, classes = bundle.task, bundle.classes
    rows = np.asarray(probabilities, dtype=np.float64).tolist()
    content = {
        "model": {"name": bundle.name, "version": bundle.version},
        "request_id": request_id_of(request),
        "predictions": [answers.answer(task, classes, output, row) for output, row in zip(labels, rows)],
    }
    return Response(orjson.dumps(content), media_type="application/json")
