"""What the app holds for its lifetime, on `app.state.mlci` (nothing global)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from mlci.api.batcher import MicroBatcher
from mlci.api.drift import DriftMonitor
from mlci.api.metrics import Metrics
from mlci.api.settings import Settings
from mlci.contract.bundle import Bundle


@dataclass
class ServiceState:
    bundle: Bundle
    settings: Settings
    metrics: Metrics
    drift: DriftMonitor
    batcher: MicroBatcher
    request_model: type[BaseModel]
    quick_model: type[BaseModel]  # the same rules, stopping at the first bad record
    schema: dict[str, Any]
    ready: bool = False
    ready_reason: str = "warming up"
    warmup_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def service(request) -> ServiceState:
    return request.app.state.mlci
