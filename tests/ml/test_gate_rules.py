"""The gate's decision rules, on their own (no model needed): floor, regression, secondary, direction."""

import math

from ml import config as config_module
from ml.gate import decide

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
