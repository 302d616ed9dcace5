"""The per-request envelope, one pure-ASGI middleware (cheaper than BaseHTTPMiddleware) around the app.

It gives each request an id (the caller's X-Request-ID if it is sane, else a new one), enforces the
body size limit while the body streams in (a 413 that the client can read: see `_refuse_body`) and
the body time limit (a 408), counts a client that went away before its answer as a 499 (nginx's
convention) without a traceback, turns any other unhandled exception into a JSON 500 carrying the
request id (the traceback goes to the server log, never to the client), counts and times the request
by route template and status (mlci.api.metrics), and writes one JSON access line (mlci.api.logs).
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from mlci.api.logs import ACCESS_LOGGER, APP_LOGGER, log_event
from mlci.api.metrics import Metrics
from mlci.api.request_body import (
    DRAIN_BYTES,
    DRAIN_SECONDS,
    BodyReader,
    BodyTimeout,
    BodyTooLarge,
    content_length,
    expects_continue,
)

REQUEST_ID_HEADER = b"x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
CLIENT_CLOSED = 499  # nginx's status for a client that closed the connection before its answer


def new_request_id(headers: list[tuple[bytes, bytes]]) -> str:
    for key, value in headers:
        if key == REQUEST_ID_HEADER:
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
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
            (REQUEST_ID_HEADER, request_id.encode()),
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
