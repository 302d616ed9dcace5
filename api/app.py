"""The app factory: one bundle, loaded once, read-only; state on app.state, nothing global."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlci.api.batcher import MicroBatcher
from mlci.api.drift import DriftMonitor
from mlci.api.envelope import RequestEnvelope
from mlci.api.logs import APP_LOGGER, configure_logging, log_event
from mlci.api.metrics import Metrics
from mlci.api.responses import MAX_DETAILS, error_response
from mlci.api.routes import drift, health, info, metrics, predict, shadow
from mlci.api.schema import example_record, request_model, response_model
from mlci.api.settings import Settings
from mlci.api.shadow import AnswerRing, ShadowRecorder, shadow_dir
from mlci.api.state import ServiceState
from mlci.contract import answers
from mlci.contract.bundle import Bundle, load_bundle

API_VERSION = "1"


def schema_document(bundle: Bundle, settings: Settings) -> dict:
    return {
        "model": {"name": bundle.name, "version": bundle.version},
        "task": bundle.metadata.get("task"),
        "features": [f.to_dict() for f in bundle.features],
        "classes": bundle.classes,
        # A regression's training target (range, mean, deciles): what the dashboard draws a value against.
        "target": bundle.metadata.get("target"),
        "example": example_record(bundle),
        "max_batch": settings.max_batch,
    }


def warm_up(state: ServiceState) -> None:
    """Run the reference rows; ready only if they reproduce the outputs recorded at packaging time."""
    bundle = state.bundle
    started = time.perf_counter()
    records = bundle.reference.get("records") or []
    expected = bundle.reference.get("expected") or []
    if not records:
        state.ready, state.ready_reason = False, "bundle has no reference records to warm up with"
        return
    try:
        validated = [state.request_model.model_validate({"records": [r]}).records[0].__dict__ for r in records]  # type: ignore[attr-defined]
        labels, probabilities = bundle.predict(bundle.columns_from_records(validated))
    except Exception as error:  # noqa: BLE001 - reported by /ready and in the startup line
        state.ready, state.ready_reason = False, f"warm-up failed: {type(error).__name__}: {error}"
        return
    tolerance = float((bundle.metadata.get("parity") or {}).get("tolerance", 1e-5))
    for i, (output, row, want) in enumerate(zip(labels, probabilities, expected)):
        got = answers.answer(bundle.task, bundle.classes, output, row)
        if problem := answers.difference(bundle.task, got, want, tolerance):
            state.ready, state.ready_reason = (
                False,
                f"warm-up: reference record {i} gives {got}, the bundle expects {want}: {problem}",
            )
            return
    state.warmup_ms = round((time.perf_counter() - started) * 1000, 3)
    state.ready, state.ready_reason = True, "ready"


def create_app(
    bundle_dir: str | os.PathLike[str], settings: Settings | None = None, expected_sha256: str | None = None
) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level)
    log = logging.getLogger(APP_LOGGER)
    bundle = load_bundle(Path(bundle_dir), expected_sha256=expected_sha256)
    metrics_ = Metrics(bundle.name, bundle.version, (bundle.metadata.get("target") or {}).get("edges"))
    drift_monitor = DriftMonitor(bundle, metrics_.registry)
    batcher = MicroBatcher(
        bundle.predict,
        max_rows=settings.batch_max_rows,
        max_wait=settings.batch_wait_ms / 1000,
        on_batch=metrics_.observe_batch,
    )
    state = ServiceState(
        bundle=bundle,
        settings=settings,
        metrics=metrics_,
        drift=drift_monitor,
        batcher=batcher,
        request_model=request_model(bundle, settings.max_batch),
        quick_model=request_model(bundle, settings.max_batch, fail_fast=True),
        schema=schema_document(bundle, settings),
    )
    state.extra["shadow"] = answers = AnswerRing(directory=shadow_dir())  # for shadow traffic (api/shadow.py)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        warm_up(state)
        # Everything loaded so far (FastAPI, pydantic models, the ONNX session) lives as long as the
        # process: keep it out of the cyclic collector's full passes, the source of tail latency.
        gc.collect()
        gc.freeze()
        meta = bundle.metadata
        log_event(
            log,
            logging.INFO if state.ready else logging.ERROR,
            event="startup",
            pid=os.getpid(),
            bundle=str(bundle.path),
            name=bundle.name,
            version=bundle.version,
            run_id=meta.get("run_id"),
            commit=meta.get("commit"),
            format=bundle.format,
            precision=meta.get("precision"),
            model_sha256=meta.get("model_sha256"),
            features=len(bundle.features),
            classes=bundle.classes,
            data_sha256=(meta.get("data") or {}).get("sha256"),
            colour=settings.colour,
            environment=settings.environment,
            max_batch=settings.max_batch,
            ready=state.ready,
            reason=state.ready_reason,
            warmup_ms=state.warmup_ms,
        )
        flusher = asyncio.create_task(drift_monitor.flush_periodically())
        shadow_flusher = asyncio.create_task(answers.flush_periodically())
        try:
            yield
        finally:
            flusher.cancel()
            shadow_flusher.cancel()
            answers.close()
            drift_monitor.flush()  # this worker's last counts stay in the sums after it exits
            await batcher.stop()
            metrics_.process_exit()

    app = FastAPI(
        title=f"{bundle.name or 'model'} prediction API",
        version=f"{bundle.version or '0'}",
        description=(
            f"Serves model {bundle.name!r} version {bundle.version} ({bundle.format}). "
            "Every response names the model version and carries an X-Request-ID header."
        ),
        lifespan=lifespan,
    )
    app.state.mlci = state
    for module in (predict, health, info, metrics, drift, shadow):
        app.include_router(module.router)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(request, exc.status_code, error, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        details = [
            {"record": None, "field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
            for e in errors[:MAX_DETAILS]
        ]
        message = details[0]["problem"] if details else "invalid"
        return error_response(request, 422, "invalid_input", message, details, len(errors) - len(details))

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        body = state.request_model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(body.pop("$defs", {}))
        schemas["PredictRequest"] = body
        # The route declares the classifier's answer; a regression's bundle answers values: say so.
        answer = response_model(bundle.task).model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(answer.pop("$defs", {}))
        schemas["PredictResponse"] = answer
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(ShadowRecorder, ring=answers)  # inside RequestEnvelope: the request id is set
    app.add_middleware(
        RequestEnvelope,
        metrics=metrics_,
        max_body_bytes=settings.max_body_bytes,
        model_version=bundle.version,
        body_timeout=settings.body_timeout,
    )
    return app
