"""`mlci status`: what the registry holds — versions, aliases, scores, provenance — and what each
environment serves, as typed results for humans (`mlci status`) and machines (`--json`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ml import registry, tracking
from ml.config import Config
from ml.environment_status import EnvironmentStatus, EnvironmentUnavailable

MAX_VERSIONS = 50

Environment = EnvironmentStatus | EnvironmentUnavailable


@dataclass(frozen=True)
class VersionRow:
    version: str
    aliases: list[str]
    run_id: str
    commit: str
    branch: str | None
    data_sha256: str | None
    data_path: str | None
    author: str | None
    created_at: str
    metrics: dict[str, float]  # held-out test metrics, without the test_ prefix
    gate: str | None  # passed | failed | None (never gated)
    alias_history: dict[str, str]  # mlci.<alias>.<fact> tags of the aliases it holds

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StatusReport:
    model_name: str
    tracking_uri: str  # redacted: no password
    primary_metric: str
    aliases: dict[str, str]
    versions: list[VersionRow]
    environments: list[Environment]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "tracking_uri": self.tracking_uri,
            "primary_metric": self.primary_metric,
            "aliases": dict(self.aliases),
            "versions": [v.as_dict() for v in self.versions],
            "environments": [e.as_dict() for e in self.environments],
        }


def _alias_history(info: registry.VersionInfo) -> dict[str, str]:
    return {k: v for k, v in info.tags.items() if k.split(".")[1:2] and k.split(".")[1] in info.aliases}


def _version_row(client, info: registry.VersionInfo) -> VersionRow:
    run = client.get_run(info.run_id)
    metrics = {k.removeprefix("test_"): v for k, v in run.data.metrics.items() if k.startswith("test_")}
    return VersionRow(
        version=info.version,
        aliases=info.aliases,
        run_id=info.run_id,
        commit=info.commit,
        branch=info.tags.get("mlci.branch"),
        data_sha256=info.tags.get("mlci.data.sha256"),
        data_path=info.tags.get("mlci.data.path"),
        author=info.tags.get("mlci.author"),
        created_at=info.created_at,
        metrics=metrics,
        gate=info.tags.get("mlci.gate.result"),
        alias_history=_alias_history(info),
    )


def collect(config: Config) -> StatusReport:
    client = tracking.connect(config)
    versions = registry.versions(client, config.model_name)[:MAX_VERSIONS]
    return StatusReport(
        model_name=config.model_name,
        tracking_uri=registry.redact(config.tracking_uri),
        primary_metric=config.metrics.primary,
        aliases=registry.alias_map(client, config.model_name),
        versions=[_version_row(client, v) for v in versions],
        environments=[environment(config, name, quiet=True) for name in config.environments],
    )


def environment(config: Config, name: str, quiet: bool = False) -> Environment:
    """What an environment serves; with quiet, an unreachable Docker engine is a note, not a failure."""
    from ml import deploy
    from ml.errors import Unreachable

    try:
        return deploy.environment_status(config, name)
    except Unreachable as error:
        if not quiet:
            raise
        return EnvironmentUnavailable(env=name, error=error.message)
