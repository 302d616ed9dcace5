"""The model bundle, export side: convert a fitted pipeline to ONNX, prove parity, write the files.

Conversion is float64 wherever the converter can do it (numeric inputs are DoubleTensorType, the
imputer and tree classifiers go through `mlci.ship.onnx_double`): in float32 the scaler's rounding crosses
split thresholds and moves a RandomForest's probabilities by up to 1e-2. An estimator skl2onnx cannot
run in float64 (e.g. GradientBoostingClassifier) gets float64 preprocessing and a cast to float32 just
before it. Whatever was converted must then reproduce scikit-learn on the whole held-out frame: same
labels, probabilities within `package.parity_tolerance`. Otherwise packaging fails, unless
`package.allow_sklearn_fallback` is set, in which case the scikit-learn pipeline ships instead (skops).

The file format (names, constants) and the loader live in `mlci.contract.bundle`, which the API image imports
without scikit-learn; this module is the only writer.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlci.contract import bundle as fmt
from mlci.contract import bundle_digest
from mlci.contract.bundle_schema import Distribution
from mlci.core.config import REGRESSION, Config
from mlci.core.errors import BadInput
from mlci.learn import profile_distribution

FALLBACK_HINT = (
    "set `package.allow_sklearn_fallback: true` in mlci.yaml to ship the scikit-learn model "
    "instead (slower, and the API image then needs scikit-learn)"
)
ONNX_OPSET = 18
LEGACY_ML_OPSET = 3  # ai.onnx.ml opset of the stock converters' TreeEnsembleRegressor/Classifier
MAX_ROWS_SHOWN = 10
# What metadata.json and the package report say of parity: a classifier's keys or a regression's.
PUBLIC_PARITY = ("rows", "labels_equal", "max_abs_proba_diff", "max_abs_prediction_diff")


def mlci_version() -> str:
    try:
        return importlib_metadata.version("mlci")
    except importlib_metadata.PackageNotFoundError:
        return "0+unknown"


def feature_schema(config: Config) -> list[dict[str, Any]]:
    return [
        fmt.Feature(
            name=name,
            type=f.type,
            min=f.min,
            max=f.max,
            categories=tuple(f.categories) if f.categories is not None else None,
            nullable=config.data.nullable(name),
        ).to_dict()
        for name, f in config.data.features.items()
    ]


def onnx_columns(frame: pd.DataFrame, config: Config) -> dict[str, np.ndarray]:
    """The model frame as onnxruntime feeds: one [N, 1] tensor per feature."""
    columns = {}
    for name, feature in config.data.features.items():
        if feature.type == "numeric":
            columns[name] = frame[name].to_numpy(dtype=np.float64).reshape(-1, 1)
        else:
            columns[name] = frame[name].astype(str).to_numpy(dtype=object).reshape(-1, 1)
    return columns


# --- conversion -------------------------------------------------------------------------------------


def _initial_types(config: Config):
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    return [
        (name, DoubleTensorType([None, 1]) if f.type == "numeric" else StringTensorType([None, 1]))
        for name, f in config.data.features.items()
    ]


def _convert(pipeline: Pipeline, config: Config, float64: bool = True) -> bytes:
    """The pipeline as ONNX. float64: mlci's float64 tree converters, which write ai.onnx.ml opset 5's
    `TreeEnsemble`; otherwise the stock converters, whose `TreeEnsembleRegressor`/`Classifier` opset 5
    no longer runs (deprecated there), so ai.onnx.ml stays at 3."""
    from skl2onnx import convert_sklearn

    from mlci.ship import onnx_boosting, onnx_double, onnx_names

    onnx_double.register()
    estimator = pipeline.steps[-1][1]
    if onnx_boosting.needed(estimator):
        onnx_boosting.register(estimator)
    # Classifiers answer a label and a probability tensor (no ZipMap); a regressor's one output is its value.
    options = {} if config.task == REGRESSION else {id(estimator): {"zipmap": False}}
    opset = onnx_double.TREE_ENSEMBLE_OPSET if float64 else LEGACY_ML_OPSET
    with onnx_double.ml_opset() if float64 else contextlib.nullcontext():
        model = convert_sklearn(
            pipeline,
            initial_types=_initial_types(config),
            options=options,
            target_opset={"": ONNX_OPSET, "ai.onnx.ml": opset},
        )
    # skl2onnx made the input names C identifiers; the schema, the API and every feed use the config's.
    return onnx_names.restore_input_names(model, list(config.data.features)).SerializeToString()


def _cast_before_estimator(pipeline: Pipeline) -> Pipeline:
    """The same fitted steps with a float32 cast in front of the estimator (converter only does float)."""
    from skl2onnx.sklapi import CastTransformer

    *head, last = pipeline.steps
    cast = CastTransformer(dtype=np.float32)
    cast.fit(np.zeros((1, 1)))
    return Pipeline([*head, ("cast_float32", cast), last])


def _parity_regression(runner, pipeline: Pipeline, frame: pd.DataFrame, config: Config) -> dict[str, Any]:
    values, _ = runner(onnx_columns(frame, config))
    values = np.asarray(values, dtype=np.float64).ravel()
    expected = np.asarray(pipeline.predict(frame), dtype=np.float64).ravel()
    if values.shape != expected.shape:
        return {
            "rows": len(frame),
            "max_abs_prediction_diff": math.inf,
            "prediction_mismatch_rows": [],
            "problem": f"predictions have shape {values.shape}, scikit-learn's {expected.shape}",
        }
    diff = np.abs(values - expected)
    diff = np.where(np.isnan(diff), np.inf, diff)
    rows = np.flatnonzero(diff > config.package.parity_tolerance)
    return {
        "rows": len(frame),
        "max_abs_prediction_diff": float(diff.max()) if diff.size else 0.0,
        "prediction_mismatch_rows": [int(i) for i in rows],
    }


def _parity(runner, pipeline: Pipeline, frame: pd.DataFrame, config: Config) -> dict[str, Any]:
    if config.task == REGRESSION:
        return _parity_regression(runner, pipeline, frame, config)
    feeds = onnx_columns(frame, config)
    labels, probabilities = runner(feeds)
    labels = np.asarray(labels).ravel().astype(str)
    expected_labels = np.asarray(pipeline.predict(frame)).astype(str)
    expected_proba = np.asarray(pipeline.predict_proba(frame), dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != expected_proba.shape:
        return {
            "rows": len(frame),
            "labels_equal": False,
            "max_abs_proba_diff": math.inf,
            "label_mismatch_rows": [],
            "proba_mismatch_rows": [],
            "problem": f"probabilities have shape {probabilities.shape}, scikit-learn's {expected_proba.shape}",
        }
    diff = np.abs(probabilities - expected_proba)
    diff = np.where(np.isnan(diff), np.inf, diff)
    row_diff = diff.max(axis=1) if diff.size else np.zeros(len(frame))
    label_rows = np.flatnonzero(labels != expected_labels)
    proba_rows = np.flatnonzero(row_diff > config.package.parity_tolerance)
    return {
        "rows": len(frame),
        "labels_equal": bool(label_rows.size == 0),
        "max_abs_proba_diff": float(row_diff.max()) if row_diff.size else 0.0,
        "label_mismatch_rows": [int(i) for i in label_rows],
        "proba_mismatch_rows": [int(i) for i in proba_rows],
    }


def _parity_problem(parity: dict[str, Any], tolerance: float) -> str | None:
    if "problem" in parity:
        return parity["problem"]
    problems = []
    if parity.get("prediction_mismatch_rows"):
        rows = parity["prediction_mismatch_rows"]
        problems.append(
            f"predictions differ by up to {parity['max_abs_prediction_diff']:.3g} (tolerance {tolerance:g}) "
            f"on {len(rows)} of {parity['rows']} rows (rows {rows[:MAX_ROWS_SHOWN]}"
            f"{' …' if len(rows) > MAX_ROWS_SHOWN else ''})"
        )
    if parity.get("labels_equal") is False:
        rows = parity["label_mismatch_rows"]
        problems.append(
            f"labels differ from scikit-learn's on {len(rows)} of {parity['rows']} rows "
            f"(rows {rows[:MAX_ROWS_SHOWN]}{' …' if len(rows) > MAX_ROWS_SHOWN else ''})"
        )
    if parity.get("proba_mismatch_rows"):
        rows = parity["proba_mismatch_rows"]
        problems.append(
            f"probabilities differ by up to {parity['max_abs_proba_diff']:.3g} (tolerance {tolerance:g}) "
            f"on {len(rows)} rows (rows {rows[:MAX_ROWS_SHOWN]}{' …' if len(rows) > MAX_ROWS_SHOWN else ''})"
        )
    return "; ".join(problems) or None


def convert_with_parity(pipeline: Pipeline, config: Config, frame: pd.DataFrame) -> dict[str, Any]:
    """Try float64, then float64 preprocessing + float32 estimator; the first that converts and matches wins.

    Returns {"ok", "model" (bytes), "precision", "parity", "attempts": [{"precision", "error"}]}.
    """
    attempts: list[dict[str, Any]] = []
    candidates = [
        ("float64", lambda: pipeline, True),
        ("float64 preprocessing, float32 estimator", lambda: _cast_before_estimator(pipeline), False),
    ]
    for precision, build, float64 in candidates:
        try:
            model = _convert(build(), config, float64)
            runner = fmt.OnnxRunner(
                fmt.open_onnx_session(model),
                [fmt.Feature(n, f.type) for n, f in config.data.features.items()],
                config.task,
            )
            parity = _parity(runner, pipeline, frame, config)
        except Exception as error:  # noqa: BLE001 - any converter/runtime failure means "unsupported"
            attempts.append({"precision": precision, "error": f"{type(error).__name__}: {error}".strip()})
            continue
        problem = _parity_problem(parity, config.package.parity_tolerance)
        attempts.append({"precision": precision, "error": problem, "parity": parity})
        if problem is None:
            return {"ok": True, "model": model, "precision": precision, "parity": parity, "attempts": attempts}
    return {"ok": False, "attempts": attempts}


# --- files ------------------------------------------------------------------------------------------


def refusal_hint(pipeline: Pipeline, attempts: list[dict[str, Any]]) -> str:
    """What to change when no conversion matched: the smallest difference measured says whether a looser
    package.parity_tolerance would do; a boosted model cannot fall back (the API image has no LightGBM/XGBoost)."""
    from mlci.ship import onnx_boosting

    measured = [
        value
        for a in attempts
        for key in ("max_abs_prediction_diff", "max_abs_proba_diff")
        if (value := (a.get("parity") or {}).get(key)) is not None and math.isfinite(value)
    ]
    closest = (
        f"the closest conversion differs by up to {min(measured):.3g}: if that is acceptable, set "
        f"package.parity_tolerance to at least {min(measured) * 1.01:.2g} in mlci.yaml; otherwise "
        if measured
        else ""
    )
    if onnx_boosting.needed(pipeline.steps[-1][1]):
        return closest + "choose another estimator (a boosted model ships as ONNX only)"
    return closest + FALLBACK_HINT


def _dump_skops(pipeline: Pipeline, path: Path) -> None:
    """Save the fallback model, refusing one the API's exact skops allow-list would not load."""
    import skops.io as sio

    data = sio.dumps(pipeline)
    refused = sorted(set(sio.get_untrusted_types(data=data)) - fmt.SKOPS_ALLOWED_TYPES)
    if refused:
        raise BadInput(
            f"cannot ship {type(pipeline.steps[-1][1]).__name__} as a scikit-learn bundle: the API loads only "
            f"the types of mlci's supported pipelines, and this one needs {', '.join(refused)}",
            hint="use a supported estimator (LogisticRegression, DecisionTree, RandomForest, GradientBoosting, "
            "HistGradientBoosting), or one that converts to ONNX",
        )
    path.write_bytes(data)


def _json_value(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def reference_records(frame: pd.DataFrame, config: Config, rows: int) -> list[dict[str, Any]]:
    records = []
    for _, row in frame.head(rows).iterrows():
        record: dict[str, Any] = {}
        for name, feature in config.data.features.items():
            value = row[name]
            if feature.type == "numeric":
                record[name] = None if pd.isna(value) else float(value)
            else:
                record[name] = None if value == fmt.MISSING_CATEGORY else str(value)
        records.append(record)
    return records


def _expected(pipeline: Pipeline, frame: pd.DataFrame, classes: list[str], config: Config) -> list[dict[str, Any]]:
    if config.task == REGRESSION:
        return [{"value": float(v)} for v in np.asarray(pipeline.predict(frame), dtype=np.float64).ravel()]
    labels = pipeline.predict(frame)
    probabilities = pipeline.predict_proba(frame)
    return [
        {"label": str(label), "probabilities": {c: float(p) for c, p in zip(classes, row)}}
        for label, row in zip(labels, probabilities)
    ]


def target_facts(target: pd.Series | None) -> dict[str, Any] | None:
    """A regression's training target: range, mean, spread and deciles (None when not given)."""
    if target is None or target.empty:
        return None
    values = target.to_numpy(dtype=np.float64)
    edges = np.unique(np.quantile(values, np.linspace(0.1, 0.9, 9)))
    return {
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "edges": [float(e) for e in edges],
    }


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(
        json.dumps(payload, indent=2, sort_keys=False, allow_nan=False, default=str) + "\n", encoding="utf-8"
    )


def _replace_dir(staging: Path, out_dir: Path) -> None:
    """Move the finished staging dir to out_dir; an old bundle there is swapped out, then removed."""
    old = None
    if out_dir.exists():
        if not out_dir.is_dir():
            raise BadInput(f"--out {out_dir} exists and is not a directory")
        if any(out_dir.iterdir()) and not (out_dir / fmt.METADATA_FILE).is_file():
            raise BadInput(
                f"--out {out_dir} is a non-empty directory that is not a model bundle",
                hint="choose an empty or new directory; mlci only replaces an earlier bundle",
            )
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
    try:
        os.replace(staging, out_dir)
    except OSError:
        if old is not None:
            os.replace(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _check_inputs(pipeline: Pipeline, config: Config, frame: pd.DataFrame) -> list[str]:
    """The classes of a classifier (none for a regression), once the model and frame fit the task."""
    from sklearn.base import is_regressor
    from sklearn.utils.validation import check_is_fitted

    if config.task == REGRESSION:
        if not is_regressor(pipeline):
            raise BadInput(
                f"the model is a {type(pipeline.steps[-1][1]).__name__}, not a regressor, and task is regression",
                hint="train the model with this mlci.yaml (mlci train), or package with the mlci.yaml it was "
                "trained with",
            )
        classes: list[str] = []
        try:
            check_is_fitted(pipeline)
        except Exception:  # noqa: BLE001 - NotFittedError and friends
            raise BadInput("the pipeline is not fitted") from None
    else:
        if not hasattr(pipeline, "predict_proba"):
            raise BadInput(
                "the model has no predict_proba and task is classification",
                hint="train the model with this mlci.yaml (mlci train); a regressor needs task: regression",
            )
        try:
            classes = [str(c) for c in pipeline.classes_]
        except AttributeError:
            raise BadInput("the pipeline is not fitted (no classes_)") from None
    missing = [n for n in config.data.features if n not in frame.columns]
    if missing:
        raise BadInput(
            f"the parity frame lacks feature column(s) {', '.join(missing)}",
            hint="pass the held-out features through ml.model.model_frame first",
        )
    if frame.empty:
        raise BadInput("the parity frame is empty: parity needs the held-out rows")
    return classes


def _distribution(config: Config, training_frame: pd.DataFrame | None) -> Distribution | None:
    """The training distribution (drift reference), from the model frame of the rows the model learned."""
    if training_frame is None:
        return None
    missing = [n for n in config.data.features if n not in training_frame.columns]
    if missing or training_frame.empty:
        raise BadInput(
            "the training frame is empty" if not missing else f"the training frame lacks {', '.join(missing)}",
            hint="pass the training rows through ml.model.model_frame first",
        )
    return profile_distribution.training_distribution(training_frame, config)


def export_bundle(
    pipeline: Pipeline,
    config: Config,
    metadata: dict[str, Any],
    parity_frame: pd.DataFrame,
    out_dir: Path,
    training_frame: pd.DataFrame | None = None,
    training_target: pd.Series | None = None,
) -> dict[str, Any]:
    """Write a self-contained bundle to out_dir (atomically) and return a summary for reports/package.json.

    training_frame: the (verified) rows the model was trained on; with it the bundle carries their
    distribution (distribution.json) and the API reports input drift against it."""
    out_dir = Path(out_dir)
    frame = parity_frame[list(config.data.features)]
    classes = _check_inputs(pipeline, config, frame)
    distribution = _distribution(config, training_frame)
    tolerance = config.package.parity_tolerance

    result = convert_with_parity(pipeline, config, frame)
    fallback_reason = None
    if result["ok"]:
        fmt_name, model_file = fmt.FORMAT_ONNX, fmt.ONNX_FILE
        parity = result["parity"]
        precision = result["precision"]
    else:
        details = [f"{a['precision']}: {a['error']}" for a in result["attempts"]]
        reason = "ONNX conversion unsupported or not equal to scikit-learn — " + " | ".join(details)
        if not config.package.allow_sklearn_fallback:
            # Exit 2: the model this mlci.yaml chose cannot be served as trained (no silent drift between
            # training and serving); the config must change (tolerance, fallback or estimator).
            raise BadInput(
                f"cannot package {metadata.get('name', 'the model')} as ONNX: the conversion failed or the "
                f"converted model does not reproduce scikit-learn (parity tolerance {tolerance:g}); each attempt "
                "says which",
                details=details,
                hint=refusal_hint(pipeline, result["attempts"]),
            )
        fmt_name, model_file, fallback_reason = fmt.FORMAT_SKLEARN, fmt.SKLEARN_FILE, reason
        parity = (
            {"rows": len(frame), "max_abs_prediction_diff": 0.0}
            if config.task == REGRESSION
            else {"rows": len(frame), "labels_equal": True, "max_abs_proba_diff": 0.0}
        )
        precision = "scikit-learn (float64)"
    public_parity = {k: parity[k] for k in PUBLIC_PARITY if k in parity}

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it 0700; the bundle is copied into images run by other users
        model_path = staging / model_file
        if fmt_name == fmt.FORMAT_ONNX:
            model_path.write_bytes(result["model"])
        else:
            _dump_skops(pipeline, model_path)
        records = reference_records(frame, config, config.package.reference_rows)
        reference_frame = frame.head(config.package.reference_rows)
        full_metadata = {
            **metadata,
            "bundle_format": fmt.BUNDLE_FORMAT_VERSION,
            "format": fmt_name,
            "model_file": model_file,
            "model_sha256": bundle_digest.sha256_file(model_path),
            "precision": precision,
            "task": config.task,
            "estimator": type(pipeline.steps[-1][1]).__name__,
            "features": feature_schema(config),
            "classes": classes,
            "target": target_facts(training_target) if config.task == REGRESSION else None,
            "parity": {**public_parity, "tolerance": tolerance},
            "fallback_reason": fallback_reason,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "mlci_version": mlci_version(),
            "drift": profile_distribution.drift_settings(config),
        }
        _write_json(staging / fmt.METADATA_FILE, full_metadata)
        _write_json(
            staging / fmt.REFERENCE_FILE,
            {"records": records, "expected": _expected(pipeline, reference_frame, classes, config)},
        )
        if distribution is not None:
            _write_json(staging / fmt.DISTRIBUTION_FILE, distribution.model_dump(mode="json"))
        digest = bundle_digest.write_manifest(staging)  # last: it lists every file written above
        _replace_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = {p.name: p.stat().st_size for p in sorted(out_dir.iterdir())}
    return {
        "bundle": str(out_dir),
        "format": fmt_name,
        "model_file": model_file,
        "model_sha256": full_metadata["model_sha256"],
        "bundle_sha256": digest,
        "precision": precision,
        "parity": public_parity,
        "parity_tolerance": tolerance,
        "fallback_reason": fallback_reason,
        "attempts": [{k: v for k, v in a.items() if k != "parity"} for a in result["attempts"]],
        "classes": classes,
        "task": config.task,
        "reference_rows": len(records),
        "files": files,
        "name": metadata.get("name"),
        "version": metadata.get("version"),
        "drift": {
            "distribution": distribution is not None,
            "training_rows": distribution.rows if distribution is not None else 0,
            "psi_threshold": config.monitoring.drift.psi_threshold,
        },
    }
