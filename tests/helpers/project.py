"""Throw-away projects (config, data, git history, embedded MLflow store) driven through the real CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml
from click.testing import CliRunner

from mlci.cli.main import cli
from mlci.learn import scaffold

REPO = Path(__file__).resolve().parents[2]


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
    # The .gitignore `mlci init` writes: the store, reports and image build folder (its wheelhouse holds
    # hundreds of MB) stay out of the history, as in a team's repository.
    shutil.copy(scaffold.TEMPLATES / "gitignore.j2", root / ".gitignore")
    project.git("init", "-q", "-b", "main")
    project.git("config", "user.name", "Ada Lovelace")
    project.git("config", "user.email", "ada@example.com")
    project.commit("initial")
    return project
