"""mlci.deploy.slots: what the dashboard container is given to read MLflow, and the hint for an image
missing on the deploying engine."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlci.core.config import ConfigError, parse
from mlci.deploy.slots import dashboard_settings, dashboard_tracking_uri, missing_image_hint

REPO = Path(__file__).resolve().parents[3]


def config(tmp_path, **production):
    raw = yaml.safe_load((REPO / "mlci.yaml").read_text())
    raw["environments"] = {"production": {"port": 8080, "dashboard_port": 8501, **production}}
    return parse(raw, root=tmp_path)


def test_the_setting_is_passed_with_the_host_gateway_alias(tmp_path):
    cfg = config(tmp_path, dashboard_tracking_uri="http://host.docker.internal:5000")
    env = cfg.environment("production")
    settings = dashboard_settings(cfg, "production", env, "dash:1")
    assert settings.environment["MLFLOW_TRACKING_URI"] == "http://host.docker.internal:5000"
    assert settings.extra_hosts == {"host.docker.internal": "host-gateway"}


@pytest.mark.parametrize(
    "uri", ["sqlite:///tmp/mlflow.db", "file:///tmp/mlruns", "/tmp/mlruns", "http://", "http://a b"]
)
def test_a_store_that_is_not_an_http_server_is_refused(tmp_path, uri):
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, dashboard_tracking_uri=uri)
    assert "dashboard_tracking_uri" in str(caught.value.message) + " ".join(caught.value.details or [])


def test_the_environment_variable_overrides_and_is_checked(tmp_path, monkeypatch):
    cfg = config(tmp_path)
    monkeypatch.setenv("MLCI_PRODUCTION_DASHBOARD_TRACKING_URI", "https://mlflow.internal")
    assert cfg.environment("production").dashboard_tracking_uri == "https://mlflow.internal"
    monkeypatch.setenv("MLCI_PRODUCTION_DASHBOARD_TRACKING_URI", "sqlite:///x.db")
    with pytest.raises(ConfigError, match="MLCI_PRODUCTION_DASHBOARD_TRACKING_URI must be an http"):
        cfg.environment("production")


def test_the_operators_server_is_passed_but_never_a_sqlite_store(tmp_path, monkeypatch):
    cfg = config(tmp_path)
    env = cfg.environment("production")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.team:5000")
    assert dashboard_tracking_uri(cfg, env) == "http://mlflow.team:5000"
    assert dashboard_settings(cfg, "production", env, "dash:1").extra_hosts == {}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    assert dashboard_tracking_uri(cfg, env) is None
    settings = dashboard_settings(cfg, "production", env, "d")
    assert "MLFLOW_TRACKING_URI" not in settings.environment and settings.extra_hosts == {}


def test_outside_jenkins_the_hint_is_unchanged(monkeypatch):
    monkeypatch.delenv("JENKINS_URL", raising=False)
    assert missing_image_hint("run mlci build first") == "run mlci build first"


def test_under_jenkins_the_hint_names_the_agent_and_the_fix(monkeypatch):
    monkeypatch.setenv("JENKINS_URL", "https://jenkins.example.com/")
    monkeypatch.setenv("NODE_NAME", "agent-7")
    hint = missing_image_hint("run mlci build first")
    assert hint.startswith("run mlci build first. Under Jenkins")
    assert "(agent-7 now)" in hint and "docker_host" in hint and "images.registry" in hint
