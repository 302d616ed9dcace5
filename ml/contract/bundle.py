"""The model bundle, serving side: the file format and the loader. numpy, onnxruntime, pydantic, stdlib.

The API image has no scikit-learn, pandas, scipy or mlflow, so nothing here (or anywhere under `api/`)
imports them at module level, and never imports `ml`. The export side (`mlci.ship.export`) imports the
constants below so both sides agree on one format.

A bundle is a directory:
    model.onnx       the pipeline converted by skl2onnx (or model.skops, the scikit-learn fallback)
    metadata.json    who/what/when: name, version, run id, commit, data fingerprint, metrics, feature
                     schema, classes, parity figures, format
    reference.json   reference records and the outputs scikit-learn gave for them (the smoke test)
    distribution.json  (optional) each feature's training distribution: the reference of the drift
                     figures (mlci.api.drift); a bundle without it serves, with drift unavailable
    SHA256SUMS       the listing whose sha256 is the bundle digest (mlci.contract.bundle_digest)

Everything in a bundle is data: the JSON files are parsed against allow-lists (mlci.contract.bundle_schema), the
skops fallback may instantiate only the exact types mlci's pipelines need, and when the caller knows the
bundle digest (the image does), the files are checked against it before anything is parsed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlci.contract import bundle_digest, bundle_schema
from mlci.contract.bundle_schema import BundleError

BUNDLE_FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
REFERENCE_FILE = "reference.json"
DISTRIBUTION_FILE = "distribution.json"
ONNX_FILE = "model.onnx"
SKLEARN_FILE = "model.skops"
FORMAT_ONNX = "onnx"
FORMAT_SKLEARN = "sklearn"
MODEL_FILES = {FORMAT_ONNX: ONNX_FILE, FORMAT_SKLEARN: SKLEARN_FILE}
MISSING_CATEGORY = ""  # the model's missing marker for categorical features (see ml/learn/model.py)
NUMERIC = "numeric"
CATEGORICAL = "categorical"
# The types, beyond skops' own defaults, that a scikit-learn fallback bundle may instantiate: exactly
# what `skops.io.get_untrusted_types` reports for the pipelines ml/learn/model.py builds (ColumnTransformer,
# SimpleImputer, StandardScaler, OneHotEncoder + LogisticRegression, DecisionTree, RandomForest,
# GradientBoosting, HistGradientBoosting); tests/unit/contract/test_bundle.py holds the list to that.
# Names, never prefixes: `builtins.` would admit exec and eval.
SKOPS_ALLOWED_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)


@dataclass(frozen=True)
class Feature:
    name: str
    type: str
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    nullable: bool = False

    @classmethod
    def from_entry(cls, entry: bundle_schema.FeatureEntry) -> Feature:
        return cls(
            name=entry.name,
            type=entry.type,
            min=entry.min,
            max=entry.max,
            categories=tuple(entry.categories) if entry.categories is not None else None,
            nullable=entry.nullable,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "min": self.min,
            "max": self.max,
            "categories": list(self.categories) if self.categories is not None else None,
            "nullable": self.nullable,
        }


def session_options():
    """onnxruntime options for a small box running a few workers.

    One intra-op thread: single-row and micro-batch inference is far below the size where threads pay
    off, the workers are the parallelism, and the float64 tree ensembles (ml/ship/onnx_double.py) must sum
    their trees in order to reproduce scikit-learn's ties bit for bit. Sequential execution, all graph
    optimisations, and no spinning threads burning a core between requests.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def open_onnx_session(model: bytes | str | Path):
    import onnxruntime as ort

    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, sess_options=session_options(), providers=["CPUExecutionProvider"])


CLASSIFICATION = "classification"
REGRESSION = "regression"


class OnnxRunner:
    """Runs an onnxruntime session whose inputs are one [N, 1] tensor per feature.

    Returns (labels, probabilities [N, classes]) for a classifier, (values [N] float64, an [N, 0] array)
    for a regression: one shape for the batcher and the routes, whatever the task."""

    def __init__(self, session, features: list[Feature], task: str = CLASSIFICATION):
        self.session = session
        self.task = task
        inputs = {i.name: i.type for i in session.get_inputs()}
        expected = {f.name for f in features}
        if set(inputs) != expected:
            raise BundleError(f"model inputs {sorted(inputs)} do not match the feature schema {sorted(expected)}")
        outputs = [o.name for o in session.get_outputs()]
        wanted = 1 if task == REGRESSION else 2
        if len(outputs) < wanted:
            what = "a predicted value" if task == REGRESSION else "a label and probabilities"
            raise BundleError(f"model has outputs {outputs}; expected {what}")
        self.output_names = outputs[:wanted]

    def __call__(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if self.task == REGRESSION:
            (values,) = self.session.run(self.output_names, feeds)
            values = np.asarray(values, dtype=np.float64).reshape(-1)
            return values, np.empty((len(values), 0), dtype=np.float64)
        labels, probabilities = self.session.run(self.output_names, feeds)
        return labels, np.asarray(probabilities, dtype=np.float64)


class SklearnRunner:
    """The fallback: a scikit-learn pipeline saved with skops. Needs scikit-learn and pandas installed."""

    def __init__(self, path: Path, features: list[Feature], task: str = CLASSIFICATION):
        self.task = task
        try:
            import pandas as pd
            import skops.io as sio
        except ImportError as error:
            raise BundleError(
                f"this bundle holds a scikit-learn model (the packaging fallback) and {error.name} is not installed",
                hint="install scikit-learn, pandas and skops in the API image, or package the model as ONNX",
            ) from None
        try:
            # Reads the schema into a tree of nodes without importing or calling anything it names.
            untrusted = sio.get_untrusted_types(file=path)
        except Exception as error:  # noqa: BLE001 - a corrupt file, reported as such
            raise BundleError(f"{path} is not a readable skops file: {error}") from None
        refused = sorted(set(untrusted) - SKOPS_ALLOWED_TYPES)
        if refused:
            raise BundleError(
                f"{path} names types a scikit-learn bundle of mlci never holds, refused before loading: "
                f"{', '.join(refused)}",
                hint="package the model again with mlci package; do not serve a model file from elsewhere",
            )
        try:
            self.pipeline = sio.load(path, trusted=sorted(SKOPS_ALLOWED_TYPES))
        except Exception as error:  # noqa: BLE001 - skops re-checks every type; any failure is a bad file
            raise BundleError(f"skops cannot load {path}: {type(error).__name__}: {error}") from None
        self.features = features
        self._pd = pd

    def __call__(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        frame = self._pd.DataFrame({f.name: feeds[f.name][:, 0] for f in self.features})
        if self.task == REGRESSION:
            values = np.asarray(self.pipeline.predict(frame), dtype=np.float64).reshape(-1)
            return values, np.empty((len(values), 0), dtype=np.float64)
        return self.pipeline.predict(frame), self.pipeline.predict_proba(frame)


@dataclass
class Bundle:
    path: Path
    metadata: dict[str, Any]
    features: list[Feature]
    classes: list[str]
    reference: dict[str, Any]
    runner: Any = field(repr=False)
    distribution: bundle_schema.Distribution | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", ""))

    @property
    def format(self) -> str:
        return str(self.metadata["format"])

    @property
    def task(self) -> str:
        return str(self.metadata.get("task", CLASSIFICATION))

    @property
    def regression(self) -> bool:
        return self.task == REGRESSION

    def empty_columns(self, rows: int) -> dict[str, np.ndarray]:
        return {
            f.name: (np.empty((rows, 1), dtype=np.float64) if f.type == NUMERIC else np.empty((rows, 1), dtype=object))
            for f in self.features
        }

    def columns_from_records(self, records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """Model inputs from already-validated records (None = missing: NaN or the missing marker)."""
        columns = {}
        for feature in self.features:
            name = feature.name
            if feature.type == NUMERIC:
                values = [math.nan if r[name] is None else r[name] for r in records]
                columns[name] = np.array(values, dtype=np.float64).reshape(-1, 1)
            else:
                values = [MISSING_CATEGORY if r[name] is None else r[name] for r in records]
                columns[name] = np.array(values, dtype=object).reshape(-1, 1)
        return columns

    def predict(self, columns: dict[str, np.ndarray]) -> tuple[list[Any], np.ndarray]:
        """Labels (as strings) and class probabilities (rows x classes, in `self.classes` order); for a
        regression, the predicted values (floats) and an [N, 0] array."""
        feeds = {}
        for feature in self.features:
            column = columns[feature.name]
            if column.ndim == 1:
                column = column.reshape(-1, 1)
            feeds[feature.name] = column
        labels, probabilities = self.runner(feeds)
        if self.regression:
            return [float(v) for v in np.asarray(labels, dtype=np.float64).ravel().tolist()], probabilities
        return [str(label) for label in np.asarray(labels).ravel().tolist()], probabilities


def _verify(root: Path, expected_sha256: str | None) -> None:
    if expected_sha256 is not None:
        bundle_digest.verify(root, expected_sha256)


def _distribution(path: Path, meta: bundle_schema.Metadata) -> bundle_schema.Distribution | None:
    """The training distribution, when the bundle has one (bundles packaged before drift have none)."""
    if not path.exists() and not path.is_symlink():
        return None
    distribution = bundle_schema.parse(bundle_schema.Distribution, path, "training distribution")
    bundle_schema.check_distribution(path, distribution, meta)
    return distribution


def load_bundle(path: str | Path, expected_sha256: str | None = None) -> Bundle:
    """Open a bundle directory for serving; `BundleError` says what is missing, corrupt or altered.

    expected_sha256: the bundle digest from outside the bundle (the image's MLCI_BUNDLE_SHA256, `mlci serve
    --bundle-sha256`); when given, a bundle whose files differ is refused before anything is parsed."""
    root = Path(path)
    if not root.is_dir():
        raise BundleError(
            f"model bundle {root} is not a directory",
            hint="pass the directory written by `mlci package --out DIR` (env MLCI_BUNDLE)",
        )
    _verify(root, expected_sha256)
    metadata_path, reference_path = root / METADATA_FILE, root / REFERENCE_FILE
    meta = bundle_schema.parse(bundle_schema.Metadata, metadata_path, "bundle metadata")
    bundle_schema.check_metadata(metadata_path, meta, MODEL_FILES)
    reference = bundle_schema.parse(bundle_schema.reference_model(meta.task), reference_path, "reference rows")
    bundle_schema.check_reference(reference_path, reference, meta)
    distribution = _distribution(root / DISTRIBUTION_FILE, meta)
    features = [Feature.from_entry(f) for f in meta.features]
    model_file = root / meta.model_file
    if model_file.is_symlink() or not model_file.is_file():
        raise BundleError(f"model file {model_file} is missing")
    if meta.format == FORMAT_ONNX:
        try:
            runner: Any = OnnxRunner(open_onnx_session(model_file), features, meta.task)
        except BundleError:
            raise
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types for a bad file
            raise BundleError(f"onnxruntime cannot load {model_file}: {error}") from None
    else:
        runner = SklearnRunner(model_file, features, meta.task)
    return Bundle(
        path=root,
        metadata=meta.model_dump(),
        features=features,
        classes=list(meta.classes),
        reference=reference.model_dump(),
        runner=runner,
        distribution=distribution,
    )
