"""`mlci status`: what the registry holds — versions, aliases, scores, provenance, the latest version
of each branch ranked by the primary metric (the leaderboard) — and what each environment serves,
as typed results for humans (`mlci status`) and machines (`--json`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from mlci.contract import mlflow_reads
from mlci.core.config import Config
from mlci.deploy.environment_status import EnvironmentStatus, EnvironmentUnavailable
from mlci.track import registry, tracking

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
class LeaderboardRow:
    """The latest version of one branch: the team's "which branch has the best model right now"."""

    branch: str
    version: str
    metric: float | None  # the primary metric on held-out rows (None: not recorded)
    gate: str | None  # passed | failed | None (never gated)
    gated_against: str | None  # the production version it was gated against, "none", or None
    aliases: list[str]
    pull_request: str | None
    commit: str
    author: str | None
    created_at: str

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
    leaderboard: list[LeaderboardRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "tracking_uri": self.tracking_uri,
            "primary_metric": self.primary_metric,
            "aliases": dict(self.aliases),
            "versions": [v.as_dict() for v in self.versions],
            "leaderboard": [row.as_dict() for row in self.leaderboard],
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


def _recorded_metric(client, info: registry.VersionInfo, primary: str) -> float | None:
    """The primary metric train recorded on the version (tag), else on its run; None if neither has it."""
    raw = info.tags.get(f"mlci.metric.{primary}")
    try:
        value = float(raw) if raw is not None else client.get_run(info.run_id).data.metrics.get(f"test_{primary}")
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _leaderboard_row(client, info: registry.VersionInfo, primary: str) -> LeaderboardRow:
    return LeaderboardRow(
        branch=info.tags.get("mlci.branch", "unknown"),
        version=info.version,
        metric=_recorded_metric(client, info, primary),
        gate=info.tags.get("mlci.gate.result"),
        gated_against=info.tags.get("mlci.gate.against"),
        aliases=info.aliases,
        pull_request=info.tags.get("mlci.pull_request"),
        commit=info.commit,
        author=info.tags.get("mlci.author"),
        created_at=info.created_at,
    )


def rank(rows: list[LeaderboardRow], higher_is_better: bool) -> list[LeaderboardRow]:
    """Best first by the primary metric (in its direction); rows without one last; ties: newest first."""

    def key(row: LeaderboardRow) -> tuple[bool, float, int]:
        score = 0.0 if row.metric is None else (-row.metric if higher_is_better else row.metric)
        return (row.metric is None, score, -int(row.version))

    return sorted(rows, key=key)


def leaderboard(client, config: Config, versions: list[registry.VersionInfo]) -> list[LeaderboardRow]:
    """The latest version of each branch (versions come newest first), ranked best first."""
    latest: dict[str, registry.VersionInfo] = {}
    for info in versions:
        latest.setdefault(info.tags.get("mlci.branch", "unknown"), info)
    rows = [_leaderboard_row(client, info, config.metrics.primary) for info in latest.values()]
    return rank(rows, config.metrics.higher_is_better)


def collect(config: Config) -> StatusReport:
    client = tracking.connect(config)
    every = registry.versions(client, config.model_name)
    return StatusReport(
        model_name=config.model_name,
        tracking_uri=mlflow_reads.redact(config.tracking_uri),
        primary_metric=config.metrics.primary,
        aliases=mlflow_reads.alias_map(client, config.model_name),
        versions=[_version_row(client, v) for v in every[:MAX_VERSIONS]],
        leaderboard=leaderboard(client, config, every),
        environments=[environment(config, name, quiet=True) for name in config.environments],
    )


def environment(config: Config, name: str, quiet: bool = False) -> Environment:
    """What an environment serves; with quiet, an unreachable Docker engine is a note, not a failure."""
    from mlci.core.errors import Unreachable
    from mlci.deploy import environment

    try:
        return environment.environment_status(config, name)
    except Unreachable as error:
        if not quiet:
            raise
        return EnvironmentUnavailable(env=name, error=error.message)
