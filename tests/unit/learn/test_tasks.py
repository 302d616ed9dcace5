"""Every kind of model through the line, from a CSV a team brings: `mlci init` infers the task, then train,
gate, package, serve (a real uvicorn process) and predict, each figure checked against scikit-learn
computed directly on the same split. Regression on scikit-learn's diabetes data, multi-class on its wine data.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from sklearn import metrics as skm
from sklearn.datasets import load_diabetes, load_wine
from sklearn.model_selection import train_test_split

from mlci.cli.main import cli
from mlci.track import model_loading
from tests.helpers.project import Project


def init_project(tmp_path: Path, frame: pd.DataFrame, target: str, *extra: str) -> Project:
    source = tmp_path / "source.csv"
    frame.to_csv(source, index=False)
    root = tmp_path / "team"
    result = CliRunner().invoke(
        cli, ["init", "--data", str(source), "--target", target, "--dir", str(root), *extra], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    project = Project(root)
    project.written = project.config_file.read_text()  # type: ignore[attr-defined]  # as init wrote it
    project.init_output = result.output  # type: ignore[attr-defined]
    # Small models: the test is about the line, not the model.
    project.edit(**{"model.params.n_estimators": 30, "split.cv_folds": 3})
    project.git("init", "-q", "-b", "main")
    project.git("config", "user.name", "Ada Lovelace")
    project.git("config", "user.email", "ada@example.com")
    project.commit("initial")
    return project


def direct_split(project: Project):
    """The held-out rows, split here with scikit-learn alone from the committed CSV and mlci.yaml."""
    config = project.config
    frame = pd.read_csv(project.root / config["data"]["path"])
    x = frame[list(config["data"]["features"])].astype(np.float64)
    y = frame[config["data"]["target"]]
    regression = config["task"] == "regression"
    y = y.astype(np.float64) if regression else y.astype(str)
    return train_test_split(
        x,
        y,
        test_size=config["split"]["test_size"],
        random_state=config["split"]["seed"],
        stratify=None if regression else y,
    )


def served(bundle: Path, port: int):
    """`mlci serve` on the bundle, in its own process, until the test's block ends."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mlci.api.server", str(bundle), str(port), "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server not ready within 60 s"
        time.sleep(0.2)


def stop(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def regression(tmp_path_factory) -> Project:
    frame = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
    return init_project(tmp_path_factory.mktemp("regression"), frame, "progression")


def test_init_infers_a_regression_and_says_how_to_change_it(regression):
    config = regression.config
    assert config["task"] == "regression"
    assert config["model"]["estimator"] == "sklearn.ensemble.RandomForestRegressor"
    assert config["metrics"]["primary"] == "rmse"
    # The starting ceiling: the rmse of always predicting the mean (the target's standard deviation).
    target = load_diabetes().target
    assert config["gate"]["threshold"] == pytest.approx(np.std(target), rel=1e-2)
    text = regression.written
    assert (
        "regression: numeric target with 214" in regression.init_output
        and "change it with task: in mlci.yaml" in regression.init_output
    )
    assert "numeric target with 214 distinct values, over 20: a number to predict" in text
    assert "pass --task classification if these are classes" in text


def test_regression_through_train_gate_package_serve(regression, free_port):
    project = regression
    trained = project.mlci("train")
    assert trained.exit_code == 0, trained.output
    report = project.report("train")
    assert set(report["metrics"]) == {"rmse", "mae", "median_ae", "mape", "r2", "explained_variance"}
    assert f"test rmse {report['metrics']['rmse']:.4f}" in trained.output

    # The metrics against scikit-learn, computed here on a split made here.
    _, x_test, _, y_test = direct_split(project)
    model = load_trained(project, report)
    predicted = model.predict(x_test)
    expected = {
        "rmse": math.sqrt(skm.mean_squared_error(y_test, predicted)),
        "mae": skm.mean_absolute_error(y_test, predicted),
        "median_ae": skm.median_absolute_error(y_test, predicted),
        "mape": skm.mean_absolute_percentage_error(y_test, predicted),
        "r2": skm.r2_score(y_test, predicted),
        "explained_variance": skm.explained_variance_score(y_test, predicted),
    }
    assert report["metrics"] == pytest.approx(expected, rel=1e-12)
    run = project.client().get_run(report["run_id"])
    artifacts = {a.path for a in project.client().list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {"plots/predicted_vs_actual.png", "plots/residuals.png"}

    gated = project.mlci("gate")
    assert gated.exit_code == 0, gated.output
    assert "rmse (lower is better)" in gated.output and "rmse ceiling" in gated.output

    packaged = project.mlci("package", "--out", str(project.root / "bundle"))
    assert packaged.exit_code == 0, packaged.output
    package = project.report("package")
    # Float64 trees: the ONNX model gives scikit-learn's predictions bit for bit.
    assert package["precision"] == "float64"
    assert package["parity"]["max_abs_prediction_diff"] <= 1e-9
    assert "max |Δ prediction| 0.00e+00" in packaged.output
    metadata = json.loads((project.root / "bundle" / "metadata.json").read_text())
    assert (metadata["task"], metadata["classes"]) == ("regression", [])
    assert metadata["target"]["min"] <= metadata["target"]["mean"] <= metadata["target"]["max"]

    process, base = served(project.root / "bundle", free_port())
    try:
        records = json.loads(x_test.head(5).to_json(orient="records"))
        answer = httpx.post(f"{base}/predict", json={"records": records}).json()
        values = [p["value"] for p in answer["predictions"]]
        assert values == pytest.approx(model.predict(x_test.head(5)).tolist(), abs=1e-9)
        assert all(set(p) == {"value"} for p in answer["predictions"])
        schema = httpx.get(f"{base}/openapi.json").json()["components"]["schemas"]
        assert schema["PredictResponse"]["properties"]["predictions"]["items"] == {
            "$ref": "#/components/schemas/ValuePrediction"
        }
        metrics = httpx.get(f"{base}/metrics").text
        assert 'mlci_prediction_value_count{model_version="1"} 5.0' in metrics
    finally:
        stop(process)


def test_a_worse_regression_fails_the_gate_and_a_better_one_passes(regression):
    project = regression
    if not (project.root / "reports" / "train.json").exists():
        assert project.mlci("train").exit_code == 0
    first = project.report("train")["version"]
    assert project.mlci("promote", first, "--to", "production").exit_code == 0
    production_rmse = project.report("train")["metrics"]["rmse"]

    # Worse: a forest of stumps has a higher rmse than production's.
    project.edit(**{"model.params.max_depth": 1})
    project.commit("stumps")
    assert project.mlci("train").exit_code == 0
    worse = project.mlci("gate")
    assert worse.exit_code == 1, worse.output
    assert project.report("train")["metrics"]["rmse"] > production_rmse
    assert "rmse vs production" in worse.output and "FAIL" in worse.output

    # Better: a ridge regression beats the forest on this data.
    config = project.config
    config["model"] = {"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": 0.1}}
    project.write_config(config)
    project.commit("ridge")
    assert project.mlci("train").exit_code == 0
    assert project.report("train")["metrics"]["rmse"] < production_rmse
    better = project.mlci("gate")
    assert better.exit_code == 0, better.output
    gate = project.report("gate")
    assert [c["passed"] for c in gate["checks"]] == [True, True]
    assert gate["checks"][1]["required"].startswith("<= ")


def test_multiclass_through_train_gate_package_serve(tmp_path, free_port):
    frame = load_wine(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    project = init_project(tmp_path, frame.rename(columns={"target": "cultivar"}), "cultivar")
    config = project.config
    assert (config["task"], config["metrics"]["primary"]) == ("classification", "roc_auc")
    assert "positive_label" not in config["metrics"]

    trained = project.mlci("train")
    assert trained.exit_code == 0, trained.output
    report = project.report("train")
    _, x_test, _, y_test = direct_split(project)
    model = load_trained(project, report)
    predicted, proba = model.predict(x_test), model.predict_proba(x_test)
    expected = {
        "accuracy": skm.accuracy_score(y_test, predicted),
        "f1": skm.f1_score(y_test, predicted, average="macro"),
        "precision": skm.precision_score(y_test, predicted, average="macro", zero_division=0),
        "recall": skm.recall_score(y_test, predicted, average="macro"),
        "roc_auc": skm.roc_auc_score(y_test, proba, multi_class="ovr", labels=model.classes_),
        "log_loss": skm.log_loss(y_test, proba, labels=model.classes_),
    }
    assert {k: report["metrics"][k] for k in expected} == pytest.approx(expected, rel=1e-12)
    artifacts = {a.path for a in project.client().list_artifacts(report["run_id"], "plots")}
    assert artifacts == {"plots/confusion_matrix.png"}
    # Per class, beside the macro averages: the report and the run agree with scikit-learn's.
    precision, recall, f1, support = skm.precision_recall_fscore_support(y_test, predicted, labels=model.classes_)
    for i, label in enumerate(model.classes_):
        figures = report["per_class"][label]
        assert (figures["precision"], figures["recall"], figures["f1"], figures["support"]) == pytest.approx(
            (precision[i], recall[i], f1[i], support[i])
        )
    assert "class (held-out)" in trained.output
    logged = project.client().get_run(report["run_id"]).data.metrics
    assert logged["test_f1_class_barolo"] == pytest.approx(report["per_class"]["barolo"]["f1"])

    assert project.mlci("gate").exit_code == 0
    assert project.mlci("package", "--out", str(project.root / "bundle")).exit_code == 0
    package = project.report("package")
    assert package["classes"] == ["barbera", "barolo", "grignolino"]
    assert package["parity"]["labels_equal"] and package["parity"]["max_abs_proba_diff"] <= 1e-9

    process, base = served(project.root / "bundle", free_port())
    try:
        records = json.loads(x_test.head(4).to_json(orient="records"))
        answer = httpx.post(f"{base}/predict", json={"records": records}).json()["predictions"]
        assert [p["label"] for p in answer] == list(predicted[:4])
        for row, want in zip(answer, proba[:4]):
            assert set(row["probabilities"]) == {"barbera", "barolo", "grignolino"}
            assert [row["probabilities"][c] for c in model.classes_] == pytest.approx(want.tolist(), abs=1e-9)
    finally:
        stop(process)


def load_trained(project: Project, report: dict):
    """The version the training registered, as the gate loads it (skops, mlci's type list)."""
    import mlflow

    store = f"sqlite:///{project.root / '.mlci' / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    return model_loading.load_version(report["model_name"], report["version"])


def init_as(tmp_path: Path, frame: pd.DataFrame, folder: str, task: str):
    """`mlci init` on the frame with its `target` column, forcing --task."""
    args = ["init", "--data", str(_csv(tmp_path, frame)), "--target", "target", "--dir", str(tmp_path / folder)]
    return CliRunner().invoke(cli, [*args, "--task", task])


def test_init_task_flag_and_refusals(tmp_path):
    frame = load_diabetes(as_frame=True, scaled=False).frame
    # A numeric target taken as classes: 214 of them are too many, and the hint says --task regression.
    refused = init_as(tmp_path, frame, "a", "classification")
    assert refused.exit_code == 2
    assert "too many classes" in refused.output and "--task regression" in refused.output
    assert not (tmp_path / "a" / "mlci.yaml").exists()
    # A text target cannot be a regression.
    frame["target"] = np.where(frame["target"] > 140, "high", "low")
    text = init_as(tmp_path, frame, "b", "regression")
    assert text.exit_code == 2 and "is not numeric" in text.output and "--task classification" in text.output


def _csv(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


def test_config_refuses_metrics_of_the_other_task(tmp_path):
    from mlci.core import config as config_module
    from mlci.core.errors import ConfigError

    raw = yaml.safe_load((Path(__file__).resolve().parents[3] / "mlci.yaml").read_text())
    raw["task"] = "regression"
    with pytest.raises(ConfigError) as refused:
        config_module.parse(raw)
    assert "metrics.primary: roc_auc is a classification metric and task is regression" in str(refused.value.details)
    raw["metrics"] = {"primary": "r2"}
    raw["gate"] = {"threshold": 0.3, "secondary": {"rmse": {"max": 60}}}
    parsed = config_module.parse(raw)
    assert parsed.metrics.higher_is_better and parsed.task == "regression"
    raw["gate"]["secondary"] = {"accuracy": {"min": 0.9}}
    with pytest.raises(ConfigError) as secondary:
        config_module.parse(raw)
    assert "gate.secondary.accuracy: accuracy is a classification metric" in str(secondary.value.details)
    raw["gate"]["secondary"] = {}
    raw["environments"] = {
        "staging": {"port": 8081},
        "production": {"port": 8080, "shadow": {"env": "staging", "share": 0.1}},
    }
    with pytest.raises(ConfigError) as shadow:
        config_module.parse(raw)
    assert "environments.production.shadow.tolerance: required for a regression" in str(shadow.value.details)
    del raw["metrics"]
    assert config_module.parse({**raw, "environments": {}}).metrics.primary == "rmse"


def test_a_lightgbm_regression_through_train_gate_package_serve(regression, free_port):
    project = regression
    config = project.config
    config["model"] = {
        "allowed_modules": ["sklearn", "lightgbm"],
        "estimator": "lightgbm.LGBMRegressor",
        "params": {"n_estimators": 60, "learning_rate": 0.05, "num_leaves": 8},
    }
    project.write_config(config)
    project.commit("lightgbm")
    trained = project.mlci("train")
    assert trained.exit_code == 0, trained.output
    assert "[LightGBM]" not in trained.output  # quiet by default (verbose: -1)
    report = project.report("train")
    _, x_test, _, y_test = direct_split(project)
    model = load_trained(project, report)
    assert type(model.steps[-1][1]).__name__ == "LGBMRegressor"
    assert report["metrics"]["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y_test, model.predict(x_test))))
    gated = project.mlci("gate")
    assert gated.exit_code in (0, 1) and "rmse ceiling" in gated.output

    packaged = project.mlci("package", "--out", str(project.root / "lgbm-bundle"))
    assert packaged.exit_code == 0, packaged.output
    package = project.report("package")
    assert package["precision"] == "float64" and package["parity"]["max_abs_prediction_diff"] <= 1e-9
    process, base = served(project.root / "lgbm-bundle", free_port())
    try:
        records = json.loads(x_test.head(3).to_json(orient="records"))
        values = [p["value"] for p in httpx.post(f"{base}/predict", json={"records": records}).json()["predictions"]]
        assert values == pytest.approx(model.predict(x_test.head(3)).tolist(), abs=1e-9)
    finally:
        stop(process)
