"""`mlci`: the one entry point. This module only parses arguments, calls the stage modules, and
prints; `run_command` prints a failure and exits with the code `ml.exits` maps it to."""

from __future__ import annotations

import functools
import json
import re
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ml import config as config_module
from ml import console, exits
from ml.environment_status import DeployRecord, EnvironmentStatus, EnvironmentUnavailable
from ml.errors import BadInput, CheckFailed, MlciError

if TYPE_CHECKING:  # ml.status imports MLflow's side of mlci: loaded only by the commands that need it
    from ml.status import LeaderboardRow

ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def run_command(name: str) -> Callable:
    """Decorate a command: a failure a user can act on prints a message (no traceback) and exits with
    the code ml.exits gives it; anything else is a bug and keeps its traceback."""

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except Exception as error:
                mapped = exits.classify(error)
                if mapped is None:
                    raise
                code, failure = mapped
                if isinstance(failure, CheckFailed):  # a verdict: the command's result line says so
                    console.result(False, failure.message)
                console.error(failure, name)
                sys.exit(code)

        return wrapper

    return decorate


def _config(ctx: click.Context) -> config_module.Config:
    return config_module.load(ctx.obj["config_path"])


def _metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    envvar="MLCI_CONFIG",
    default=config_module.DEFAULT_CONFIG,
    show_default=True,
    help="The project config (env MLCI_CONFIG).",
)
@click.version_option(package_name="mlci")
@click.pass_context
def cli(ctx: click.Context, config_path: str) -> None:
    """mlci: test, train, track, gate, package, build and deploy ML models — the same line on a laptop and in Jenkins.

    Exit codes: 0 success, 1 a check said no, 2 bad input or config, 3 an unreachable dependency.
    """
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


@cli.command()
@click.option("--data", "data_file", required=True, type=click.Path(dir_okay=False), help="The CSV to learn from.")
@click.option("--target", required=True, help="The column holding the classes to predict.")
@click.option("--project", default=None, help="Project name (default: the folder's name).")
@click.option(
    "--dir",
    "directory",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder to scaffold (created if missing).",
)
@click.option("--delimiter", default=",", show_default=True, help="The CSV's field delimiter (`tab` for a tab).")
@click.option("--positive-label", default=None, help="Class f1/precision/recall are about (default: the rarer).")
@click.option("--port", type=int, default=None, help="Base router port (default: derived from the project name).")
@click.option("--force", is_flag=True, help="Replace files that already exist.")
@run_command("init")
def init(
    data_file: str,
    target: str,
    project: str | None,
    directory: str,
    delimiter: str,
    positive_label: str | None,
    port: int | None,
    force: bool,
) -> None:
    """Scaffold a team's repository from a CSV: mlci.yaml (types, categories and ranges inferred from
    the data, to review), the one-line Jenkinsfile, tests/test_data.py and .gitignore.

    Nothing is written when the data cannot train a classifier or a file exists (unless --force)."""
    from pathlib import Path

    from ml import scaffold

    console.header("init", f"scaffolding {directory} from {data_file} (target {target})")
    result = scaffold.init(Path(data_file), target, Path(directory), project, force, delimiter, positive_label, port)
    inference = result.inference
    rows = [
        (
            f.name,
            f.type,
            f"{f.min:g} … {f.max:g}" if f.type == "numeric" else f"{len(f.categories or [])} categories",
            str(f.missing),
        )
        for f in inference.features
    ]
    console.table(["feature", "type", "declared", "missing"], rows)
    console.facts(
        {
            "target": f"{inference.target}: " + ", ".join(f"{k} ({v})" for k, v in inference.classes.items()),
            "left out": ", ".join(f"{e.name} ({e.reason})" for e in inference.excluded) or "none",
            "positive label": result.positive or "none (more than two classes)",
            "router ports": f"production {result.ports.production}, staging {result.ports.staging}, "
            f"dashboard {result.ports.dashboard} (unique per Docker host)",
            "data": result.data_path + (" (copied into the folder)" if result.data_copied else ""),
            "written": ", ".join(result.written),
        }
    )
    console.result(True, f"{result.project}: review mlci.yaml, then commit these files and push")


@cli.command("test")
@click.pass_context
@run_command("test")
def test_command(ctx: click.Context) -> None:
    """Run the project's tests (tests.paths in mlci.yaml) with JUnit and coverage XML under reports/."""
    from ml import testing, verdicts

    config = _config(ctx)
    console.header("test", f"running the tests of {config.project}: {' '.join(config.tests.paths)}")
    result = testing.run(config)
    verdicts.require_tests_passed(result)
    console.result(True, f"tests passed: {result.summary}; JUnit in {result.junit}")


@cli.command()
@click.pass_context
@run_command("train")
def train(ctx: click.Context) -> None:
    """Validate the data, train with the committed parameters, track in MLflow, register a version.

    The deploy branch (tracking.deploy_branch) moves @candidate; other branches and pull requests move
    their own candidate-<branch> alias. Later commands of this build use the version in reports/train.json."""
    from ml import data
    from ml import train as train_module

    config = _config(ctx)
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
        (m, f"{result.cv_metrics[f'cv_{m}_mean']:.4f} ± {result.cv_metrics[f'cv_{m}_std']:.4f}", _metric(v))
        for m, v in result.metrics.items()
    ]
    console.table(["metric", "cross-validation", "held-out test"], rows)
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


@cli.command()
@click.option("--version", "version", default=None, help="Model version to judge.")
@click.option("--alias", default=None, help="Judge the version this registry alias names (e.g. candidate).")
@click.pass_context
@run_command("gate")
def gate(ctx: click.Context, version: str | None, alias: str | None) -> None:
    """Compare a version with production on the same held-out data; exit 1 when it does not pass.

    Without --version or --alias: the version this workspace trained (reports/train.json)."""
    from ml import gate as gate_module
    from ml import reports, verdicts

    config = _config(ctx)
    selection = reports.build_version(config, version, alias)
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


@cli.command()
@click.argument("version")
@click.option("--to", "alias", required=True, help="The alias to point at VERSION (e.g. production).")
@click.pass_context
@run_command("promote")
def promote(ctx: click.Context, version: str, alias: str) -> None:
    """Point a registry alias at a model version and record who and when."""
    from ml import registry, tracking

    if not version.isdigit():
        raise BadInput(f"VERSION must be a model version number, got {version!r}")
    if not ALIAS_PATTERN.match(alias):
        raise BadInput(f"alias {alias!r} is not valid", hint="use lowercase letters, digits, - and _ (e.g. production)")
    config = _config(ctx)
    console.header("promote", f"pointing {config.model_name}@{alias} at version {version}")
    client = tracking.connect(config)
    previous = registry.alias_map(client, config.model_name).get(alias)
    info = registry.set_alias(client, config.model_name, alias, version)
    console.facts(
        {
            "previous": f"v{previous}" if previous else "none",
            "by": info.tags.get(f"mlci.{alias}.by"),
            "commit": info.commit,
        }
    )
    console.result(True, f"{config.model_name}@{alias} -> version {info.version}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--env", "env_names", multiple=True, help="Only this environment's deployment (repeatable).")
@click.pass_context
@run_command("status")
def status(ctx: click.Context, as_json: bool, env_names: tuple[str, ...]) -> None:
    """Model versions with their aliases, primary metric, commit, data, author and date; the leaderboard
    (latest version of each branch, best first, with its gate result); and what each environment serves
    (colours, images, health, last deploys — read from the environment's Docker host)."""
    from ml import status as status_module

    config = _config(ctx)
    if env_names:
        environments = [status_module.environment(config, name) for name in env_names]
        if as_json:
            click.echo(json.dumps([env.as_dict() for env in environments], indent=2))
            return
        for env in environments:
            _print_environment(env)
        return
    report = status_module.collect(config)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    console.header("status", f"model {config.model_name} in {report.tracking_uri}")
    primary = config.metrics.primary
    rows = [
        (
            v.version,
            " ".join("@" + a for a in v.aliases),
            v.branch or "-",
            _metric(v.metrics.get(primary)),
            v.commit[:10],
            (v.data_sha256 or "")[:12],
            (v.author or "").split(" <")[0],
            v.created_at[:16].replace("T", " "),
            v.gate or "-",
        )
        for v in report.versions
    ]
    console.table(["version", "aliases", "branch", primary, "commit", "data sha256", "author", "created", "gate"], rows)
    _print_leaderboard(report.leaderboard, primary)
    aliases = ", ".join(f"@{a} -> v{v}" for a, v in sorted(report.aliases.items())) or "none"
    for env in report.environments:
        _print_environment(env)
    console.result(True, f"{len(rows)} version(s); aliases: {aliases}")


def _gate_cell(row: LeaderboardRow) -> str:
    if not row.gate:
        return "not gated"
    if row.gated_against is None:
        return row.gate
    return f"{row.gate} vs " + ("the floor" if row.gated_against == "none" else f"v{row.gated_against}")


def _print_leaderboard(rows: list[LeaderboardRow], primary: str) -> None:
    """Latest version per branch, best first: which branch has the best model right now."""
    if not rows:
        return
    table = [
        (
            str(place),
            row.branch + (f" (PR {row.pull_request})" if row.pull_request else ""),
            f"v{row.version}",
            _metric(row.metric),
            _gate_cell(row),
            " ".join("@" + a for a in row.aliases),
            row.commit[:10],
            (row.author or "").split(" <")[0],
            row.created_at[:16].replace("T", " "),
        )
        for place, row in enumerate(rows, start=1)
    ]
    console.table(
        ["#", "branch", "version", primary, "gate (vs production)", "aliases", "commit", "author", "created"],
        table,
        title="leaderboard: latest version per branch, best first",
    )


def _print_environment(env: EnvironmentStatus | EnvironmentUnavailable) -> None:
    if isinstance(env, EnvironmentUnavailable):
        console.info(f"environment {env.env}: {env.error}")
        return
    console.out.print(
        f"environment {env.env} on {env.host}: router {env.router} at {env.url}, live colour {env.live or 'none'}",
        markup=False,
    )
    rows = [
        (
            colour,
            "live" if slot.live else "idle",
            slot.model_version,
            slot.image,
            slot.state,
            slot.health or "-",
            (slot.deployed_at or "")[:19].replace("T", " "),
        )
        for colour, slot in env.slots.items()
        if slot
    ]
    if rows:
        console.table(["slot", "role", "version", "image", "state", "health", "started"], rows)
    for record in env.last_deploys[-3:]:
        console.info(_deploy_line(record))


def _deploy_line(record: DeployRecord) -> str:
    what = f"v{record.model_version} on {record.colour}" if record.model_version else "environment removed"
    digest = record.fields.get("digest")
    return (
        f"{record.deployed_at[:19].replace('T', ' ')} {record.kind} ({record.result}): {what}, by {record.deployed_by}"
        + (f", approved by {record.approver}" if record.approver else "")
        + (f", build {record.build_url}" if record.build_url else "")
        + (f", image {digest}" if digest else "")
        + (f"; {record.reason}" if record.reason else "")
    )


@cli.command()
@click.option("--version", default=None, help="Model version number (default: the one this workspace trained).")
@click.option("--alias", default=None, help="Registry alias, e.g. candidate (read only when named).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Bundle folder to write.")
@click.pass_context
@run_command("package")
def package(ctx: click.Context, version: str | None, alias: str | None, out: str) -> None:
    """Export a registered model version to a model bundle: ONNX (parity-checked), metadata, reference rows."""
    from pathlib import Path

    from ml import package as package_module
    from ml import reports

    config = _config(ctx)
    selection = reports.build_version(config, version, alias)
    console.header("package", f"packaging {config.model_name} {selection.describe()} into {out}")
    result = package_module.package(config, Path(out), version=selection.version, alias=selection.alias)
    parity = result.parity
    console.facts(
        {
            "format": f"{result.format} ({result.precision})",
            "parity": f"{parity['rows']} held-out rows, labels equal: {parity['labels_equal']}, "
            f"max |Δp| {parity['max_abs_proba_diff']:.2e} (tolerance {result.parity_tolerance:g})",
            "reference rows": result.reference_rows,
            "files": ", ".join(f"{n} ({s:,} B)" for n, s in result.files.items()),
            "bundle sha256": f"{result.bundle_sha256} (tag {package_module.BUNDLE_DIGEST_TAG} on the version)",
        }
    )
    if result.fallback_reason:
        console.info(
            f"warning: shipping the scikit-learn model (package.allow_sklearn_fallback): {result.fallback_reason}"
        )
    console.result(True, f"bundle of {config.model_name} version {result.version} in {result.bundle}")


@cli.command()
@click.option("--bundle", "bundle_dir", required=True, type=click.Path(file_okay=False), help="Model bundle folder.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--bundle-sha256",
    "bundle_sha256",
    envvar="MLCI_BUNDLE_SHA256",
    default=None,
    help="The bundle digest mlci package recorded (reports/package.json); the bundle is refused if its files "
    "differ. Without it, integrity is not checked (env MLCI_BUNDLE_SHA256).",
)
@run_command("serve")
def serve(bundle_dir: str, host: str, port: int, workers: int, bundle_sha256: str | None) -> None:
    """Run the prediction API on a model bundle (uvicorn, uvloop, httptools)."""
    from pathlib import Path

    from api import server
    from api.settings import Settings, SettingsError
    from ml import bundle

    # A missing, corrupt or altered bundle is exit 2, before uvicorn starts.
    loaded = bundle.load_bundle(Path(bundle_dir), expected_sha256=bundle_sha256 or None)
    try:
        Settings.from_env()  # so are bad MLCI_* settings (MLCI_MAX_BATCH=abc)
    except SettingsError as error:
        raise BadInput(f"cannot serve: {error}", hint=error.hint) from None
    meta = loaded.metadata
    console.header("serve", f"serving {meta['name']} version {meta['version']} from {bundle_dir}")
    console.facts(
        {
            "listen": f"http://{host}:{port}",
            "workers": workers,
            "format": meta["format"],
            "docs": f"http://{host}:{port}/docs",
            "integrity": f"bundle sha256 {bundle_sha256.strip().lower()} checked"
            if bundle_sha256
            else "NOT checked (no --bundle-sha256: local use only)",
        }
    )
    server.serve(Path(bundle_dir), host=host, port=port, workers=workers, expected_sha256=bundle_sha256 or None)


@cli.command()
@click.option("--version", default=None, help="Model version number (default: the one this workspace trained).")
@click.option("--alias", default=None, help="Registry alias, e.g. candidate (read only when named).")
@click.option(
    "--only",
    "roles",
    multiple=True,
    type=click.Choice(["api", "dashboard", "router"]),
    help="Build only these images (repeatable; default all).",
)
@click.pass_context
@run_command("build")
def build(ctx: click.Context, version: str | None, alias: str | None, roles: tuple[str, ...]) -> None:
    """Package the model and build the API image (bundle baked in), the dashboard and router images."""
    from ml import images, reports

    config = _config(ctx)
    selection = reports.build_version(config, version, alias)
    console.header("build", f"building the images of {config.model_name} {selection.describe()}")
    result = images.build(
        config, version=selection.version, alias=selection.alias, roles=roles or ("api", "dashboard", "router")
    )
    rows = [
        (
            role,
            i.tag,
            (i.id or "")[7:19],
            f"{(i.size or 0) / 1e6:.0f} MB",
            f"{i.cached_steps}/{i.steps} cached",
            f"{i.seconds:.1f} s",
        )
        for role, i in result.images.items()
    ]
    console.table(["image", "tag", "id", "size", "layers", "time"], rows)
    where = (
        f"pushed to {result.registry}"
        if result.pushed
        else "kept local (no registry configured: set images.registry or MLCI_REGISTRY to push)"
    )
    console.result(True, f"{len(rows)} image(s) for {result.model_name} version {result.version}, {where}")


@cli.command()
@click.option(
    "--api",
    "api_url",
    default="http://127.0.0.1:8000",
    show_default=True,
    envvar="MLCI_API_URL",
    help="Base URL of the prediction API (env MLCI_API_URL).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
@run_command("dashboard")
def dashboard(api_url: str, host: str, port: int) -> None:
    """Run the Streamlit dashboard against a prediction API."""
    from dashboard import launch

    if not api_url.startswith(("http://", "https://")):
        raise BadInput(f"--api must be an http(s) URL, got {api_url!r}")
    console.header("dashboard", f"dashboard on http://{host}:{port} using the API at {api_url}")
    launch.run(api_url, port, host=host)


def _lock_timeout(option):
    return click.option(
        "--lock-timeout",
        default=300.0,
        show_default=True,
        type=click.FloatRange(0),
        help="Seconds to wait when another deploy (from any checkout or agent) holds the environment; 0: do not wait.",
    )(option)


@cli.command()
@click.option("--env", "env_name", required=True, help="Environment from mlci.yaml (staging, production, …).")
@click.option("--version", default=None, help="Model version (its image must have been built).")
@click.option("--image", default=None, help="An API image reference instead.")
@click.option("--approver", envvar="MLCI_APPROVER", default=None, help="Who approved (env MLCI_APPROVER).")
@click.option(
    "--force", is_flag=True, help="Deploy although the environment's policy (requires) is not met; needs --reason."
)
@click.option("--reason", default=None, help="Why the policy is overridden (recorded on the version and history).")
@_lock_timeout
@click.pass_context
@run_command("deploy")
def deploy(
    ctx: click.Context,
    env_name: str,
    version: str | None,
    image: str | None,
    approver: str | None,
    force: bool,
    reason: str | None,
    lock_timeout: float,
) -> None:
    """Blue/green deploy: idle slot up, ready, smoke-tested, router switched without a reload, verified.

    The environment's policy (`requires` in mlci.yaml; production by default: gate, staging, approver)
    is checked first: a version that does not meet it is refused (exit 1) unless --force --reason."""
    from ml import deploy as deploy_module

    config = _config(ctx)
    what = f"version {version}" if version else (image or "the image of the last mlci build")
    console.header("deploy", f"deploying {config.model_name} {what} to {env_name}")
    outcome = deploy_module.deploy(
        config,
        env_name,
        version=version,
        image=image,
        approver=approver,
        lock_timeout=lock_timeout,
        force=force,
        reason=reason,
    )
    console.result(
        True,
        f"{env_name} serves {outcome.model_name} v{outcome.model_version} from {outcome.colour} "
        f"at {outcome.url} (previous colour: {outcome.previous_colour or 'none'}) "
        f"in {outcome.seconds:.1f} s",
    )


@cli.command()
@click.option("--env", "env_name", required=True, help="Environment from mlci.yaml.")
@_lock_timeout
@click.pass_context
@run_command("rollback")
def rollback(ctx: click.Context, env_name: str, lock_timeout: float) -> None:
    """Switch the environment back to the previous colour (or redeploy the previous image)."""
    from ml import deploy as deploy_module

    config = _config(ctx)
    console.header("rollback", f"rolling {env_name} back to what served before")
    outcome = deploy_module.rollback(config, env_name, lock_timeout=lock_timeout)
    console.result(
        True,
        f"{env_name} serves {outcome.model_name} v{outcome.model_version} from {outcome.colour} again at {outcome.url}",
    )


@cli.command()
@click.option("--env", "env_name", required=True, help="Environment from mlci.yaml.")
@_lock_timeout
@click.pass_context
@run_command("down")
def down(ctx: click.Context, env_name: str, lock_timeout: float) -> None:
    """Remove an environment's containers, network and socket volume (and its registry alias)."""
    from ml import deploy as deploy_module

    config = _config(ctx)
    console.header("down", f"removing environment {env_name} of {config.project}")
    removed = deploy_module.down(config, env_name, lock_timeout=lock_timeout)
    console.result(True, f"{env_name} removed ({len(removed)} object(s))" if removed else f"{env_name} was not running")


@cli.group()
def pipeline() -> None:
    """The whole line: the Jenkinsfile's stages, in the same order, on this machine."""


@pipeline.command("stages")
def pipeline_stages() -> None:
    """List the stages, in order (the Jenkinsfile's stage names)."""
    from ml.pipeline import STAGES

    for name in STAGES:
        click.echo(name)


@pipeline.command("run")
@click.option("--from", "first", default=None, help="First stage to run (name or slug, e.g. train).")
@click.option("--to", "last", default=None, help="Last stage to run (e.g. gate).")
@click.option(
    "--approve/--no-approve",
    default=None,
    help="Answer the production approval without asking (default: ask on a terminal).",
)
@click.pass_context
@run_command("pipeline run")
def pipeline_run(ctx: click.Context, first: str | None, last: str | None, approve: bool | None) -> None:
    """Run test, train, gate, build, deploy staging, approve, deploy production; stop at the first failure."""
    from ml import pipeline as pipeline_module

    started = time.monotonic()
    config = _config(ctx)
    console.header("pipeline run", f"the assembly line of {config.project} ({config.model_name})")
    try:
        state = pipeline_module.run(config, first=first, last=last, approve=approve)
    except MlciError as error:
        _pipeline_summary(config, getattr(error, "pipeline", None), started)
        raise
    _pipeline_summary(config, state, started)
    console.result(True, f"pipeline done in {time.monotonic() - started:.0f} s")


def _pipeline_summary(config, state, started: float) -> None:
    from ml import pipeline as pipeline_module

    if state is not None:
        console.table(
            ["stage", "result", "time"], [(n, r, f"{s:.1f} s") for n, r, s in state.results], title="pipeline summary"
        )
    for env_name, line in pipeline_module.serving(config):
        console.info(f"{env_name}: {line}")
    console.info(f"MLflow: {config.tracking_uri}; total {time.monotonic() - started:.0f} s")


@cli.group()
def shadow() -> None:
    """Shadow traffic: how the version in staging answers production's real requests (docs/deploy.md)."""


@shadow.command("report")
@click.option("--env", "env_name", default="staging", show_default=True, help="The environment receiving the mirror.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@run_command("shadow report")
def shadow_report(ctx: click.Context, env_name: str, as_json: bool) -> None:
    """Join, by request id, the answers of ENV's live slot to mirrored requests with production's own:
    label agreement, probability differences, candidate latency and errors. Writes reports/shadow-ENV.json."""
    from ml import shadow as shadow_module
    from ml import shadow_compare

    config = _config(ctx)
    if not as_json:  # --json prints the report alone: a header or result line would break its parsing
        source = next(iter(shadow_module.sources(config, env_name)), "production")
        console.header("shadow report", f"comparing {env_name}'s answers to mirrored requests with {source}'s")
    result = shadow_module.report(config, env_name)
    path = shadow_module.write(config, result)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    c = result.comparison
    no_p99 = shadow_compare.p99_text(c).startswith("p99 n/a")
    console.table(
        [
            "mirrored",
            "compared",
            "unmatched",
            "rows",
            "agreement",
            "mean |dp|",
            "max |dp|",
            "p50 ms",
            "p99 ms",
            "errors",
            "production errors",
        ],
        [
            (
                c.mirrored,
                c.compared,
                c.unmatched,
                c.rows,
                "-" if c.agreement is None else f"{c.agreement:.2%}",
                _metric(c.mean_probability_diff),
                _metric(c.max_probability_diff),
                c.candidate_p50_ms if c.candidate_p50_ms is not None else "-",
                f"n/a (<{shadow_compare.P99_MIN_ANSWERS})" if no_p99 else c.candidate_p99_ms,
                c.candidate_errors,
                c.production_errors,
            )
        ],
        title=f"shadow {result.source} -> {result.env} ({'on' if result.on else 'OFF'}, share {result.share:.2%})",
    )
    console.info(result.summary)
    console.result(
        True,
        f"{c.compared} of {c.mirrored} mirrored requests compared"
        + ("" if result.on else f" (mirror OFF: {result.source} copies nothing to {result.env} now)")
        + f"; report in {path}",
    )


def _terminated(signum: int, _frame: object) -> None:
    # Jenkins aborts a build with SIGTERM; as SystemExit it unwinds through every `except
    # BaseException`/`finally` (a deploy switches live traffic back, a training drops its version).
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    cli(prog_name="mlci")


if __name__ == "__main__":
    main()
