"""The gate scores candidate and production on the same rows with the same features; when mlci.yaml's
features changed since production was trained, it says so instead of failing inside scikit-learn."""

import pytest


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
    from ml import config as config_module
    from ml.gate import schema_changes

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
