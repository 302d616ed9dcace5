"""Which MLflow address the dashboard container gets (issue 15 item 2): an operator's http(s) server
as-is, never a file or sqlite store; `environments.<env>.dashboard_tracking_uri` or its
MLCI_<ENV>_DASHBOARD_TRACKING_URI override first. The container itself: tests/docker/test_dashboard_models_demo.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ml.config import ConfigError, parse
from ml.deploy.slots import dashboard_settings, dashboard_tracking_uri

REPO = Path(__file__).resolve().parents[2]


def config(tmp_path, **production):
    raw = yaml.safe_load((REPO / "mlci.yaml").read_text())
    raw["environments"] = {"production": {"port": 8080, "dashboard_port": 8501, **production}}
    return parse(raw, root=tmp_path)


def test_the_setting_is_passed_with_the_host_gateway_alias(tmp_path):
    cfg = config(tmp_path, dashboard_tracking_uri="http://host.docker.internal:5000")
    env = cfg.environment("production")
    args = dashboard_settings(cfg, "production", env, "dash:1")
    assert "MLFLOW_TRACKING_URI=http://host.docker.internal:5000" in args
    assert args[args.index("--add-host") + 1] == "host.docker.internal:host-gateway"


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
    assert "--add-host" not in dashboard_settings(cfg, "production", env, "dash:1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    assert dashboard_tracking_uri(cfg, env) is None
    assert not any(arg.startswith("MLFLOW_TRACKING_URI") for arg in dashboard_settings(cfg, "production", env, "d"))
