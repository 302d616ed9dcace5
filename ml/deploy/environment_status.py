"""What an environment serves, as typed results: its router, its two slots and its deploy records.

Built by `mlci.deploy.environment_status` (which reads Docker and the history), read by `mlci status`;
`as_dict()` is the `--json` shape Jenkins steps and scripts read, so it stays as it was.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SlotStatus:
    container: str
    image: str
    model_version: str | None
    deployed_at: str | None
    state: str
    health: str | None
    live: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeployRecord:
    """One line of an environment's deploy history. The history holds more (every CI fact); `fields`
    keeps the record whole for --json, the attributes are what a human summary needs."""

    kind: str
    result: str
    deployed_at: str
    deployed_by: str
    model_version: str | None = None
    colour: str | None = None
    approver: str | None = None
    build_url: str | None = None
    reason: str | None = None
    fields: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> DeployRecord:
        return cls(
            kind=str(record.get("kind", "")),
            result=str(record.get("result", "")),
            deployed_at=str(record.get("deployed_at", "")),
            deployed_by=str(record.get("deployed_by", "")),
            model_version=record.get("model_version"),
            colour=record.get("colour"),
            approver=record.get("approver"),
            build_url=record.get("build_url"),
            reason=record.get("reason"),
            fields=dict(record),
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(self.fields)


@dataclass(frozen=True)
class EnvironmentStatus:
    env: str
    url: str
    preview_url: str
    router: str  # the router container's state, or "missing"
    live: str | None  # the colour the router sends traffic to
    slots: dict[str, SlotStatus | None]
    current: DeployRecord | None  # the record of what serves now
    last_deploys: list[DeployRecord]
    host: str = "local engine"  # the environment's Docker host (docker_host), or the agent's own engine

    def as_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "host": self.host,
            "url": self.url,
            "preview_url": self.preview_url,
            "router": self.router,
            "live": self.live,
            "slots": {colour: slot.as_dict() if slot else None for colour, slot in self.slots.items()},
            "current": self.current.as_dict() if self.current else None,
            "last_deploys": [record.as_dict() for record in self.last_deploys],
        }


@dataclass(frozen=True)
class EnvironmentUnavailable:
    """An environment whose Docker engine did not answer: a note in `mlci status`, not a failure."""

    env: str
    error: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
