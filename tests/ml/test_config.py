"""mlci.yaml is validated strictly: unknown keys and wrong types are errors that name the key."""

import pytest
import yaml

from ml import config as config_module
from ml.errors import ConfigError


def test_demo_config_loads_with_paths_relative_to_the_file(project):
    config = config_module.load(project.config_file)
    assert config.model_name == "breast-cancer-classifier"
    assert config.data_path == project.root / "data" / "breast_cancer.csv"
    assert config.tracking_uri == f"sqlite:///{project.root / '.mlci' / 'mlflow.db'}"
    assert set(config.environments) == {"staging", "production"}


def test_typo_in_a_key_names_the_key(project):
    raw = project.config
    raw["model"]["paramz"] = raw["model"].pop("params")
    project.write_config(raw)
    result = project.mlci("train")
    assert result.exit_code == 2
    assert "model.paramz: unknown key" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_wrong_type_names_the_key_and_the_value(project):
    project.edit(**{"split.test_size": "a quarter"})
    with pytest.raises(ConfigError) as caught:
        config_module.load(project.config_file)
    assert any(line.startswith("split.test_size:") and "'a quarter'" in line for line in caught.value.details)


def test_every_problem_is_listed_at_once(project):
    raw = project.config
    raw["gate"] = {"threshold": "high"}
    raw["metrics"] = {"primary": "auc"}
    raw["extra"] = 1
    project.write_config(raw)
    with pytest.raises(ConfigError) as caught:
        config_module.load(project.config_file)
    keys = {line.split(":")[0] for line in caught.value.details}
    assert keys == {"gate.threshold", "metrics.primary", "extra"}


def test_feature_shorthand_and_bounds(project):
    raw = project.config
    raw["data"]["features"] = {"mean_radius": "numeric", "mean_texture": {"type": "numeric", "min": 5, "max": 1}}
    project.write_config(raw)
    with pytest.raises(ConfigError) as caught:
        config_module.load(project.config_file)
    assert any("data.features.mean_texture" in line and "greater than max" in line for line in caught.value.details)


@pytest.mark.parametrize(
    "feature, message",
    [
        ({"type": "categorical", "min": 1}, "numeric features only"),
        ({"type": "numeric", "categories": ["a"]}, "categorical features only"),
        ({"type": "text"}, "data.features.f.type"),
    ],
)
def test_feature_options_must_fit_the_type(feature, message):
    raw = {
        "project": "p",
        "data": {"path": "d.csv", "target": "y", "features": {"f": feature}},
        "model": {"estimator": "sklearn.linear_model.LogisticRegression"},
        "gate": {"threshold": 0.5},
    }
    with pytest.raises(ConfigError) as caught:
        config_module.parse(raw)
    assert message in "\n".join(caught.value.details)


def test_target_listed_as_feature_is_rejected():
    raw = {
        "project": "p",
        "data": {"path": "d.csv", "target": "y", "features": {"y": "numeric"}},
        "model": {"estimator": "sklearn.linear_model.LogisticRegression"},
        "gate": {"threshold": 0.5},
    }
    with pytest.raises(ConfigError, match="invalid"):
        config_module.parse(raw)


def test_invalid_yaml_says_where(project):
    project.config_file.write_text("project: demo\ndata: [unclosed\n")
    result = project.mlci("train")
    assert result.exit_code == 2
    assert "not valid YAML at line" in result.stderr


def test_top_level_must_be_a_mapping(project):
    project.config_file.write_text("- just\n- a list\n")
    result = project.mlci("status")
    assert result.exit_code == 2
    assert "expected a mapping" in result.stderr


def test_missing_config_file_says_what_to_do(tmp_path):
    from click.testing import CliRunner

    from ml.cli import cli

    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "nope.yaml"), "train"])
    assert result.exit_code == 2
    assert "not found" in result.stderr and "--config" in result.stderr


def test_operators_override_tracking_uri_port_and_docker_host(project, monkeypatch):
    config = config_module.load(project.config_file)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    monkeypatch.setenv("MLCI_PRODUCTION_PORT", "9090")
    monkeypatch.setenv("MLCI_PRODUCTION_DOCKER_HOST", "ssh://deploy@prod")
    assert config.tracking_uri == "http://mlflow.example:5000"
    production = config.environment("production")
    assert (production.port, production.docker_host) == (9090, "ssh://deploy@prod")
    assert config.environment("staging").port == 8081


def test_bad_port_override_and_unknown_environment(project, monkeypatch):
    config = config_module.load(project.config_file)
    monkeypatch.setenv("MLCI_STAGING_PORT", "eighty")
    with pytest.raises(ConfigError, match="MLCI_STAGING_PORT"):
        config.environment("staging")
    with pytest.raises(ConfigError, match="known: production, staging"):
        config.environment("qa")


def test_config_from_environment_variable(project, monkeypatch, tmp_path):
    monkeypatch.setenv("MLCI_CONFIG", str(project.config_file))
    monkeypatch.chdir(tmp_path)
    assert config_module.load().project == "breast-cancer"


def test_non_finite_gate_threshold_is_rejected(project):
    project.edit(**{"gate.threshold": float("nan")})
    with pytest.raises(ConfigError, match="finite"):
        config_module.load(project.config_file)


def test_shipped_configs_are_valid():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    for path in (repo / "mlci.yaml", repo / "tests" / "data" / "loans.yaml"):
        assert config_module.parse(yaml.safe_load(path.read_text())).project
