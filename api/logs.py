"""The API's logs: one JSON object per line on stdout, for its two loggers (app events and access lines)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

ACCESS_LOGGER = "mlci.api.access"
APP_LOGGER = "mlci.api"


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
