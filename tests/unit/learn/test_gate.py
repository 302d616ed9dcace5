"""The gate's decision rules, on their own (no model needed): floor, regression, secondary, direction."""

import math

import pytest

from mlci.core import config as config_module
from mlci.learn.gate import decide

BASE = {
    "project": "p",
    "data": {"path": "d.csv", "target": "y", "features": {"a": "numeric"}},
    "model": {"estimator": "sklearn.linear_model.LogisticRegression"},
}


def config(**gate):
    metrics = gate.pop("metrics", {"primary": "roc_auc"})
    return config_module.parse({**BASE, "gate": gate, "metrics": metrics})


def scores(**values):
    base = dict.fromkeys(("accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc", "log_loss"), 0.5)
    return {**base, **values}


def test_floor_alone_decides_without_production():
    checks = decide(config(threshold=0.9), scores(roc_auc=0.91), None)
    assert [(c.name, c.passed) for c in checks] == [("roc_auc floor", True)]
    assert not decide(config(threshold=0.9), scores(roc_auc=0.89), None)[0].passed


def test_regression_tolerance_against_production():
    gate = config(threshold=0.5, max_regression=0.02)
    assert decide(gate, scores(roc_auc=0.90), scores(roc_auc=0.915))[1].passed
    failed = decide(gate, scores(roc_auc=0.89), scores(roc_auc=0.915))[1]
    assert not failed.passed and failed.required.startswith(">= 0.8950")


def test_secondary_thresholds_min_and_max():
    gate = config(threshold=0.5, secondary={"accuracy": {"min": 0.8}, "log_loss": {"max": 0.3}})
    checks = decide(gate, scores(roc_auc=0.9, accuracy=0.85, log_loss=0.4), None)
    assert [(c.name, c.passed) for c in checks] == [
        ("roc_auc floor", True),
        ("accuracy min", True),
        ("log_loss max", False),
    ]


def test_metric_to_minimise():
    gate = config(threshold=0.3, max_regression=0.05, metrics={"primary": "log_loss"})
    checks = decide(gate, scores(log_loss=0.25), scores(log_loss=0.22))
    assert [(c.name, c.passed) for c in checks] == [("log_loss ceiling", True), ("log_loss vs production", True)]
    assert not decide(gate, scores(log_loss=0.28), scores(log_loss=0.22))[1].passed


def test_nan_never_passes():
    assert not decide(config(threshold=0.5), scores(roc_auc=math.nan), None)[0].passed


@pytest.fixture
def changed_schema(project):
    """v1 in production without `worst_area`; v2 trained after adding it and dropping `mean_area`."""
    features = project.config["data"]["features"]
    raw = project.config
    del raw["data"]["features"]["worst_area"]
    project.write_config(raw)
    project.commit("v1 schema")
    assert project.mlci("train").exit_code == 0
    assert project.mlci("promote", "1", "--to", "production").exit_code == 0
    raw = project.config
    raw["data"]["features"] = {k: v for k, v in features.items() if k != "mean_area"}
    project.write_config(raw)
    project.commit("v2 schema")
    assert project.mlci("train").exit_code == 0
    return project


def test_gate_refuses_to_compare_models_trained_on_other_features(changed_schema):
    project = changed_schema
    gated = project.mlci("gate")
    assert gated.exit_code == 2, gated.stdout + gated.stderr
    assert "Traceback" not in gated.stderr
    assert "production v1" in gated.stderr
    assert "added: worst_area" in gated.stderr and "removed: mean_area" in gated.stderr
    assert "mlci promote 2 --to production" in gated.stderr
    tags = project.client().get_model_version("breast-cancer-classifier", "2").tags
    assert "mlci.gate.result" not in tags, "a gate that could not compare records no verdict"


def test_gate_of_an_old_version_against_the_current_config_says_so(changed_schema):
    project = changed_schema
    gated = project.mlci("gate", "--version", "1")
    assert gated.exit_code == 2, gated.stdout + gated.stderr
    assert (
        "candidate v1" in gated.stderr and "added: worst_area" in gated.stderr and "removed: mean_area" in gated.stderr
    )


def test_schema_changes_name_added_removed_and_retyped_features():
    from mlci.core import config as config_module
    from mlci.learn.gate import schema_changes

    config = config_module.parse(
        {
            "project": "p",
            "data": {"path": "d.csv", "target": "y", "features": {"a": "numeric", "b": "categorical", "c": "numeric"}},
            "model": {"estimator": "sklearn.linear_model.LogisticRegression"},
            "gate": {"threshold": 0.5},
        }
    )
    trained = {"a": "numeric", "b": "numeric", "d": "categorical"}
    assert schema_changes(config, trained) == ["added: c", "removed: d", "retyped: b (numeric -> categorical)"]
    assert schema_changes(config, {"a": "numeric", "b": "categorical", "c": "numeric"}) == []
