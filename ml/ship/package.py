"""`mlci package`: a registered model version → a self-contained model bundle (mlci.ship.export).

The facts in metadata.json come from the registry and the run (not from the local checkout): the
bundle must describe the version it holds, whoever packages it and from whichever commit.

The bundle digest (mlci.contract.bundle_digest: one sha256 over every file) is recorded where the bundle cannot
change it: as the tag `mlci.bundle.sha256` on the model version and in reports/package.json. `mlci build`
bakes the registry's value into the API image, whose loader refuses a bundle with other files.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlci.core import reports
from mlci.core.config import Config
from mlci.learn import data, evaluate, profile_distribution
from mlci.ship import export
from mlci.track import archive, model_loading, registry, tracking
from mlci.track.selection import build_version

log = logging.getLogger(__name__)


@dataclass
class PackageResult:
    """What `mlci package` wrote; `report()` is reports/package.json."""

    bundle: str
    name: str
    version: str
    format: str
    model_file: str
    model_sha256: str
    bundle_sha256: str
    precision: str
    parity: dict[str, Any]
    parity_tolerance: float
    fallback_reason: str | None
    attempts: list[dict[str, Any]]
    classes: list[str]
    reference_rows: int
    files: dict[str, int]
    duration_s: float = 0.0
    aliases: list[str] = field(default_factory=list)
    drift: dict[str, Any] = field(default_factory=dict)  # the training distribution packaged, or why not

    @classmethod
    def from_export(cls, summary: dict[str, Any], duration_s: float, aliases: list[str]) -> PackageResult:
        return cls(
            bundle=str(summary["bundle"]),
            name=str(summary["name"]),
            version=str(summary["version"]),
            format=summary["format"],
            model_file=summary["model_file"],
            model_sha256=summary["model_sha256"],
            bundle_sha256=summary["bundle_sha256"],
            precision=summary["precision"],
            parity=summary["parity"],
            parity_tolerance=float(summary["parity_tolerance"]),
            fallback_reason=summary["fallback_reason"],
            attempts=summary["attempts"],
            classes=summary["classes"],
            reference_rows=int(summary["reference_rows"]),
            files=summary["files"],
            duration_s=duration_s,
            aliases=aliases,
            drift=summary.get("drift") or {},
        )

    def report(self) -> dict[str, Any]:
        return asdict(self)


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


def package(config: Config, out: Path, version: str | None = None, alias: str | None = None) -> PackageResult:
    """Package the version given, the alias named, or (neither) the version this workspace trained."""
    started = time.monotonic()
    selection = build_version(config, version, alias)
    dataset = data.load(config)
    split = evaluate.holdout(dataset, config)
    client = tracking.connect(config)
    info = registry.resolve(client, config.model_name, version=selection.version, alias=selection.alias)

    # Loaded as data only (skops, mlci's type list): never what the version's MLmodel asks for.
    model = model_loading.load_version(config.model_name, info.version)
    metadata = version_metadata(client, config, info)
    # The drift reference only from the data the version was trained on (same sha256 as its run records).
    training = profile_distribution.verified_training_rows(
        split.x_train,
        dataset.fingerprint.sha256,
        metadata["data"]["sha256"],  # type: ignore[index]
    )
    summary = export.export_bundle(
        model, config, metadata, split.x_test, Path(out), training_frame=training.frame, training_target=split.y_train
    )
    if training.reason:
        summary["drift"]["skipped"] = training.reason
        log.warning(f"warning: no training distribution in the bundle (drift unavailable): {training.reason}")
    # Outside the bundle: whoever can edit the bundle cannot edit the registry's record of it.
    client.set_model_version_tag(config.model_name, info.version, registry.BUNDLE_DIGEST_TAG, summary["bundle_sha256"])
    result = PackageResult.from_export(summary, round(time.monotonic() - started, 2), info.aliases)
    written = reports.write(config, "package", result.report())
    # Required (exit 3 when the store fails): packaging is cheap to repeat; see ml/track/archive.py.
    files: dict[str, Path | bytes] = {
        "package.json": written,
        "metadata.json": Path(out) / "metadata.json",
        "parity.json": parity_json(result),
    }
    archive.attach(client, info.run_id, "package", files, required=True)
    return result


def parity_figure(parity: dict[str, Any]) -> str:
    """The largest difference between the served model and the trained one, in a few characters: the
    predicted value's for a regression, the probabilities' for a classifier."""
    if parity.get("max_abs_prediction_diff") is not None:
        return f"max |Δ prediction| {parity['max_abs_prediction_diff']:.2e}"
    return f"max |Δp| {parity.get('max_abs_proba_diff', float('nan')):.2e}"


def parity_json(result: PackageResult) -> bytes:
    """The bundle's parity check on its own: what the approver looks for in the run."""
    parity = {"format": result.format, "tolerance": result.parity_tolerance, **result.parity}
    return json.dumps(parity, indent=2, sort_keys=True, default=str).encode()
