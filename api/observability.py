"""Logs, metrics and the per-request envelope of the API, each in its own module:

- api.logs: JSON log lines (configure_logging, log_event, the two logger names);
- api.metrics: the Prometheus metrics (Metrics);
- api.request_body: the body size and time limits (BodyReader and its exceptions);
- api.envelope: the middleware around the app (RequestEnvelope) and the JSON error shape (error_body).

This module only re-exports their names, for the modules and tests that import them from here.
"""

from __future__ import annotations

from api.envelope import CLIENT_CLOSED, REQUEST_ID_HEADER, RequestEnvelope, error_body, new_request_id
from api.logs import ACCESS_LOGGER, APP_LOGGER, JsonFormatter, configure_logging, log_event
from api.metrics import LATENCY_BUCKETS, Metrics
from api.request_body import (
    DRAIN_BYTES,
    DRAIN_SECONDS,
    BodyReader,
    BodyTimeout,
    BodyTooLarge,
    ClientGone,
    content_length,
    expects_continue,
)

__all__ = [
    "ACCESS_LOGGER",
    "APP_LOGGER",
    "CLIENT_CLOSED",
    "DRAIN_BYTES",
    "DRAIN_SECONDS",
    "LATENCY_BUCKETS",
    "REQUEST_ID_HEADER",
    "BodyReader",
    "BodyTimeout",
    "BodyTooLarge",
    "ClientGone",
    "JsonFormatter",
    "Metrics",
    "RequestEnvelope",
    "configure_logging",
    "content_length",
    "error_body",
    "expects_continue",
    "log_event",
    "new_request_id",
]
