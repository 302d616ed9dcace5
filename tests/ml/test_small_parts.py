"""Small parts with their own edge cases: URI redaction, report encoding, the Docker CLI wrapper,
the wheelhouse with a mirror, status when the Docker engine is away."""

import json
from pathlib import Path

import numpy as np
import pytest

from ml import config as config_module
from ml import images, reports
from ml.docker import Docker
from ml.errors import Unreachable
from ml.registry import redact


def test_tracking_uri_password_is_never_shown():
    assert redact("https://alice:s3cret@mlflow.example:5000/path") == "https://alice:***@mlflow.example:5000/path"
    assert redact("https://alice:s3cret@mlflow.example/x") == "https://alice:***@mlflow.example/x"
    assert redact("sqlite:///tmp/mlflow.db") == "sqlite:///tmp/mlflow.db"


def test_reports_encode_paths_and_numpy_scalars_and_refuse_the_rest(project):
    config = config_module.load(project.config_file)
    path = reports.write(config, "example", {"where": Path("a/b"), "score": np.float64(0.5), "n": np.int64(3)})
    assert json.loads(path.read_text()) == {"where": "a/b", "score": 0.5, "n": 3}
    assert reports.read(config, "example")["n"] == 3 and reports.read(config, "missing") is None
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        reports.write(config, "bad", {"x": object()})


def test_docker_cli_missing_is_unreachable(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(Unreachable, match="docker command is not installed"):
        Docker().run("version")
    with pytest.raises(Unreachable, match="docker command is not installed"):
        Docker().stream(["version"], print)


def test_docker_engine_away_names_the_host_and_how_to_start_one():
    with pytest.raises(Unreachable) as caught:
        Docker("unix:///nonexistent/docker.sock").check()
    assert "unix:///nonexistent/docker.sock" in caught.value.message
    assert "dockerd" in caught.value.hint


def test_wheelhouse_is_skipped_with_a_corporate_mirror(project, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "https://pypi.corp.example/simple")
    config = config_module.load(project.config_file)
    assert images.ensure_wheelhouse(config, ["requirements/api.txt"]) is None
    assert (project.root / "build" / "wheelhouse" / "api").is_dir()


def test_status_notes_an_unreachable_engine_instead_of_failing(project, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = project.mlci("status")
    assert result.exit_code == 0
    assert "environment production: no Docker engine answers" in result.stdout
    scoped = project.mlci("status", "--env", "production")
    assert scoped.exit_code == 3
