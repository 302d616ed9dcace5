"""`mlci status`: what the registry holds — versions, aliases, scores, provenance — for humans and machines."""

from __future__ import annotations

from ml import registry, tracking
from ml.config import Config

MAX_VERSIONS = 50


def _version_row(client, info: registry.VersionInfo) -> dict[str, object]:
    run = client.get_run(info.run_id)
    metrics = {k.removeprefix("test_"): v for k, v in run.data.metrics.items() if k.startswith("test_")}
    return {
        "version": info.version,
        "aliases": info.aliases,
        "run_id": info.run_id,
        "commit": info.commit,
        "branch": info.tags.get("mlci.branch"),
        "data_sha256": info.tags.get("mlci.data.sha256"),
        "data_path": info.tags.get("mlci.data.path"),
        "author": info.tags.get("mlci.author"),
        "created_at": info.created_at,
        "metrics": metrics,
        "gate": info.tags.get("mlci.gate.result"),
        "alias_history": {k: v for k, v in info.tags.items() if k.split(".")[1:2] and k.split(".")[1] in info.aliases},
    }


def collect(config: Config) -> dict[str, object]:
    client = tracking.connect(config)
    versions = registry.versions(client, config.model_name)[:MAX_VERSIONS]
    return {
        "model_name": config.model_name,
        "tracking_uri": registry.redact(config.tracking_uri),
        "primary_metric": config.metrics.primary,
        "aliases": registry.alias_map(client, config.model_name),
        "versions": [_version_row(client, v) for v in versions],
        "environments": [environment(config, name, quiet=True) for name in config.environments],
    }


def environment(config: Config, name: str, quiet: bool = False) -> dict[str, object]:
    """What an environment serves; with quiet, an unreachable Docker engine is a note, not a failure."""
    from ml import deploy
    from ml.errors import Unreachable

    try:
        return deploy.environment_status(config, name)
    except Unreachable as error:
        if not quiet:
            raise
        return {"env": name, "error": error.message}
