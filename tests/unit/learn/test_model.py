"""model.estimator and model.params are checked before anything runs or reaches MLflow: the module
must be allowed before it is imported, the classifier must give probabilities, and a parameter
combination the estimator rejects at fit time is a config error."""

import pytest

from mlci.core import config as config_module
from mlci.core.errors import ConfigError
from mlci.learn import model

MARKER_MODULE = """\
from pathlib import Path

Path(__file__).with_name("imported.marker").write_text("import-time code ran")
from sklearn.linear_model import LogisticRegression as Model
"""


def assert_refused_before_mlflow(project, result, *fragments):
    assert result.exit_code == 2, result.output + result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    if (project.root / ".mlci").exists():  # nothing may be left: no version, no run left RUNNING
        client = project.client()
        assert client.search_model_versions(f"name = '{project.config['model']['name']}'") == []
        for experiment in client.search_experiments():
            assert all(r.info.status != "RUNNING" for r in client.search_runs([experiment.experiment_id]))


@pytest.fixture
def side_effect_module(tmp_path, monkeypatch):
    folder = tmp_path / "importable"
    folder.mkdir()
    (folder / "mlci_marker_models.py").write_text(MARKER_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    return folder / "imported.marker"


def test_estimator_outside_allowed_modules_is_never_imported(project, side_effect_module):
    project.edit(**{"model.estimator": "mlci_marker_models.Model", "model.params": {}})
    result = project.mlci("train")
    assert_refused_before_mlflow(project, result, "model.estimator", "mlci_marker_models", "model.allowed_modules")
    assert not side_effect_module.exists(), "the module's import-time code ran"


def test_allowed_modules_admits_a_team_package(project, side_effect_module):
    raw = project.config
    raw["model"].update(estimator="mlci_marker_models.Model", params={}, allowed_modules=["mlci_marker_models"])
    project.write_config(raw)
    config = config_module.load(project.config_file)
    assert type(model.build_estimator(config)).__name__ == "LogisticRegression"
    assert side_effect_module.exists()


@pytest.mark.parametrize("module", ["sklearnx.linear_model.LogisticRegression", "os.system"])
def test_prefix_match_is_on_whole_module_names(module):
    with pytest.raises(ConfigError, match=r"model\.allowed_modules"):
        model.load_estimator_class(module, ["sklearn"])


@pytest.mark.parametrize("bad", [["sklearn."], [""], ["../evil"], []])
def test_allowed_modules_entries_are_validated(project, bad):
    project.edit(**{"model.allowed_modules": bad})
    with pytest.raises(ConfigError) as caught:
        config_module.load(project.config_file)
    assert any(line.startswith("model.allowed_modules") for line in caught.value.details), caught.value.details


def test_default_allows_sklearn_only():
    raw = {
        "project": "p",
        "data": {"path": "d.csv", "target": "y", "features": {"a": "numeric"}},
        "model": {"estimator": "sklearn.linear_model.LogisticRegression"},
        "gate": {"threshold": 0.5},
    }
    assert config_module.parse(raw).model.allowed_modules == ["sklearn"]


@pytest.mark.parametrize(
    "estimator, params, hint",
    [
        ("sklearn.svm.SVC", {}, "probability: true"),
        ("sklearn.linear_model.RidgeClassifier", {}, "LogisticRegression"),
    ],
)
def test_classifier_without_probabilities_is_refused_up_front(project, estimator, params, hint):
    project.edit(**{"model.estimator": estimator, "model.params": params})
    result = project.mlci("train")
    assert_refused_before_mlflow(project, result, "has no predict_proba", hint)
    assert not (project.root / ".mlci").exists()


def test_svc_with_probabilities_trains(project):
    project.edit(**{"model.estimator": "sklearn.svm.SVC", "model.params": {"probability": True}})
    config = config_module.load(project.config_file)
    assert hasattr(model.build_estimator(config), "predict_proba")


def test_parameter_combination_rejected_at_fit_time_is_a_config_error(project):
    project.edit(
        **{
            "model.estimator": "sklearn.linear_model.LogisticRegression",
            "model.params": {"penalty": "l1", "solver": "lbfgs"},
        }
    )
    result = project.mlci("train")
    assert_refused_before_mlflow(project, result, "model.params", "Solver lbfgs supports only")
    assert not (project.root / ".mlci").exists()
