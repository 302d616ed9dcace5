"""Shared by every Python suite: a clean, offline environment for MLflow and the CLI, and throw-away
projects (config, data, git history, embedded MLflow store) driven through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ml.cli import cli

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

# Variables a developer's shell or a Jenkins agent may set that would leak into the tests.
LEAKY = (
    "MLFLOW_TRACKING_URI",
    "MLCI_CONFIG",
    "BUILD_USER_ID",
    "BUILD_URL",
    "BUILD_NUMBER",
    "JOB_NAME",
    "BRANCH_NAME",
    "GIT_BRANCH",
    "CHANGE_ID",
    "CHANGE_BRANCH",
    "JENKINS_URL",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)


def reserve_ports(count: int = 1) -> list[int]:
    """Free loopback ports for servers a test starts (all bound at once, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture(scope="session")
def free_ports():
    """free_ports(n): n free loopback ports."""
    return reserve_ports


@pytest.fixture(scope="session")
def free_port():
    """free_port(): one free loopback port."""
    return lambda: reserve_ports(1)[0]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in LEAKY:
        monkeypatch.delenv(name, raising=False)
    before = set(os.environ)
    yield
    # In-process commands export variables (mlflow.set_tracking_uri sets MLFLOW_TRACKING_URI): what a
    # test added must not send the next test's training to this test's store.
    for name in set(os.environ) - before:
        del os.environ[name]


REPO = Path(__file__).resolve().parents[1]


class Project:
    """A project folder with its own git history and embedded MLflow store, driven through the CLI."""

    def __init__(self, root: Path):
        self.root = root
        self.config_file = root / "mlci.yaml"

    @property
    def config(self) -> dict:
        return yaml.safe_load(self.config_file.read_text())

    def write_config(self, config: dict) -> None:
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))

    def edit(self, **changes) -> None:
        """Set dotted keys, e.g. edit(**{"model.params.n_estimators": 10})."""
        config = self.config
        for dotted, value in changes.items():
            node = config
            *parents, last = dotted.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        self.write_config(config)

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True, text=True).stdout.strip()

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def mlci(self, *args: str):
        result = CliRunner().invoke(cli, ["--config", str(self.config_file), *args], catch_exceptions=False)
        return result

    def report(self, name: str) -> dict:
        return json.loads((self.root / "reports" / f"{name}.json").read_text())

    def client(self):
        from mlflow import MlflowClient

        uri = f"sqlite:///{self.root / '.mlci' / 'mlflow.db'}"
        return MlflowClient(tracking_uri=uri, registry_uri=uri)


def make_project(tmp_path: Path, config_source: Path, data_files: list[Path], fast: bool = True) -> Project:
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    for file in data_files:
        shutil.copy(file, root / "data" / file.name)
    config = yaml.safe_load(config_source.read_text())
    config["data"]["path"] = f"data/{Path(config['data']['path']).name}"
    if fast:  # small forests and fewer folds: the tests are about the line, not the model
        config["model"]["params"]["n_estimators"] = 20
        config.setdefault("split", {})["cv_folds"] = 3
    project = Project(root)
    project.write_config(config)
    (root / "requirements").mkdir()
    shutil.copy(REPO / "requirements" / "dev.txt", root / "requirements" / "dev.txt")
    project.git("init", "-q", "-b", "main")
    project.git("config", "user.name", "Ada Lovelace")
    project.git("config", "user.email", "ada@example.com")
    project.commit("initial")
    return project


@pytest.fixture(scope="session")
def project_factory():
    """make_project, for fixtures of wider scope than a test."""
    return make_project


@pytest.fixture
def project(tmp_path) -> Project:
    """The demo project (breast-cancer RandomForest), in a temp folder with its own store."""
    return make_project(tmp_path, REPO / "mlci.yaml", [REPO / "data" / "breast_cancer.csv"])


@pytest.fixture
def mixed_project(tmp_path) -> Project:
    """A dataset with categorical columns and missing values, configured through mlci.yaml alone."""
    return make_project(tmp_path, REPO / "tests" / "data" / "loans.yaml", [REPO / "tests" / "data" / "loans.csv"])
