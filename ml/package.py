"""`mlci package`: a registered model version → a self-contained model bundle (ml.bundle).

The facts in metadata.json come from the registry and the run (not from the local checkout): the
bundle must describe the version it holds, whoever packages it and from whichever commit.
"""

from __future__ import annotations

import time
from pathlib import Path

from ml import bundle, data, evaluate, registry, reports, tracking
from ml.config import Config


def version_metadata(client, config: Config, info: registry.VersionInfo) -> dict[str, object]:
    run = client.get_run(info.run_id)
    tags = run.data.tags
    metrics = {k.removeprefix("test_"): v for k, v in run.data.metrics.items() if k.startswith("test_")}
    return {
        "name": config.model_name,
        "version": info.version,
        "run_id": info.run_id,
        "commit": info.tags.get("mlci.commit", tags.get("mlci.commit", "unknown")),
        "branch": tags.get("mlci.branch"),
        "data": {
            "path": tags.get("mlci.data.path"),
            "sha256": tags.get("mlci.data.sha256"),
            "rows": int(tags.get("mlci.data.rows", 0) or 0),
            "columns": len(config.data.features) + 1,
        },
        "metrics": metrics,
        "primary_metric": tags.get("mlci.primary_metric", config.metrics.primary),
        "trained_at": info.tags.get("mlci.trained_at", info.created_at),
        "trained_by": tags.get("mlci.author", "unknown"),
        "build_url": tags.get("jenkins.build_url"),
    }


def package(config: Config, out: Path, version: str | None = None, alias: str | None = None) -> dict[str, object]:
    started = time.monotonic()
    dataset = data.load(config)
    split = evaluate.holdout(dataset, config)
    client = tracking.connect(config)
    info = registry.resolve(client, config.model_name, version=version, alias=alias)

    import mlflow

    model = mlflow.sklearn.load_model(f"models:/{config.model_name}/{info.version}")
    summary = bundle.export_bundle(model, config, version_metadata(client, config, info), split.x_test, Path(out))
    summary["duration_s"] = round(time.monotonic() - started, 2)
    summary["aliases"] = info.aliases
    reports.write(config, "package", summary)
    return summary
