"""`mlci train`, `mlci gate`, `mlci promote`, `mlci package`: a model version from training to its bundle."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlci.cli import console
from mlci.cli.run import load_config, metric, run_command
from mlci.contract import mlflow_reads
from mlci.core.errors import BadInput
from mlci.track.selection import build_version

if TYPE_CHECKING:  # mlci.flow.status imports MLflow's side of mlci: loaded only by the commands that need it
    pass

ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


@click.command()
@click.pass_context
@run_command("train")
def train(ctx: click.Context) -> None:
    """Validate the data, train with the committed parameters, track in MLflow, register a version.

    The deploy branch (tracking.deploy_branch) moves @candidate; other branches and pull requests move
    their own candidate-<branch> alias. Later commands of this build use the version in reports/train.json."""
    from mlci.learn import data
    from mlci.learn import train as train_module

    config = load_config(ctx)
    console.header("train", f"training {config.model_name} on {config.data.path}")
    dataset = data.load(config)
    fp = dataset.fingerprint
    console.facts(
        {
            "data": f"{fp.path}: {fp.rows} rows, {fp.columns} columns, sha256 {fp.sha256[:16]}…",
            "estimator": f"{config.model.estimator} {json.dumps(config.model.params, sort_keys=True)}",
            "split": f"test {config.split.test_size:g}, seed {config.split.seed}, {config.split.cv_folds}-fold CV",
            "tracking": config.tracking_uri,
        }
    )
    result = train_module.train(config, dataset)
    rows = [
        (m, f"{result.cv_metrics[f'cv_{m}_mean']:.4f} ± {result.cv_metrics[f'cv_{m}_std']:.4f}", metric(v))
        for m, v in result.metrics.items()
    ]
    console.table(["metric", "cross-validation", "held-out test"], rows)
    if len(result.per_class) > 2:  # a binary problem's figures are the positive class's, above
        per_class = [
            (label, *(metric(f[m]) for m in ("precision", "recall", "f1")), int(f["support"]))
            for label, f in result.per_class.items()
        ]
        console.table(["class (held-out)", "precision", "recall", "f1", "rows"], per_class)
    console.facts(
        {
            "commit": f"{result.provenance['commit']} ({result.provenance['branch']})",
            "author": result.provenance["author"],
            "run": result.run_id,
            "alias": f"@{result.alias}: {result.alias_reason}",
        }
    )
    console.result(
        True,
        f"registered {result.model_name} version {result.version} as @{result.alias}; "
        f"test {result.primary_metric} {result.metrics[result.primary_metric]:.4f} "
        f"in {result.duration_s:.1f} s",
    )


@click.command()
@click.option("--version", "version", default=None, help="Model version to judge.")
@click.option("--alias", default=None, help="Judge the version this registry alias names (e.g. candidate).")
@click.pass_context
@run_command("gate")
def gate(ctx: click.Context, version: str | None, alias: str | None) -> None:
    """Compare a version with production on the same held-out data; exit 1 when it does not pass.

    Without --version or --alias: the version this workspace trained (reports/train.json)."""
    from mlci.learn import gate as gate_module
    from mlci.learn import verdicts

    config = load_config(ctx)
    selection = build_version(config, version, alias)
    console.header(
        "gate",
        f"judging {config.model_name} {selection.describe()} against @production on {config.data.path}",
    )
    result = gate_module.gate(config, selection.version, selection.alias)
    console.facts(
        {
            "primary metric": f"{result.primary_metric} "
            f"({'higher' if config.metrics.higher_is_better else 'lower'} is better)",
            "held-out rows": result.rows_scored,
        }
    )
    console.out.print(result.table, markup=False)
    verdicts.require_gate_passed(result)
    console.result(
        True, f"candidate v{result.candidate['version']} passes the gate against {verdicts.gate_reference(result)}"
    )


@click.command()
@click.argument("version")
@click.option("--to", "alias", required=True, help="The alias to point at VERSION (e.g. production).")
@click.pass_context
@run_command("promote")
def promote(ctx: click.Context, version: str, alias: str) -> None:
    """Point a registry alias at a model version and record who and when."""
    from mlci.track import registry, tracking

    if not version.isdigit():
        raise BadInput(f"VERSION must be a model version number, got {version!r}")
    if not ALIAS_PATTERN.match(alias):
        raise BadInput(f"alias {alias!r} is not valid", hint="use lowercase letters, digits, - and _ (e.g. production)")
    config = load_config(ctx)
    console.header("promote", f"pointing {config.model_name}@{alias} at version {version}")
    client = tracking.connect(config)
    previous = mlflow_reads.alias_map(client, config.model_name).get(alias)
    info = registry.set_alias(client, config.model_name, alias, version)
    console.facts(
        {
            "previous": f"v{previous}" if previous else "none",
            "by": info.tags.get(f"mlci.{alias}.by"),
            "commit": info.commit,
        }
    )
    console.result(True, f"{config.model_name}@{alias} -> version {info.version}")


def parity_line(parity: dict, tolerance: float) -> str:
    """The parity figures of a package: predictions for a regression, labels and probabilities otherwise."""
    from mlci.ship.package import parity_figure

    labels = "" if parity.get("labels_equal") is None else f"labels equal: {parity['labels_equal']}, "
    return f"{parity['rows']} held-out rows, {labels}{parity_figure(parity)} (tolerance {tolerance:g})"


@click.command()
@click.option("--version", default=None, help="Model version number (default: the one this workspace trained).")
@click.option("--alias", default=None, help="Registry alias, e.g. candidate (read only when named).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Bundle folder to write.")
@click.pass_context
@run_command("package")
def package(ctx: click.Context, version: str | None, alias: str | None, out: str) -> None:
    """Export a registered model version to a model bundle: ONNX (parity-checked), metadata, reference rows."""

    from mlci.ship import package as package_module
    from mlci.track import registry

    config = load_config(ctx)
    selection = build_version(config, version, alias)
    console.header("package", f"packaging {config.model_name} {selection.describe()} into {out}")
    result = package_module.package(config, Path(out), version=selection.version, alias=selection.alias)
    parity = result.parity
    console.facts(
        {
            "format": f"{result.format} ({result.precision})",
            "parity": parity_line(parity, result.parity_tolerance),
            "reference rows": result.reference_rows,
            "files": ", ".join(f"{n} ({s:,} B)" for n, s in result.files.items()),
            "bundle sha256": f"{result.bundle_sha256} (tag {registry.BUNDLE_DIGEST_TAG} on the version)",
        }
    )
    if result.fallback_reason:
        console.info(
            f"warning: shipping the scikit-learn model (package.allow_sklearn_fallback): {result.fallback_reason}"
        )
    console.result(True, f"bundle of {config.model_name} version {result.version} in {result.bundle}")
