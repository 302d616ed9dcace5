"""`mlci train`: a reproducible training run, traced end to end in MLflow.

Order matters for "nothing half-done": config, data, estimator, every metric and the reports folder
are checked before MLflow is touched; the model version is registered only after everything else is
logged, then the branch's candidate alias moves and the report is written, and the run is marked
FINISHED only after all three. A failure at any point leaves the run FAILED, no version behind and
the alias where it was.

Only the deploy branch (tracking.deploy_branch) moves @candidate; any other branch or pull request
moves its own candidate-<slug>, so builds of other branches never change what the deploy branch's
alias names. The later stages of a build do not read an alias anyway: they take the version from
reports/train.json.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_fixed

from mlci.contract import mlflow_reads
from mlci.core import reports
from mlci.core.config import CLASSIFICATION, REGRESSION, Config
from mlci.core.errors import BadInput, DataError
from mlci.learn import data, evaluate, profile_distribution
from mlci.learn.model import build_pipeline
from mlci.track import archive, provenance, registry, tracking

# Tree models are saved with skops; these are the types our pipelines need that skops does not
# trust by default (MLflow 3 refuses to save a model it could not load back).
SKOPS_EXTRA_TRUSTED = ["sklearn.tree._tree.Tree"]


@dataclass
class TrainResult:
    model_name: str
    version: str
    run_id: str
    experiment_id: str
    primary_metric: str
    metrics: dict[str, float]
    cv_metrics: dict[str, float]
    data: dict[str, object]
    provenance: dict[str, object]
    estimator: str
    params: dict[str, object]
    duration_s: float
    alias: str = registry.CANDIDATE
    # Why this alias: which branch, and whether it counts as the deploy branch.
    alias_reason: str = ""
    tracking_uri: str = ""  # redacted: which store `version` belongs to (mlci.track.selection checks it)
    plots: list[str] = field(default_factory=list)
    # A classifier's precision, recall, f1 and support of each class on the held-out rows (the macro
    # averages are in `metrics`); logged on the run as test_<metric>_class_<class>.
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)

    def report(self) -> dict[str, object]:
        payload = asdict(self)
        payload["commit"] = self.provenance["commit"]
        payload["primary_value"] = self.metrics[self.primary_metric]
        return payload


def _dataset_race(error: BaseException) -> bool:
    """MLflow's server creates a dataset with a get-or-create that is not atomic: two runs logging the
    same data at once (two branches of one repository on the team server) race on its unique key."""
    text = str(error)
    return type(error).__name__ in ("RestException", "MlflowException") and (
        "dataset_pk" in text or ("UNIQUE constraint failed" in text and "datasets" in text)
    )


def log_dataset(source, sha256: str) -> None:
    """Link the training data to the run; the loser of the race above finds the dataset on its retry."""
    import mlflow

    for attempt in Retrying(
        retry=retry_if_exception(_dataset_race), stop=stop_after_attempt(4), wait=wait_fixed(0.5), reraise=True
    ):
        with attempt:
            mlflow.log_input(source, context="training", tags={"sha256": sha256})


def trusted_types(model) -> list[str]:
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    return sorted(set(untrusted) | set(SKOPS_EXTRA_TRUSTED))


def _log_plots(model, split: evaluate.Split, config: Config) -> list[str]:
    """The plots of the held-out rows a team looks at, logged as run artifacts: confusion matrix (and ROC
    for binary problems) for a classifier; predicted against actual and the residuals for a regression."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    def log(name: str, draw) -> str:
        fig, ax = plt.subplots(figsize=(5, 4))
        try:
            draw(ax)
            mlflow.log_figure(fig, name)
        finally:
            plt.close(fig)
        return name

    plots = (
        plot_regression(model, split, config)
        if config.task == REGRESSION
        else plot_classification(model, split, config)
    )
    return [log(name, draw) for name, draw in plots]


def plot_classification(model, split: evaluate.Split, config: Config) -> list[tuple[str, object]]:
    from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

    plots: list[tuple[str, object]] = [
        (
            "plots/confusion_matrix.png",
            lambda ax: (
                ConfusionMatrixDisplay.from_estimator(model, split.x_test, split.y_test, ax=ax, colorbar=False),
                ax.set_title(f"{config.model_name}: confusion matrix (test)"),
            ),
        )
    ]
    if len(model.classes_) == 2:
        positive = evaluate.positive_label(model.classes_, config)
        plots.append(
            (
                "plots/roc_curve.png",
                lambda ax: (
                    RocCurveDisplay.from_estimator(model, split.x_test, split.y_test, pos_label=positive, ax=ax),
                    ax.set_title(f"{config.model_name}: ROC (test, positive = {positive})"),
                ),
            )
        )
    return plots


def plot_regression(model, split: evaluate.Split, config: Config) -> list[tuple[str, object]]:
    from sklearn.metrics import PredictionErrorDisplay

    predicted = model.predict(split.x_test)
    target = config.data.target

    def draw(kind: str, title: str):
        return lambda ax: (
            PredictionErrorDisplay.from_predictions(split.y_test, predicted, kind=kind, ax=ax),
            ax.set_title(f"{config.model_name}: {title} (test)"),
            ax.set_xlabel(f"predicted {target}") if kind == "residual_vs_predicted" else None,
        )

    return [
        ("plots/predicted_vs_actual.png", draw("actual_vs_predicted", f"actual vs predicted {target}")),
        ("plots/residuals.png", draw("residual_vs_predicted", "residuals (actual - predicted)")),
    ]


def _params(config: Config, pipeline) -> dict[str, object]:
    estimator = pipeline.named_steps["model"]
    params = {f"model.{k}": v for k, v in estimator.get_params().items()}
    params.update(
        {
            "estimator": config.model.estimator,
            "split.test_size": config.split.test_size,
            "split.seed": config.split.seed,
            "split.cv_folds": config.split.cv_folds,
            "preprocessing.numeric.impute": config.model.preprocessing.numeric.impute,
            "preprocessing.numeric.scale": config.model.preprocessing.numeric.scale,
            "preprocessing.categorical.impute": config.model.preprocessing.categorical.impute,
            "preprocessing.categorical.one_hot": config.model.preprocessing.categorical.one_hot,
            "data.missing": config.data.missing,
        }
    )
    return params


def check_folds(split: evaluate.Split, config: Config) -> None:
    """Every class must appear in every cross-validation fold: a fold without it scores NaN (no ROC
    without both classes), and a NaN score would be registered as if it were a result. A regression's
    folds need two rows each (r2 of one row is not a number)."""
    folds = config.split.cv_folds
    if config.task == REGRESSION:
        if len(split.y_train) < 2 * folds:
            raise DataError(
                f"{len(split.y_train)} training rows are too few for {folds}-fold cross-validation",
                hint="lower split.cv_folds in mlci.yaml or add rows (each fold needs at least 2)",
            )
        return
    counts = split.y_train.value_counts()
    rare = counts[counts < folds]
    if rare.empty:
        return
    label, rows = str(rare.index[-1]), int(rare.iloc[-1])
    more = f"add rows of class {label!r}"
    raise DataError(
        f"class {label!r} has only {rows} training rows: too few for {folds}-fold cross-validation",
        details=[f"{k!r}: {int(v)} training rows" for k, v in counts.items()],
        # Cross-validation needs at least 2 folds, so 1 row of a class leaves only more data.
        hint=f"lower split.cv_folds in mlci.yaml to at most {rows}, or {more}" if rows >= 2 else more,
    )


def check_metrics(metrics: dict[str, float], cv_metrics: dict[str, float], task: str = CLASSIFICATION) -> None:
    """A metric that is not a number means an evaluation set missed a class: a data problem, not a score."""
    broken = [f"test {k}" for k, v in metrics.items() if not np.isfinite(v)]
    broken += [k for k, v in cv_metrics.items() if not np.isfinite(v)]
    if broken:
        raise DataError(
            f"training produced metrics that are not numbers: {', '.join(broken)}",
            hint="an evaluation set lacks a class: add rows of the rarest class, "
            "or change split.test_size / split.cv_folds"
            if task != REGRESSION
            else "an evaluation set is too small or its target constant: add rows or change split.test_size / "
            "split.cv_folds",
        )


def check_reports_folder(config: Config) -> None:
    """The report is the last thing written: make sure it can be, before anything is registered."""
    folder = config.reports_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise BadInput(
            f"cannot write reports to {folder}: {error.strerror or error}",
            hint=f"make {folder} a writable folder (move away a file of that name), then run again",
        ) from None


def fit(config: Config, dataset: data.Dataset):
    """Build the pipeline, cross-validate on the training rows, fit, and score the held-out rows."""
    pipeline = build_pipeline(config)
    split = evaluate.holdout(dataset, config)
    check_folds(split, config)
    cv_metrics = evaluate.cross_validate(pipeline, split, config)
    evaluate.fit(pipeline, split.x_train, split.y_train, config)
    metrics = evaluate.score(pipeline, split.x_test, split.y_test, config)
    check_metrics(metrics, cv_metrics, config.task)
    return pipeline, split, metrics, cv_metrics


def _log_model(pipeline, split: evaluate.Split):
    import mlflow
    from mlflow.models import infer_signature

    example = split.x_test.head(3)
    signature = infer_signature(example, pipeline.predict(example))
    # Explicit requirements: MLflow's inference of them loads the model in a subprocess (seconds).
    packages = ["scikit-learn", "skops", "numpy", "pandas", "scipy"]
    # A boosted model needs its library to load (on an agent: `pip install mlci[boosting]`).
    module = type(pipeline.steps[-1][1]).__module__
    inner = getattr(pipeline.steps[-1][1], "estimator", None)
    for library, distributions in (("lightgbm", ("lightgbm",)), ("xgboost", ("xgboost-cpu", "xgboost"))):
        if module.startswith(library) or type(inner).__module__.startswith(library):
            installed = [d for d in distributions if provenance.package_version(d) != provenance.UNKNOWN]
            packages.append(installed[0] if installed else distributions[0])
    requirements = [f"{name}=={provenance.package_version(name)}" for name in packages]
    return mlflow.sklearn.log_model(
        pipeline,
        name="model",
        signature=signature,
        input_example=example,
        serialization_format="skops",
        skops_trusted_types=trusted_types(pipeline),
        pip_requirements=requirements,
    )


def candidate_alias(config: Config, facts: provenance.Provenance) -> tuple[str, str]:
    """The alias this training moves, and why (the train output says it)."""
    deploy_branch = config.tracking.deploy_branch
    if not facts.branch_known:
        return registry.CANDIDATE, (
            f"branch unknown (no git branch, no BRANCH_NAME): treated as the deploy branch {deploy_branch}"
        )
    alias = registry.candidate_alias(facts.branch, deploy_branch, facts.pull_request)
    if alias == registry.CANDIDATE:
        return alias, f"branch {facts.branch} is the deploy branch (tracking.deploy_branch)"
    what = f"pull request {facts.pull_request} ({facts.branch})" if facts.pull_request else f"branch {facts.branch}"
    return alias, f"{what} is not the deploy branch {deploy_branch}: @{registry.CANDIDATE} is left alone"


def run_tags(facts: provenance.Provenance) -> dict[str, str]:
    """The provenance tags, and the Jenkins build as the run's description: the MLflow UI shows it on
    top of the run page, a link back to the build that trained it."""
    tags = facts.tags()
    if facts.build_url:
        tags["mlflow.note.content"] = (
            f"Trained by Jenkins build [{facts.job_name or 'build'} #{facts.build_number or '?'}]({facts.build_url})"
        )
    return tags


def _version_tags(config: Config, facts: provenance.Provenance, dataset: data.Dataset, metrics) -> dict[str, str]:
    """What every registered version carries: where it comes from (commit, branch, pull request,
    build) and what it scored, so `mlci status` and the leaderboard need no run lookup."""
    tags = {
        "mlci.commit": facts.commit,
        "mlci.branch": facts.branch,
        "mlci.author": facts.author,
        "mlci.data.sha256": dataset.fingerprint.sha256,
        "mlci.data.path": dataset.fingerprint.path,
        "mlci.primary_metric": config.metrics.primary,
        f"mlci.metric.{config.metrics.primary}": repr(metrics[config.metrics.primary]),
        "mlci.trained_at": registry.now(),
    }
    optional = {
        "jenkins.build_url": facts.build_url,
        "mlci.pull_request": facts.pull_request,
        "mlci.change_branch": facts.change_branch,
    }
    return {**tags, **{k: v for k, v in optional.items() if v}}


def data_reports(config: Config, dataset: data.Dataset, split: evaluate.Split) -> dict[str, dict[str, object]]:
    """The data validation report (what was validated, and that it passed: training stops at the first
    failure) and the data profile (each feature's distribution over the training rows, bounded by
    monitoring.drift bins and max_categories, and the class counts), by report name: archived to the run,
    then written as reports/data.json and reports/data-profile.json with train.json, last."""
    target = config.data.target
    validation = {
        "passed": True,
        "problems": [],
        "data": dataset.fingerprint.as_dict(),
        "min_rows": config.data.min_rows,
        "missing": config.data.missing,
        "target": target,
        "features": {name: feature.type for name, feature in config.data.features.items()},
    }
    profile = profile_distribution.training_distribution(split.x_train, config).model_dump()
    if config.task == REGRESSION:
        values = evaluate.target(dataset.frame, config)
        profile["target"] = {k: float(v) for k, v in values.describe().items()}
    else:
        profile["classes"] = {str(k): int(v) for k, v in dataset.frame[target].value_counts().items()}
    return {"data": validation, "data-profile": profile}


def train(config: Config, dataset: data.Dataset | None = None) -> TrainResult:
    started = time.monotonic()
    tracking.require_shared_store(config)  # before minutes of fitting, not after
    dataset = dataset or data.load(config)
    facts = provenance.collect(config.root)
    alias, alias_reason = candidate_alias(config, facts)
    pipeline, split, metrics, cv_metrics = fit(config, dataset)
    check_reports_folder(config)
    data_payloads = data_reports(config, dataset, split)

    import mlflow

    client = tracking.connect(config)
    experiment = tracking.experiment_id(client, config)
    previous = mlflow_reads.alias_map(client, config.model_name).get(alias)
    version = None
    run_name = f"{config.model_name}-{facts.short_commit}"
    try:
        with mlflow.start_run(experiment_id=experiment, run_name=run_name, tags=run_tags(facts)) as run:
            params = _params(config, pipeline)
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items() if np.isfinite(v)})
            mlflow.log_metrics({k: v for k, v in cv_metrics.items() if np.isfinite(v)})
            mlflow.set_tags(
                {
                    "mlci.data.sha256": dataset.fingerprint.sha256,
                    "mlci.data.rows": str(dataset.fingerprint.rows),
                    "mlci.data.path": dataset.fingerprint.path,
                    "mlci.primary_metric": config.metrics.primary,
                }
            )
            source = mlflow.data.from_pandas(  # type: ignore[attr-defined]
                dataset.frame,
                source=str(config.data_path),
                targets=config.data.target,
                name=Path(dataset.fingerprint.path).name,
            )
            log_dataset(source, dataset.fingerprint.sha256)
            plots = _log_plots(pipeline, split, config)
            classes = {} if config.task == REGRESSION else evaluate.per_class(pipeline, split.x_test, split.y_test)
            mlflow.log_metrics(
                {
                    f"test_{evaluate.metric_key(name, label)}": figures[name]
                    for label, figures in classes.items()
                    for name in evaluate.PER_CLASS_METRICS
                }
            )
            # The file --config named, under its own name: the settings this run was trained with.
            if config.source is not None and config.source.is_file():
                mlflow.log_artifact(str(config.source), artifact_path="config")
            # Required: an unreachable artifact store fails the training here, before any version exists.
            rendered = {f"{name}.json": reports.render(payload).encode() for name, payload in data_payloads.items()}
            archive.attach(client, run.info.run_id, "train", rendered, required=True)
            tested = archive.test_outputs(config, facts.commit, facts.build_url)
            archive.attach(client, run.info.run_id, "test", tested, required=True)
            model_info = _log_model(pipeline, split)
            version_tags = _version_tags(config, facts, dataset, metrics)
            # Last, in this order: register, move the branch's candidate alias, write the report. The
            # run is FINISHED only when the with-block ends, after all three.
            with contextlib.redirect_stderr(io.StringIO()):  # MLflow prints "Successfully registered…" there
                registered = mlflow.register_model(model_info.model_uri, config.model_name, tags=version_tags)
            version = str(registered.version)
            registry.set_alias(client, config.model_name, alias, version, by=facts.author, build=facts.build_url or "")
            result = TrainResult(
                model_name=config.model_name,
                version=version,
                run_id=run.info.run_id,
                experiment_id=experiment,
                primary_metric=config.metrics.primary,
                metrics=metrics,
                cv_metrics=cv_metrics,
                data=dataset.fingerprint.as_dict(),
                provenance=facts.as_dict(),
                estimator=config.model.estimator,
                params=dict(config.model.params.items()),
                duration_s=round(time.monotonic() - started, 2),
                alias=alias,
                alias_reason=alias_reason,
                tracking_uri=mlflow_reads.redact(config.tracking_uri),
                plots=plots,
                per_class=classes,
            )
            _write_report(config, result, data_payloads)
    except BaseException:
        # The run is already FAILED (start_run's context manager); undo what the registry holds of it.
        if version is not None:
            _unregister(client, config.model_name, version, alias, previous)
        raise
    return result


def _write_report(config: Config, result: TrainResult, data_payloads: dict[str, dict[str, object]]) -> None:
    try:
        for name, payload in data_payloads.items():
            reports.write(config, name, payload)
        reports.write(config, "train", result.report())
    except OSError as error:
        raise BadInput(
            f"cannot write the training report to {config.reports_dir}: {error.strerror or error}",
            hint="free space or fix the permissions of the reports folder, then run again",
        ) from None


def _unregister(client, name: str, version: str, alias: str, previous: str | None) -> None:
    """Drop the version a failed training registered and put its candidate alias back where it was,
    unless another build of the branch has moved it since (then that build's move stands)."""
    moved_here = mlflow_reads.alias_map(client, name).get(alias) == version
    client.delete_model_version(name, version)  # takes its aliases with it
    if moved_here:
        registry.restore_alias(client, name, alias, previous)
