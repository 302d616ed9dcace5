"""A registered version is data, never code: gate and package refuse versions that would run code on the agent.

Anyone with write access to MLflow can register a version; `mlflow.sklearn.load_model` would follow the
version's own MLmodel (pickle, or skops trusting builtins.exec). The versions here are registered in the
project's real embedded store, next to one `mlci train` made, and each carries a payload that writes a
marker file if it is ever deserialized.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import skops.io
import yaml

NAME = "breast-cancer-classifier"


class WritesMarker:
    """Unpickling this calls Path.write_text: the stand-in for any code a pickle can run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pickle ran on the agent"))


def exec_skops(marker: Path) -> bytes:
    """A skops file whose root is `builtins.exec(code)`: harmless only if builtins.exec is not trusted."""
    code = f"open({str(marker)!r}, 'w').write('skops ran on the agent')"
    schema = {
        "__class__": "exec",
        "__module__": "builtins",
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [
                {
                    "__class__": "str",
                    "__module__": "builtins",
                    "__loader__": "JsonNode",
                    "content": json.dumps(code),
                    "is_json": True,
                    "__id__": 1,
                }
            ],
            "__id__": 2,
        },
        "__id__": 3,
        "protocol": 2,
        "_skops_version": skops.__version__,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    return buffer.getvalue()


def test_the_crafted_skops_file_runs_code_when_its_type_is_trusted(tmp_path):
    # The fixture is only a fair test if it is dangerous: loaded the way MLflow would (trusting what the
    # MLmodel lists), it writes the marker; skops' own check names the type.
    marker = tmp_path / "marker"
    path = tmp_path / "model.skops"
    path.write_bytes(exec_skops(marker))
    assert skops.io.get_untrusted_types(file=path) == ["builtins.exec"]
    skops.io.load(path, trusted=["builtins.exec"])
    assert marker.exists()


@pytest.fixture
def trained(project):
    """The demo project with version 1 from `mlci train`, and mlflow pointed at its store."""
    import mlflow

    assert project.mlci("train").exit_code == 0
    uri = f"sqlite:///{project.root / '.mlci' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return project


def _register(project, log) -> str:
    """Log a model with `log(mlflow)` into the experiment of version 1 and register it; its version."""
    import mlflow

    client = project.client()
    experiment_id = client.get_run(client.get_model_version(NAME, "1").run_id).info.experiment_id
    with mlflow.start_run(experiment_id=experiment_id):
        info = log(mlflow)
    return mlflow.register_model(info.model_uri, NAME).version


def _model_folder(project, version: str) -> Path:
    import mlflow

    source = project.client().get_model_version(NAME, version).source  # models:/m-<id>
    location = mlflow.get_logged_model(source.removeprefix("models:/")).artifact_location
    return Path(unquote(urlparse(location).path))


def _assert_refused(project, version: str, marker: Path, *words: str) -> None:
    bundle = project.root / "bundle"
    for command in (["gate", "--version", version], ["package", "--version", version, "--out", str(bundle)]):
        result = project.mlci(*command)
        output = result.stdout + result.stderr
        assert result.exit_code == 2, output
        assert f"{NAME} v{version}" in output and all(word in output for word in words), output
        assert "Traceback" not in output
        assert not marker.exists(), f"mlci {command[0]} ran the version's code"
    assert not bundle.exists()


def test_a_pickled_version_is_refused_before_it_is_read(trained, tmp_path):
    marker = tmp_path / "pickle-marker"
    version = _register(
        trained,
        lambda mlflow: mlflow.sklearn.log_model(
            WritesMarker(marker), name="model", serialization_format="pickle", pip_requirements=[], signature=False
        ),
    )
    assert not marker.exists()  # logging pickled it; nothing has unpickled it yet
    assert pickle.loads((_model_folder(trained, version) / "model.pkl").read_bytes()) is not None
    marker.unlink()  # the pickle is live: loading it writes the marker (just checked), so start clean

    _assert_refused(trained, version, marker, "'pickle'", "not skops")

    # The gate also loads whatever @production points at: that version is held to the same rule.
    trained.client().set_registered_model_alias(NAME, "production", version)
    gated = trained.mlci("gate", "--version", "1")
    assert gated.exit_code == 2 and f"{NAME} v{version} is saved as 'pickle'" in gated.stderr + gated.stdout
    assert not marker.exists(), "mlci gate ran @production's code"

    # The second lock (mlci.track.tracking's defaults, set by every command): MLflow's own loader refuses too.
    import mlflow
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="MLFLOW_ALLOW_PICKLE_DESERIALIZATION"):
        mlflow.sklearn.load_model(f"models:/{NAME}/{version}")
    assert not marker.exists()


def test_a_skops_version_whose_mlmodel_trusts_exec_is_refused(trained, tmp_path):
    from sklearn.dummy import DummyClassifier

    marker = tmp_path / "skops-marker"
    version = _register(
        trained,
        lambda mlflow: mlflow.sklearn.log_model(
            DummyClassifier().fit([[0], [1]], [0, 1]),
            name="model",
            serialization_format="skops",
            pip_requirements=[],
            signature=False,
        ),
    )
    # What an attacker with write access to the artifact store writes: a skops file calling exec, and an
    # MLmodel that trusts exactly that.
    folder = _model_folder(trained, version)
    (folder / "model.skops").write_bytes(exec_skops(marker))
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    mlmodel["flavors"]["sklearn"]["skops_trusted_types"] = ["builtins.exec"]
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))

    _assert_refused(trained, version, marker, "builtins.exec")


def test_a_version_of_another_flavour_is_refused(trained, tmp_path):
    from mlflow.pyfunc import PythonModel

    class Constant(PythonModel):
        def predict(self, context, model_input):
            return [0] * len(model_input)

    marker = tmp_path / "never"
    version = _register(
        trained,
        lambda mlflow: mlflow.pyfunc.log_model(name="model", python_model=Constant(), pip_requirements=[]),
    )
    _assert_refused(trained, version, marker, "no sklearn flavour")


def test_a_trained_version_still_gates_and_packages(trained):
    gated = trained.mlci("gate", "--version", "1")
    assert gated.exit_code == 0, gated.stdout + gated.stderr
    packaged = trained.mlci("package", "--version", "1", "--out", str(trained.root / "bundle"))
    assert packaged.exit_code == 0, packaged.stdout + packaged.stderr
    assert (trained.root / "bundle" / "metadata.json").exists()
