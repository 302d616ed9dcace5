"""The model bundle, serving side: the file format and the loader. numpy + onnxruntime + stdlib only.

The API image has no scikit-learn, pandas, scipy or mlflow, so nothing here (or anywhere under `api/`)
imports them at module level, and never imports `ml`. The export side (`ml.bundle`) imports the
constants below so both sides agree on one format.

A bundle is a directory:
    model.onnx       the pipeline converted by skl2onnx (or model.skops, the scikit-learn fallback)
    metadata.json    who/what/when: name, version, run id, commit, data fingerprint, metrics, feature
                     schema, classes, parity figures, format
    reference.json   reference records and the outputs scikit-learn gave for them (the smoke test)
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BUNDLE_FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
REFERENCE_FILE = "reference.json"
ONNX_FILE = "model.onnx"
SKLEARN_FILE = "model.skops"
FORMAT_ONNX = "onnx"
FORMAT_SKLEARN = "sklearn"
MODEL_FILES = {FORMAT_ONNX: ONNX_FILE, FORMAT_SKLEARN: SKLEARN_FILE}
MISSING_CATEGORY = ""  # the model's missing marker for categorical features (see ml/model.py)
NUMERIC = "numeric"
CATEGORICAL = "categorical"
# Modules a scikit-learn fallback bundle may instantiate when loaded with skops.
SKOPS_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


class BundleError(Exception):
    """A missing or corrupt bundle. `ml.bundle.load_bundle` turns it into `ml.errors.BadInput`."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Feature:
    name: str
    type: str
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    nullable: bool = False

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Feature:
        categories = raw.get("categories")
        return cls(
            name=str(raw["name"]),
            type=str(raw["type"]),
            min=raw.get("min"),
            max=raw.get("max"),
            categories=tuple(categories) if categories is not None else None,
            nullable=bool(raw.get("nullable", False)),
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
    off, the workers are the parallelism, and the float64 tree ensembles (ml/onnx_double.py) must sum
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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class OnnxRunner:
    """Runs an onnxruntime session whose inputs are one [N, 1] tensor per feature."""

    def __init__(self, session, features: list[Feature]):
        self.session = session
        inputs = {i.name: i.type for i in session.get_inputs()}
        expected = {f.name for f in features}
        if set(inputs) != expected:
            raise BundleError(f"model inputs {sorted(inputs)} do not match the feature schema {sorted(expected)}")
        outputs = [o.name for o in session.get_outputs()]
        if len(outputs) < 2:
            raise BundleError(f"model has outputs {outputs}; expected a label and probabilities")
        self.output_names = outputs[:2]

    def __call__(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        labels, probabilities = self.session.run(self.output_names, feeds)
        return labels, np.asarray(probabilities, dtype=np.float64)


class SklearnRunner:
    """The fallback: a scikit-learn pipeline saved with skops. Needs scikit-learn and pandas installed."""

    def __init__(self, path: Path, features: list[Feature]):
        try:
            import pandas as pd
            import skops.io as sio
        except ImportError as error:
            raise BundleError(
                f"this bundle holds a scikit-learn model (the packaging fallback) and {error.name} is not installed",
                hint="install scikit-learn, pandas and skops in the API image, or package the model as ONNX",
            ) from None
        try:
            untrusted = sio.get_untrusted_types(file=path)
        except Exception as error:  # noqa: BLE001 - a corrupt file, reported as such
            raise BundleError(f"{path} is not a readable skops file: {error}") from None
        refused = [t for t in untrusted if not t.startswith(SKOPS_TRUSTED_PREFIXES)]
        if refused:
            raise BundleError(f"{path} contains types outside scikit-learn/numpy/scipy: {', '.join(refused)}")
        self.pipeline = sio.load(path, trusted=untrusted)
        self.features = features
        self._pd = pd

    def __call__(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        frame = self._pd.DataFrame({f.name: feeds[f.name][:, 0] for f in self.features})
        return self.pipeline.predict(frame), self.pipeline.predict_proba(frame)


@dataclass
class Bundle:
    path: Path
    metadata: dict[str, Any]
    features: list[Feature]
    classes: list[str]
    reference: dict[str, Any]
    runner: Any = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", ""))

    @property
    def format(self) -> str:
        return str(self.metadata["format"])

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

    def predict(self, columns: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
        """Labels (as strings) and class probabilities (rows x classes, in `self.classes` order)."""
        feeds = {}
        for feature in self.features:
            column = columns[feature.name]
            if column.ndim == 1:
                column = column.reshape(-1, 1)
            feeds[feature.name] = column
        labels, probabilities = self.runner(feeds)
        return [str(label) for label in np.asarray(labels).ravel().tolist()], probabilities


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise BundleError(f"{what} {path} is missing", hint="package the model with `mlci package --out DIR`")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{what} {path} is not valid JSON: {error}") from None


def load_bundle(path: str | Path) -> Bundle:
    """Open a bundle directory for serving; `BundleError` says what is missing or corrupt."""
    root = Path(path)
    if not root.is_dir():
        raise BundleError(
            f"model bundle {root} is not a directory",
            hint="pass the directory written by `mlci package --out DIR` (env MLCI_BUNDLE)",
        )
    metadata = _read_json(root / METADATA_FILE, "bundle metadata")
    if not isinstance(metadata, dict):
        raise BundleError(f"{root / METADATA_FILE}: expected a JSON object")
    try:
        fmt = metadata["format"]
        model_file = root / metadata["model_file"]
        features = [Feature.from_dict(f) for f in metadata["features"]]
        classes = [str(c) for c in metadata["classes"]]
    except (KeyError, TypeError, ValueError) as error:
        raise BundleError(f"{root / METADATA_FILE} lacks a valid {error} entry") from None
    if fmt not in MODEL_FILES:
        raise BundleError(f"{root / METADATA_FILE}: unknown model format {fmt!r} (known: {', '.join(MODEL_FILES)})")
    if bad := [f.name for f in features if f.type not in (NUMERIC, CATEGORICAL)]:
        raise BundleError(f"{root / METADATA_FILE}: features {bad} have an unknown type")
    if not model_file.is_file():
        raise BundleError(f"model file {model_file} is missing")
    expected_sha = metadata.get("model_sha256")
    if expected_sha and sha256_file(model_file) != expected_sha:
        raise BundleError(f"model file {model_file} does not match the sha256 in {METADATA_FILE} (corrupt or altered)")
    reference = _read_json(root / REFERENCE_FILE, "reference rows")
    if fmt == FORMAT_ONNX:
        try:
            runner: Any = OnnxRunner(open_onnx_session(model_file), features)
        except BundleError:
            raise
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types for a bad file
            raise BundleError(f"onnxruntime cannot load {model_file}: {error}") from None
    else:
        runner = SklearnRunner(model_file, features)
    return Bundle(path=root, metadata=metadata, features=features, classes=classes, reference=reference, runner=runner)
