"""API settings, from environment variables (the deploy sets them; nothing is read anywhere else)."""

from __future__ import annotations

import os
from dataclasses import dataclass


class SettingsError(ValueError):
    pass


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


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not 0 <= value <= 1000:
        raise SettingsError(f"{name} must be between 0 and 1000, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    colour: str = "none"  # MLCI_COLOUR: the blue/green slot this process runs in
    environment: str = "local"  # MLCI_ENV: staging, production, local
    max_batch: int = 1000  # MLCI_MAX_BATCH: records per request
    max_body_bytes: int = 1 << 20  # MLCI_MAX_BODY_BYTES: request body limit
    batch_wait_ms: float = 0.0  # MLCI_BATCH_WAIT_MS: extra wait for company (0: coalesce what is already queued)
    batch_max_rows: int = 64  # MLCI_BATCH_MAX_ROWS: micro-batch size bound
    log_level: str = "INFO"  # MLCI_LOG_LEVEL

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
            log_level=(env.get("MLCI_LOG_LEVEL") or cls.log_level).upper(),
        )
