"""mlci.yaml is validated strictly: unknown keys and wrong types are errors that name the key."""

from pathlib import Path

import pytest
import yaml

from mlci.core import config as config_module
from mlci.core.errors import ConfigError


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

    from mlci.cli.main import cli

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

    repo = Path(__file__).resolve().parents[3]
    for path in (repo / "mlci.yaml", repo / "tests" / "data" / "loans.yaml"):
        assert config_module.parse(yaml.safe_load(path.read_text())).project


BOMB = """\
x-lol:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def _limit_memory() -> None:
    import resource

    # 1 GiB of address space: mlci starts in far less; the expanded bomb needs many gigabytes.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def _mlci_subprocess(config_file, *args, timeout=60):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", "from mlci.cli.main import main; main()", "--config", str(config_file), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_limit_memory,
        cwd=config_file.parent,
    )


@pytest.mark.timeout(120)
def test_yaml_alias_bomb_is_refused_quickly_and_in_bounded_memory(project):
    # A 1.3 KB "billion laughs": the aliased list is expanded when its value is validated or printed.
    text = project.config_file.read_text().replace("  test_size: 0.25\n", "  test_size: *i\n")
    bomb = project.root / "bomb.yaml"
    bomb.write_text(BOMB + text)
    assert bomb.stat().st_size < 4096
    result = _mlci_subprocess(bomb, "status")
    assert result.returncode == 2, result.stderr[-2000:]
    assert str(bomb) in result.stderr and "expand to more than 20,000 values" in result.stderr
    assert "Traceback" not in result.stderr


def test_yaml_anchors_that_stay_small_are_plain_yaml(project):
    # What PyYAML itself writes when one dict serves two environments (yaml.dump of a shared object).
    checks = {"ready_timeout": 30, "verify_seconds": 3}
    raw = {
        "project": "p",
        "data": {"path": "d.csv", "target": "y", "features": {"a": "numeric"}},
        "model": {"estimator": "sklearn.linear_model.LogisticRegression"},
        "gate": {"threshold": 0.5},
        "environments": {"staging": {"port": 8081, "checks": checks}, "production": {"port": 8080, "checks": checks}},
    }
    text = yaml.safe_dump(raw)
    assert "&id001" in text and "*id001" in text
    project.config_file.write_text(text)
    config = config_module.load(project.config_file)
    assert config.environments["production"].checks.ready_timeout == 30


def test_config_file_size_is_bounded(project):
    project.config_file.write_text(project.config_file.read_text() + "#" * (300 * 1024) + "\n")
    result = project.mlci("status")
    assert result.exit_code == 2
    assert str(project.config_file) in result.stderr and "KiB" in result.stderr


def test_duplicate_keys_are_refused_with_both_lines(project):
    project.config_file.write_text(
        "project: p\n"
        "data: {path: d.csv, target: y, features: {a: numeric}}\n"
        "model:\n"
        "  estimator: sklearn.linear_model.LogisticRegression\n"
        "gate: {threshold: 0.5}\n"
        "model:\n"
        "  estimator: sklearn.ensemble.RandomForestClassifier\n"
    )
    result = project.mlci("status")
    assert result.exit_code == 2, result.output
    assert "duplicate key 'model'" in result.stderr and "line 3" in result.stderr and "line 6" in result.stderr
    assert "Traceback" not in result.stderr


def test_duplicate_nested_keys_are_refused(project):
    project.config_file.write_text(
        "project: p\n"
        "data: {path: d.csv, target: y, features: {a: numeric, b: numeric, a: categorical}}\n"
        "model: {estimator: sklearn.linear_model.LogisticRegression}\n"
        "gate: {threshold: 0.5}\n"
    )
    with pytest.raises(ConfigError, match=r"duplicate key 'a' at line 2 and line 2"):
        config_module.load(project.config_file)


@pytest.mark.parametrize("key", ["root", "source"])
def test_internal_fields_cannot_be_set_from_the_file(project, key):
    raw = project.config
    raw[key] = "/etc"
    project.write_config(raw)
    with pytest.raises(ConfigError) as caught:
        config_module.load(project.config_file)
    assert f"{key}: unknown key (check its spelling)" in caught.value.details


def test_config_remembers_the_file_it_was_loaded_from(project):
    other = project.root / "other.yaml"
    other.write_text(project.config_file.read_text())
    assert config_module.load(other).source == other.resolve()
    assert "source" not in config_module.load(other).model_dump()


def test_run_logs_the_config_file_named_by_dash_dash_config(project):
    other = project.root / "other.yaml"
    other.write_text("# the variant under test\n" + project.config_file.read_text())
    project.commit("variant config")
    from click.testing import CliRunner

    from mlci.cli.main import cli

    result = CliRunner().invoke(cli, ["--config", str(other), "train"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    client = project.client()
    run_id = project.report("train")["run_id"]
    assert [a.path for a in client.list_artifacts(run_id, "config")] == ["config/other.yaml"]
    logged = client.download_artifacts(run_id, "config/other.yaml", str(project.root / "downloaded"))
    assert Path(logged).read_text() == other.read_text()


def test_deeply_nested_yaml_is_refused_without_a_traceback(project):
    project.config_file.write_text("project: " + "[" * 5000 + "]" * 5000 + "\n")
    result = project.mlci("status")
    assert result.exit_code == 2
    assert "nested deeper than 64 levels" in result.stderr


def test_an_environment_never_publishes_on_every_interface(project):
    for address in ("0.0.0.0", "::"):
        project.edit(**{"environments.production.address": address})
        with pytest.raises(ConfigError) as caught:
            config_module.load(project.config_file)
        assert any("environments.production.address" in d and "every interface" in d for d in caught.value.details)
    project.edit(**{"environments.production.address": "prod-1.example.com"})
    with pytest.raises(ConfigError) as caught:
        config_module.load(project.config_file)
    assert any("must be an IP address" in d for d in caught.value.details)


def test_environments_on_other_hosts_may_share_ports_one_host_may_not(project):
    port = project.config["environments"]["production"]["port"]
    project.edit(**{"environments.staging.port": port})
    with pytest.raises(ConfigError) as caught:
        config_module.load(project.config_file)
    assert any("already used" in d for d in caught.value.details)
    project.edit(
        **{"environments.staging.docker_host": "ssh://deploy@10.0.2.11", "environments.staging.address": "10.0.2.11"}
    )
    assert config_module.load(project.config_file).environments["staging"].port == port


def test_the_registry_is_host_and_port_and_plain_http_only_when_said(project):
    config = config_module.load(project.config_file)
    assert config.images.registry is None and config.images.insecure is False
    project.edit(**{"images.registry": "registry.example.com:5000/team"})
    assert config_module.load(project.config_file).images.registry == "registry.example.com:5000/team"
    project.edit(**{"images.registry": "https://registry.example.com"})
    with pytest.raises(ConfigError) as caught:
        config_module.load(project.config_file)
    assert any(d.startswith("images.registry") for d in caught.value.details)
    project.edit(**{"images.registry": "registry.example.com", "images.insecure": "yes please"})
    with pytest.raises(ConfigError) as caught:
        config_module.load(project.config_file)
    assert any(d.startswith("images.insecure") for d in caught.value.details)
