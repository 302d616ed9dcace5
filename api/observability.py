"""Logs, metrics and the per-request envelope: request id, body limit, access line, 5xx without traces.

One pure-ASGI middleware does it all (cheaper than BaseHTTPMiddleware): it gives each request an id
(the caller's X-Request-ID if it is sane, else a new one), enforces the body size limit while the body
streams in (a 413 that the client can read: see `_refuse_body`) and the body time limit (a 408),
counts a client that went away before its answer as a 499 (nginx's convention) without a traceback,
turns any other unhandled exception into a JSON 500 carrying the request id (the traceback goes to
the server log, never to the client), counts and times the request by route template and status,
and writes one JSON access line.

Metrics: with several uvicorn workers (PROMETHEUS_MULTIPROC_DIR set by api.server), each worker
writes its values to files there and a scrape sums them all, so counters never go backwards from
one scrape to the next whichever worker answers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import time
import uuid
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

ACCESS_LOGGER = "mlci.api.access"
APP_LOGGER = "mlci.api"
REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CLIENT_CLOSED = 499  # nginx's status for a client that closed the connection before its answer
# After refusing a body, read (and drop) at most this much of it, for this long, before closing:
# closing with unread data makes the kernel send a reset, and a client still writing its body then
# never reads the 413. Bounded, so refusing a body costs little more than reading an allowed one.
DRAIN_BYTES = 16 << 20
DRAIN_SECONDS = 5.0


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
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
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
            multiprocess_mode="livemax",  # 1 while a worker serving it lives, not the sum of the workers
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

    def exposition(self) -> bytes:
        """The Prometheus text: this process's registry, or every worker's files summed."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry)

    def process_exit(self) -> None:
        """Drop this worker's live-only gauge files (its counters stay in the sums)."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)


class BodyTooLarge(Exception):
    pass


class BodyTimeout(Exception):
    pass


class ClientGone(Exception):
    """The client closed the connection before the body was read."""


def new_request_id(headers: list[tuple[bytes, bytes]]) -> str:
    for key, value in headers:
        if key == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SANE_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def error_body(
    status_error: str, message: str, request_id: str, details: list[dict] | None = None, details_truncated: int = 0
) -> bytes:
    body: dict[str, Any] = {
        "error": status_error,
        "message": message,
        "request_id": request_id,
        "details": details or [],
    }
    if details_truncated:
        body["details_truncated"] = details_truncated
    return orjson.dumps(body)


def content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for key, value in headers:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before the app sees it
    return None


def expects_continue(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(key == b"expect" and value.lower() == b"100-continue" for key, value in headers)


class BodyReader:
    """The app's `receive`: counts body bytes against the limit and bounds the time the body takes."""

    def __init__(self, receive, limit: int, timeout: float):
        self._receive = receive
        self.limit = limit
        self.deadline = asyncio.get_running_loop().time() + timeout
        self.received = 0
        self.done = False  # the whole body was read, or the client went away
        self.disconnected = False

    async def receive(self):
        if self.done:  # after the body only http.disconnect comes: no deadline on waiting for it
            return await self._receive()
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self._receive()
        except TimeoutError:
            raise BodyTimeout() from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.done = not message.get("more_body", False)
            if self.received > self.limit:
                raise BodyTooLarge()
        elif message["type"] == "http.disconnect":
            self.done = self.disconnected = True
        return message

    async def drain(self, max_bytes: int, seconds: float) -> None:
        """Read and drop the rest of a refused body, within bounds (see DRAIN_BYTES)."""
        drained = 0
        try:
            async with asyncio.timeout(seconds):
                while not self.done and drained < max_bytes:
                    message = await self._receive()
                    drained += len(message.get("body", b""))
                    self.done = message["type"] != "http.request" or not message.get("more_body", False)
        except TimeoutError:
            pass


class RequestEnvelope:
    def __init__(self, app, *, metrics: Metrics, max_body_bytes: int, model_version: str, body_timeout: float = 30.0):
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.model_version = model_version
        self.access = logging.getLogger(ACCESS_LOGGER)
        self.log = logging.getLogger(APP_LOGGER)
        self.pid = os.getpid()  # which worker answered, when there are several

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        request_id = new_request_id(scope["headers"])
        info: dict[str, Any] = {"request_id": request_id, "records": None}
        scope["mlci"] = info
        status = 500
        started = False
        body = BodyReader(receive, self.max_body_bytes, self.body_timeout)

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
            declared = content_length(scope["headers"])
            if declared is not None and declared > self.max_body_bytes:
                raise BodyTooLarge()
            await self.app(scope, body.receive, tracking_send)
            if not started and body.disconnected:  # the app saw the client go and did not answer
                status = CLIENT_CLOSED
        except BodyTooLarge:
            if not started:
                status = 413
                await self._refuse_body(send, scope, body, request_id)
        except BodyTimeout:
            if not started:
                status = 408
                message = f"request body not received within {self.body_timeout:g} s"
                await self._send_error(send, 408, "request_timeout", message, request_id, close=True)
        except Exception:
            if body.disconnected and not started:
                # The client left mid-body (starlette raises ClientDisconnect): its doing, not a bug.
                status = CLIENT_CLOSED
                log_event(
                    self.log,
                    logging.WARNING,
                    event="client_closed",
                    request_id=request_id,
                    path=scope.get("path"),
                    received_bytes=body.received,
                )
            else:
                self.log.exception(
                    "unhandled error",
                    extra={"fields": {"event": "error", "request_id": request_id, "path": scope.get("path")}},
                )
                if not started:
                    status = 500
                    message = "internal error; quote the request id when reporting it"
                    await self._send_error(send, 500, "internal_error", message, request_id)
        finally:
            self._finish(scope, info, status, start)

    async def _refuse_body(self, send, scope, body: BodyReader, request_id: str) -> None:
        """A 413 the client can read: answer first, then drain what it still sends, then close.

        The answer goes out at once (a client that reads while it writes stops early); the final empty
        chunk, which makes the server close the connection, waits until the body is drained. A client
        that asked for `100-continue` sends no body before it is told to: nothing to drain."""
        message = f"request body is over the {self.max_body_bytes}-byte limit"
        await self._send_error(send, 413, "body_too_large", message, request_id, close=True, more_body=True)
        if not expects_continue(scope["headers"]):
            await body.drain(DRAIN_BYTES, DRAIN_SECONDS)
        await send({"type": "http.response.body", "body": b""})

    async def _send_error(
        self, send, status: int, error: str, message: str, request_id: str, close: bool = False, more_body: bool = False
    ) -> None:
        payload = error_body(error, message, request_id)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"x-request-id", request_id.encode()),
            (b"x-model-version", self.model_version.encode()),
            (b"cache-control", b"no-store"),
        ]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload, "more_body": more_body})

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
            pid=self.pid,
        )
