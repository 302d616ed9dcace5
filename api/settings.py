"""The API's settings: the MLCI_* variables of the prediction service (mlci.core.env declares and reads
them), gathered into one frozen object the app keeps on app.state."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NoReturn

from mlci.core import env
from mlci.core.env import EnvError


def exit_bad_config(message: str) -> NoReturn:
    """A configuration the operator must fix: the message on stderr, no traceback, exit 2 (mlci's
    code for bad input and config)."""
    print(message, file=sys.stderr)
    sys.exit(2)


def describe(error: Exception) -> str:
    """A start-up failure as the one line `python -m mlci.api` prints (the message and what to do)."""
    hint = getattr(error, "hint", None)
    return f"cannot start the API: {getattr(error, 'message', error)}" + (f" ({hint})" if hint else "")


@dataclass(frozen=True)
class Settings:
    colour: str = env.COLOUR.default  # the blue/green slot this process runs in
    environment: str = env.ENV.default  # staging, production, local
    max_batch: int = env.MAX_BATCH.default  # records per request
    max_body_bytes: int = env.MAX_BODY_BYTES.default  # request body limit
    batch_wait_ms: float = env.BATCH_WAIT_MS.default  # extra wait for company (0: coalesce what is queued)
    batch_max_rows: int = env.BATCH_MAX_ROWS.default  # micro-batch size bound
    log_level: str = env.LOG_LEVEL.default
    # Connection bounds (seconds), so idle and slow clients cannot hold connections for ever.
    keepalive_timeout: float = env.KEEPALIVE_TIMEOUT.default  # idle keep-alive connection
    header_timeout: float = env.HEADER_TIMEOUT.default  # from connection (or last response) to complete headers
    body_timeout: float = env.BODY_TIMEOUT.default  # from complete headers to complete body
    # GET /shadow/answers needs "Authorization: Bearer <it>" (mlci deploy gives each slot a random one;
    # `mlci shadow report` reads it from the slot). Unset: the endpoint is open (loopback use).
    shadow_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings the variables give; EnvError (exit 2) names the first one that does not fit."""
        return cls(
            colour=env.COLOUR.get(environ),
            environment=env.ENV.get(environ),
            max_batch=env.MAX_BATCH.get(environ),
            max_body_bytes=env.MAX_BODY_BYTES.get(environ),
            batch_wait_ms=env.BATCH_WAIT_MS.get(environ),
            batch_max_rows=env.BATCH_MAX_ROWS.get(environ),
            log_level=env.LOG_LEVEL.get(environ),
            keepalive_timeout=env.KEEPALIVE_TIMEOUT.get(environ),
            header_timeout=env.HEADER_TIMEOUT.get(environ),
            body_timeout=env.BODY_TIMEOUT.get(environ),
            shadow_token=env.SHADOW_TOKEN.get(environ),
        )


__all__ = ["EnvError", "Settings", "describe", "exit_bad_config"]
