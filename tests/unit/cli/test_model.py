"""The "done when" of the lifecycle: train → gate → status → promote → train again → gate against production."""

import json

import numpy as np
import pytest
from mlflow.entities import RunStatus


def test_demo_flow_train_gate_status_promote_retrain(project):
    commit = project.git("rev-parse", "HEAD")

    trained = project.mlci("train")
    assert trained.exit_code == 0, trained.stderr
    assert "RESULT OK: registered breast-cancer-classifier version 1 as @candidate" in trained.stdout
    assert "Traceback" not in trained.stderr and "Successfully registered" not in trained.stderr
    report = project.report("train")
    assert report["version"] == "1" and report["commit"] == commit
    assert report["provenance"]["author"] == "Ada Lovelace <ada@example.com>"
    assert report["provenance"]["dirty"] is False and report["provenance"]["branch"] == "main"

    gated = project.mlci("gate")
    assert gated.exit_code == 0, gated.stdout + gated.stderr
    gate = project.report("gate")
    assert gate["passed"] is True and gate["production"] is None
    assert "candidate v1" in gate["table"] and "roc_auc floor" in gate["table"]

    status = project.mlci("status", "--json")
    assert status.exit_code == 0
    listing = json.loads(status.stdout)
    (v1,) = listing["versions"]
    assert v1["version"] == "1" and v1["aliases"] == ["candidate"]
    assert v1["commit"] == commit
    assert v1["data_sha256"] == report["data"]["sha256"]
    assert v1["gate"] == "passed"

    promoted = project.mlci("promote", "1", "--to", "production")
    assert promoted.exit_code == 0
    assert "breast-cancer-classifier@production -> version 1" in promoted.stdout

    project.edit(**{"model.params.max_depth": 6})
    second_commit = project.commit("shallower trees")
    assert project.mlci("train").exit_code == 0
    assert project.report("train")["version"] == "2"
    gated = project.mlci("gate")
    gate = project.report("gate")
    assert gate["candidate"]["version"] == "2" and gate["production"]["version"] == "1"
    assert "roc_auc vs production" in gated.stdout
    assert gated.exit_code == (0 if gate["passed"] else 1)

    listing = json.loads(project.mlci("status", "--json").stdout)
    assert [v["version"] for v in listing["versions"]] == ["2", "1"]
    assert listing["aliases"] == {"candidate": "2", "production": "1"}
    assert listing["versions"][0]["commit"] == second_commit
    table = project.mlci("status")
    assert "@candidate" in table.stdout and "@production" in table.stdout


def test_run_carries_params_metrics_dataset_plots_and_tags(project, monkeypatch):
    monkeypatch.setenv("BUILD_USER_ID", "jenkins-alice")
    monkeypatch.setenv("JOB_NAME", "ml/main")
    monkeypatch.setenv("BUILD_NUMBER", "42")
    monkeypatch.setenv("BUILD_URL", "https://jenkins.example/job/ml/42/")
    assert project.mlci("train").exit_code == 0
    client = project.client()
    run = client.get_run(project.report("train")["run_id"])
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["mlci.author"] == "jenkins-alice"
    assert tags["jenkins.build_number"] == "42" and tags["jenkins.build_url"].endswith("/42/")
    assert tags["mlci.commit"] == project.git("rev-parse", "HEAD")
    assert tags["mlci.dirty"] == "false" and len(tags["mlci.lock_sha256"]) == 64
    for key in ("mlci.python_version", "mlci.sklearn_version", "mlci.version", "mlci.data.sha256"):
        assert tags[key]
    assert run.data.params["model.n_estimators"] == "20"
    assert {"test_roc_auc", "cv_roc_auc_mean", "cv_roc_auc_std"} <= set(run.data.metrics)
    assert run.inputs.dataset_inputs[0].dataset.name == "breast_cancer.csv"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {"plots/confusion_matrix.png", "plots/roc_curve.png"}
    version = client.get_model_version("breast-cancer-classifier", "1")
    assert version.tags["mlci.candidate.by"] == "jenkins-alice"
    assert version.tags["jenkins.build_url"].endswith("/42/")


def test_dirty_tree_is_recorded(project):
    (project.root / "data" / "breast_cancer.csv").write_text(
        (project.root / "data" / "breast_cancer.csv").read_text() + "\n"
    )
    assert project.mlci("train").exit_code == 0
    assert project.report("train")["provenance"]["dirty"] is True


def test_training_is_deterministic(project):
    import mlflow

    assert project.mlci("train").exit_code == 0
    assert project.mlci("train").exit_code == 0
    mlflow.set_tracking_uri(f"sqlite:///{project.root / '.mlci' / 'mlflow.db'}")
    from mlci.track.model_loading import load_version  # mlci's loader: mlflow's own refuses after any mlci command

    m1 = load_version("breast-cancer-classifier", "1")
    m2 = load_version("breast-cancer-classifier", "2")
    import pandas as pd

    from mlci.core import config as config_module
    from mlci.learn import model

    config = config_module.load(project.config_file)
    x = model.model_frame(pd.read_csv(project.root / "data" / "breast_cancer.csv"), config)
    assert np.array_equal(m1.predict(x), m2.predict(x))
    assert np.array_equal(m1.predict_proba(x), m2.predict_proba(x))
    client = project.client()
    metrics = [
        client.get_run(client.get_model_version("breast-cancer-classifier", v).run_id).data.metrics for v in ("1", "2")
    ]
    assert metrics[0] == metrics[1]


def test_categorical_and_missing_values_through_config_alone(mixed_project):
    trained = mixed_project.mlci("train")
    assert trained.exit_code == 0, trained.stderr
    assert mixed_project.report("train")["model_name"] == "loans"
    gated = mixed_project.mlci("gate")
    assert gated.exit_code == 0, gated.stdout
    assert mixed_project.report("gate")["candidate"]["metrics"]["roc_auc"] > 0.7


def test_gate_fails_below_the_floor_and_says_why(project):
    project.edit(**{"gate.threshold": 0.9999})
    assert project.mlci("train").exit_code == 0
    gated = project.mlci("gate")
    assert gated.exit_code == 1
    gate = project.report("gate")
    assert gate["passed"] is False
    assert gate["reasons"][0].startswith("roc_auc floor:")
    assert "RESULT FAILED" in gated.stdout and "FAIL" in gate["table"]
    version = project.client().get_model_version("breast-cancer-classifier", "1")
    assert version.tags["mlci.gate.result"] == "failed"


def test_gate_fails_on_regression_against_production(project):
    assert project.mlci("train").exit_code == 0
    assert project.mlci("promote", "1", "--to", "production").exit_code == 0
    # A much weaker candidate: one shallow tree.
    project.edit(**{"model.params": {"n_estimators": 1, "max_depth": 1}, "gate.threshold": 0.5, "gate.secondary": {}})
    project.commit("weak model")
    assert project.mlci("train").exit_code == 0
    gated = project.mlci("gate")
    assert gated.exit_code == 1
    gate = project.report("gate")
    assert [c["name"] for c in gate["checks"] if not c["passed"]] == ["roc_auc vs production"]
    assert gate["production"]["version"] == "1"


def test_gate_a_named_version_and_unknown_versions(project):
    assert project.mlci("gate").exit_code == 2  # nothing registered yet
    assert project.mlci("train").exit_code == 0
    assert project.mlci("gate", "--version", "1").exit_code == 0
    missing = project.mlci("gate", "--version", "7")
    assert missing.exit_code == 2 and "has no version 7" in missing.stderr


def test_promote_rejects_bad_input(project):
    assert project.mlci("train").exit_code == 0
    for args, fragment in (
        (["one", "--to", "production"], "must be a model version number"),
        (["1", "--to", "Prod!"], "is not valid"),
        (["9", "--to", "production"], "has no version 9"),
    ):
        result = project.mlci("promote", *args)
        assert result.exit_code == 2 and fragment in result.stderr, result.stderr
    assert "production" not in project.client().get_registered_model("breast-cancer-classifier").aliases


def test_status_before_any_training(project):
    result = project.mlci("status")
    assert result.exit_code == 0
    assert "0 version(s)" in result.stdout


def test_bad_estimator_leaves_no_run_and_no_version(project):
    project.edit(**{"model.estimator": "sklearn.ensemble.NoSuchForest"})
    result = project.mlci("train")
    assert result.exit_code == 2 and "not a scikit-learn estimator" in result.stderr
    project.edit(**{"model.estimator": "sklearn.ensemble.RandomForestClassifier", "model.params": {"n_trees": 5}})
    result = project.mlci("train")
    assert result.exit_code == 2 and "has no parameter(s) n_trees" in result.stderr
    project.edit(**{"model.params": {"max_depth": -3}})
    result = project.mlci("train")
    assert result.exit_code == 2 and "rejects its parameters" in result.stderr
    project.edit(**{"model.estimator": "sklearn.linear_model.LinearRegression", "model.params": {}})
    result = project.mlci("train")
    assert result.exit_code == 2 and "not a classifier" in result.stderr
    project.edit(**{"model.estimator": "sklearn.nosuchpackage.Model"})
    result = project.mlci("train")
    assert result.exit_code == 2 and "cannot import module" in result.stderr
    assert not (project.root / ".mlci").exists()


def test_failure_inside_the_run_marks_it_failed_and_registers_nothing(project, monkeypatch):
    from mlci.learn import train as train_module

    def broken(*args, **kwargs):
        raise RuntimeError("artifact store is full")

    monkeypatch.setattr(train_module, "_log_model", broken)
    with pytest.raises(RuntimeError):
        project.mlci("train")
    client = project.client()
    runs = client.search_runs([client.get_experiment_by_name("breast-cancer").experiment_id])
    assert [r.info.status for r in runs] == [RunStatus.to_string(RunStatus.FAILED)]
    assert client.search_model_versions("name = 'breast-cancer-classifier'") == []


def test_failure_after_registration_removes_the_version(project, monkeypatch):
    from mlci.track import registry

    def broken(*args, **kwargs):
        raise RuntimeError("alias service down")

    monkeypatch.setattr(registry, "set_alias", broken)
    with pytest.raises(RuntimeError):
        project.mlci("train")
    client = project.client()
    assert client.search_model_versions("name = 'breast-cancer-classifier'") == []
    runs = client.search_runs([client.get_experiment_by_name("breast-cancer").experiment_id])
    assert runs[0].info.status == "FAILED"


def test_positive_label_and_multiclass_metrics():
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from mlci.core import config as config_module
    from mlci.core.errors import DataError
    from mlci.learn import evaluate

    raw = {
        "project": "p",
        "data": {"path": "d.csv", "target": "y", "features": {"a": "numeric"}},
        "model": {"estimator": "sklearn.linear_model.LogisticRegression"},
        "gate": {"threshold": 0.5},
        "metrics": {"positive_label": "b"},
    }
    config = config_module.parse(raw)
    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]})
    y = pd.Series(["a", "a", "b", "b", "c", "c"])
    model = LogisticRegression().fit(x, y)
    scores = evaluate.score(model, x, y, config)
    assert 0 <= scores["roc_auc"] <= 1 and scores["accuracy"] > 0.5
    binary = LogisticRegression().fit(x, y.replace("c", "b"))
    assert evaluate.positive_label(binary.classes_, config) == "b"
    wrong = config_module.parse({**raw, "metrics": {"positive_label": "z"}})
    with pytest.raises(DataError, match="positive_label 'z'"):
        evaluate.positive_label(binary.classes_, wrong)
