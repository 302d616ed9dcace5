"""Loading a registered model version on the agent: the version is data, never code.

`mlflow.sklearn.load_model` takes the serialization format and the skops trusted types from the
version's own `MLmodel` file, so whoever can register a version chooses what the agent that gates or
packages it executes (a pickle runs its code; a skops file whose MLmodel trusts `builtins.exec` does
too) — on the agent that holds the MLflow, registry and Docker credentials. Here mlci decides instead:
the MLmodel is parsed as plain YAML (bounded), only the sklearn flavour saved with skops is accepted
(refused before any model file is downloaded), and skops may instantiate only the types skops trusts
itself plus the exact list the serving side allows (`mlci.contract.bundle.SKOPS_ALLOWED_TYPES`) and, on the
agent only, the boosting estimators' types (BOOSTING_TYPES: a bundle never holds them).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlci.contract.bundle import SKOPS_ALLOWED_TYPES
from mlci.core.errors import BadInput

MLMODEL_FILE = "MLmodel"
# An MLmodel is a few KiB (the signature grows with the features); anything far larger is not one.
MLMODEL_MAX_BYTES = 1024 * 1024
SKLEARN_FLAVOR = "sklearn"
SKOPS_FORMAT = "skops"
# The file name MLflow gives a skops-saved model; a different name in MLmodel is not mlci's model.
SKOPS_MODEL_FILE = "model.skops"
HINT = (
    "mlci gates and packages only versions `mlci train` registers (scikit-learn saved with skops); if you did "
    "not register this one, check in MLflow who did. Train again (mlci train) and gate the new version"
)


@dataclass(frozen=True)
class ModelFormat:
    """What a version's MLmodel says about its sklearn flavour, once accepted."""

    serialization_format: str
    model_file: str


def _uri(name: str, version: str, file: str) -> str:
    return f"models:/{name}/{version}/{file}"


def _download(name: str, version: str, file: str, folder: Path) -> Path:
    """One file of the version's model artifacts (never the whole folder: nothing mlci will not read)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = _uri(name, version, file)
    try:
        path = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(folder)))
    except (MlflowException, OSError) as error:
        raise BadInput(f"{name} v{version}: cannot fetch {file} from MLflow ({uri}): {error}", hint=HINT) from None
    if not path.is_file():
        raise BadInput(f"{name} v{version}: {file} in its model artifacts is not a file", hint=HINT)
    return path


def read_mlmodel(path: Path, label: str) -> dict[str, Any]:
    """The MLmodel as plain YAML data (safe_load: no tags that build objects), size-bounded."""
    if path.stat().st_size > MLMODEL_MAX_BYTES:
        raise BadInput(f"{label}: its MLmodel file is larger than {MLMODEL_MAX_BYTES} bytes", hint=HINT)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise BadInput(f"{label}: its MLmodel file is not readable YAML: {error}", hint=HINT) from None
    if not isinstance(document, dict):
        raise BadInput(f"{label}: its MLmodel file is not a mapping", hint=HINT)
    return document


def accepted_format(mlmodel: dict[str, Any], label: str) -> ModelFormat:
    """The sklearn flavour saved with skops, or BadInput naming what the version is instead."""
    flavors = mlmodel.get("flavors")
    flavor = flavors.get(SKLEARN_FLAVOR) if isinstance(flavors, dict) else None
    if not isinstance(flavor, dict):
        names = sorted(str(key) for key in flavors) if isinstance(flavors, dict) else []
        raise BadInput(
            f"{label} is not a scikit-learn model saved by mlci: its MLmodel has no sklearn flavour",
            details=[f"flavours: {', '.join(names) or 'none'}"],
            hint=HINT,
        )
    fmt = flavor.get("serialization_format")
    if fmt != SKOPS_FORMAT:
        raise BadInput(
            f"{label} is saved as {fmt!r}, not skops: mlci does not load it (loading a pickle runs its code)",
            details=[f"MLmodel flavors.sklearn.serialization_format: {fmt!r}"],
            hint=HINT,
        )
    model_file = flavor.get("pickled_model")
    if model_file != SKOPS_MODEL_FILE:
        raise BadInput(
            f"{label}: its MLmodel names the model file {model_file!r}, not {SKOPS_MODEL_FILE!r}",
            hint=HINT,
        )
    return ModelFormat(serialization_format=fmt, model_file=model_file)


# Beyond the serving side's list, on the agent only: the gradient-boosting estimators mlci trains
# (`pip install mlci[boosting]`), exactly the types skops reports for their pipelines. A bundle never holds
# them (the API image has neither library: such a model ships as ONNX or not at all).
BOOSTING_TYPES = frozenset(
    {
        "collections.OrderedDict",  # LightGBM's best_score_
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "xgboost.core.Booster",
        "xgboost.sklearn.XGBClassifier",
        "xgboost.sklearn.XGBRegressor",
        "mlci.learn.encoded.LabelEncodedClassifier",
    }
)
AGENT_TYPES = SKOPS_ALLOWED_TYPES | BOOSTING_TYPES


def allowed_types() -> list[str]:
    # Never the MLmodel's own skops_trusted_types: that list is written by whoever registered the version.
    return sorted(AGENT_TYPES)


def load_skops(path: Path, label: str):
    """skops.io.load with mlci's exact list, after checking the file asks for nothing else."""
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as error:  # noqa: BLE001 - any failure to audit the file means it is not a model we load
        raise BadInput(f"{label}: {path.name} is not a readable skops file: {error}", hint=HINT) from None
    refused = sorted(set(untrusted) - AGENT_TYPES)
    if refused:
        raise BadInput(
            f"{label}: {path.name} asks for types mlci does not load",
            details=[f"refused type: {name}" for name in refused],
            hint=HINT,
        )
    try:
        return skops.io.load(path, trusted=allowed_types())
    except Exception as error:  # noqa: BLE001 - skops re-checks every type; any failure is a bad file
        raise BadInput(f"{label}: skops cannot load {path.name}: {type(error).__name__}: {error}", hint=HINT) from None


def load_version(name: str, version: str):
    """The scikit-learn pipeline registered as NAME version VERSION, loaded as data only."""
    label = f"{name} v{version}"
    with tempfile.TemporaryDirectory(prefix="mlci-model-") as folder:
        mlmodel = read_mlmodel(_download(name, version, MLMODEL_FILE, Path(folder) / "meta"), label)
        model_format = accepted_format(mlmodel, label)
        # Only now, and only the one file the accepted format names, is any model data fetched.
        model_path = _download(name, version, model_format.model_file, Path(folder) / "model")
        return load_skops(model_path, label)
