"""No workspace-local store under Jenkins (issue 11, item 5): a Jenkins workspace is private to one
job and wiped, so an MLflow store inside it would be seen by no other build. mlci refuses it (exit 2)
with the team-stack instructions unless tracking.allow_local_store says the user means it."""

import pytest

from ml import config as config_module
from ml import tracking

JENKINS = "https://jenkins.example/"


@pytest.mark.parametrize(
    "command",
    [["train"], ["gate", "--version", "1"], ["status"], ["promote", "1", "--to", "production"]],
)
def test_jenkins_with_the_embedded_store_is_refused_with_the_team_stack_instructions(project, monkeypatch, command):
    monkeypatch.setenv("JENKINS_URL", JENKINS)
    result = project.mlci(*command)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "store inside its workspace" in result.stderr
    assert "The team stack" in result.stderr and "MLFLOW_TRACKING_URI" in result.stderr
    assert "tracking.allow_local_store: true" in result.stderr and "Traceback" not in result.stderr
    assert not (project.root / ".mlci").exists(), "nothing may be created in the refused store"


def test_allow_local_store_says_the_user_means_it(project, monkeypatch):
    monkeypatch.setenv("JENKINS_URL", JENKINS)
    project.edit(**{"tracking.allow_local_store": True})
    trained = project.mlci("train")
    assert trained.exit_code == 0, trained.stderr
    assert project.mlci("status").exit_code == 0


def test_outside_jenkins_the_embedded_store_is_the_default(project):
    assert project.mlci("train").exit_code == 0


def test_which_stores_count_as_inside_the_workspace(project, monkeypatch, tmp_path):
    config = config_module.load(project.config_file)
    assert tracking.local_store(config) == (project.root / ".mlci" / "mlflow.db").resolve()
    for uri, inside in (
        (f"sqlite:///{project.root / 'other.db'}", True),
        (f"file://{project.root / 'mlruns'}", True),
        (f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}", False),  # a file the team put elsewhere
        ("http://mlflow.example:5000", False),
        ("postgresql://mlflow@db.example/mlflow", False),
    ):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        assert (tracking.local_store(config) is not None) is inside, uri
    monkeypatch.setenv("JENKINS_URL", JENKINS)
    tracking.require_shared_store(config)  # the last URI, a database server: accepted
