"""API settings, from environment variables (the deploy sets them; nothing is read anywhere else)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import NoReturn


class SettingsError(ValueError):
    hint = "fix that MLCI_* environment variable (the settings are listed in api/main.py)"


def exit_bad_config(message: str) -> NoReturn:
    """A configuration the operator must fix: the message on stderr, no traceback, exit 2 (mlci's
    code for bad input and config)."""
    print(message, file=sys.stderr)
    sys.exit(2)


def _int(env: dict[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: dict[str, str], name: str, default: float, low: float = 0, high: float = 1000) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:  # also refuses nan
        raise SettingsError(f"{name} must be between {low:g} and {high:g}, got {value}")
    return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in LOG_LEVELS:
        raise SettingsError(f"MLCI_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {raw!r}")
    return level


def _token(raw: str | None) -> str | None:
    if not raw:
        return None
    if len(raw) < 16 or len(raw) > 256 or not raw.isascii() or not raw.isprintable() or " " in raw:
        raise SettingsError("MLCI_SHADOW_TOKEN must be 16 to 256 printable ASCII characters without spaces")
    return raw


@dataclass(frozen=True)
class Settings:
    colour: str = "none"  # MLCI_COLOUR: the blue/green slot this process runs in
    environment: str = "local"  # MLCI_ENV: staging, production, local
    max_batch: int = 1000  # MLCI_MAX_BATCH: records per request
    max_body_bytes: int = 1 << 20  # MLCI_MAX_BODY_BYTES: request body limit
    batch_wait_ms: float = 0.0  # MLCI_BATCH_WAIT_MS: extra wait for company (0: coalesce what is already queued)
    batch_max_rows: int = 64  # MLCI_BATCH_MAX_ROWS: micro-batch size bound
    log_level: str = "INFO"  # MLCI_LOG_LEVEL
    # Connection bounds (seconds), so idle and slow clients cannot hold connections for ever.
    keepalive_timeout: float = 30.0  # MLCI_KEEPALIVE_TIMEOUT: idle keep-alive connection
    header_timeout: float = 10.0  # MLCI_HEADER_TIMEOUT: from connection (or last response) to complete headers
    body_timeout: float = 30.0  # MLCI_BODY_TIMEOUT: from complete headers to complete body
    # MLCI_SHADOW_TOKEN: GET /shadow/answers needs "Authorization: Bearer <it>" (mlci deploy gives each
    # slot a random one; `mlci shadow report` reads it from the slot). Unset: the endpoint is open (loopback use).
    shadow_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        return cls(
            colour=env.get("MLCI_COLOUR") or cls.colour,
            environment=env.get("MLCI_ENV") or cls.environment,
            max_batch=_int(env, "MLCI_MAX_BATCH", cls.max_batch),
            max_body_bytes=_int(env, "MLCI_MAX_BODY_BYTES", cls.max_body_bytes, minimum=64),
            batch_wait_ms=_float(env, "MLCI_BATCH_WAIT_MS", cls.batch_wait_ms),
            batch_max_rows=_int(env, "MLCI_BATCH_MAX_ROWS", cls.batch_max_rows),
            log_level=_log_level(env.get("MLCI_LOG_LEVEL") or cls.log_level),
            keepalive_timeout=_float(env, "MLCI_KEEPALIVE_TIMEOUT", cls.keepalive_timeout, low=0.1, high=3600),
            header_timeout=_float(env, "MLCI_HEADER_TIMEOUT", cls.header_timeout, low=0.1, high=3600),
            body_timeout=_float(env, "MLCI_BODY_TIMEOUT", cls.body_timeout, low=0.1, high=3600),
            shadow_token=_token(env.get("MLCI_SHADOW_TOKEN")),
        )
