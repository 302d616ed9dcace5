"""Logs, metrics and the per-request envelope: request id, body limit, access line, 5xx without traces.

One pure-ASGI middleware does it all (cheaper than BaseHTTPMiddleware): it gives each request an id
(the caller's X-Request-ID if it is sane, else a new one), enforces the body size limit while the body
streams in, turns any unhandled exception into a JSON 500 carrying the request id (the traceback goes
to the server log, never to the client), counts and times the request by route template and status,
and writes one JSON access line.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

ACCESS_LOGGER = "mlci.api.access"
APP_LOGGER = "mlci.api"
REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if fields:
            payload.update(fields)
        else:
            payload["message"] = record.getMessage()
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(payload, default=str).decode()


JsonFormatter.converter = time.gmtime


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stdout for the API's loggers (idempotent; leaves other loggers alone)."""
    for name in (APP_LOGGER, ACCESS_LOGGER):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not any(getattr(h, "_mlci", False) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(JsonFormatter())
            handler._mlci = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
        logger.propagate = False


def log_event(logger: logging.Logger, level: int, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, fields.get("event", ""), extra={"fields": fields})


class Metrics:
    """Prometheus metrics on a registry of their own (one per app, never the global one)."""

    def __init__(self, model_name: str, model_version: str):
        self.registry = CollectorRegistry(auto_describe=True)
        self.model_version = model_version
        self.requests = Counter(
            "mlci_requests",
            "HTTP requests by route and status",
            ["route", "method", "status", "model_version"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlci_request_duration_seconds",
            "Request latency by route and status",
            ["route", "status", "model_version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "mlci_predictions", "Predictions by predicted label", ["label", "model_version"], registry=self.registry
        )
        self.batch_rows = Histogram(
            "mlci_micro_batch_rows",
            "Rows per micro-batch model call",
            ["model_version"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.info = Gauge(
            "mlci_model_info",
            "The model this process serves (value 1)",
            ["name", "model_version"],
            registry=self.registry,
        )
        self.info.labels(model_name, model_version).set(1)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._labels: dict[str, Any] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status), self.model_version),
                self.latency.labels(route, str(status), self.model_version),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_labels(self, labels: list[str]) -> None:
        for label in labels:
            child = self._labels.get(label)
            if child is None:
                child = self._labels[label] = self.predictions.labels(label, self.model_version)
            child.inc()

    def observe_batch(self, rows: int) -> None:
        self.batch_rows.labels(self.model_version).observe(rows)


class BodyTooLarge(Exception):
    pass


def new_request_id(headers: list[tuple[bytes, bytes]]) -> str:
    for key, value in headers:
        if key == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SANE_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def error_body(status_error: str, message: str, request_id: str, details: list[dict] | None = None) -> bytes:
    return orjson.dumps({"error": status_error, "message": message, "request_id": request_id, "details": details or []})


class RequestEnvelope:
    def __init__(self, app, *, metrics: Metrics, max_body_bytes: int, model_version: str):
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.model_version = model_version
        self.access = logging.getLogger(ACCESS_LOGGER)
        self.log = logging.getLogger(APP_LOGGER)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        request_id = new_request_id(scope["headers"])
        info: dict[str, Any] = {"request_id": request_id, "records": None}
        scope["mlci"] = info
        status = 500
        started = False
        limit = self.max_body_bytes

        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    status = 413
                    await self._send_error(
                        send, 413, "body_too_large", f"request body is over the {limit}-byte limit", request_id
                    )
                    self._finish(scope, info, status, start)
                    return
                break

        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-model-version", self.model_version.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                status = 413
                await self._send_error(
                    send, 413, "body_too_large", f"request body is over the {limit}-byte limit", request_id
                )
        except Exception:
            self.log.exception(
                "unhandled error",
                extra={"fields": {"event": "error", "request_id": request_id, "path": scope.get("path")}},
            )
            if not started:
                status = 500
                await self._send_error(
                    send, 500, "internal_error", "internal error; quote the request id when reporting it", request_id
                )
        finally:
            self._finish(scope, info, status, start)

    async def _send_error(self, send, status: int, error: str, message: str, request_id: str) -> None:
        body = error_body(error, message, request_id)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                    (b"x-model-version", self.model_version.encode()),
                    (b"connection", b"close") if status == 413 else (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _finish(self, scope, info: dict[str, Any], status: int, start: float) -> None:
        seconds = time.perf_counter() - start
        route = scope.get("route")
        template = getattr(route, "path", None)
        if template is None:
            app = scope.get("app")
            known = {getattr(r, "path", None) for r in getattr(app, "routes", ())} if app is not None else set()
            template = scope.get("path") if status != 404 and scope.get("path") in known else "unmatched"
        self.metrics.observe_request(template, scope.get("method", ""), status, seconds)
        log_event(
            self.access,
            logging.INFO,
            event="access",
            request_id=info["request_id"],
            method=scope.get("method"),
            route=template,
            path=scope.get("path"),
            status=status,
            latency_ms=round(seconds * 1000, 3),
            model_version=self.model_version,
            records=info.get("records"),
        )
