"""`mlci status` reads typed results (issue 13): the collectors return dataclasses, and `--json` keeps
the shape Jenkins steps and scripts read."""

import json
import uuid

from ml import config as config_module
from ml import status
from ml.environment_status import EnvironmentStatus, EnvironmentUnavailable

VERSION_KEYS = {
    "version",
    "aliases",
    "run_id",
    "commit",
    "branch",
    "data_sha256",
    "data_path",
    "author",
    "created_at",
    "metrics",
    "gate",
    "alias_history",
}
REPORT_KEYS = {"model_name", "tracking_uri", "primary_metric", "aliases", "versions", "leaderboard", "environments"}
ENVIRONMENT_KEYS = {"env", "host", "url", "preview_url", "router", "live", "slots", "current", "last_deploys"}


def test_status_is_typed_and_its_json_keeps_its_shape(project, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # environments become notes
    assert project.mlci("train").exit_code == 0
    assert project.mlci("promote", "1", "--to", "production").exit_code == 0

    report = status.collect(config_module.load(project.config_file))
    (row,) = report.versions
    assert row.version == "1" and row.aliases == ["candidate", "production"]
    assert row.metrics["roc_auc"] > 0.9 and row.author == "Ada Lovelace <ada@example.com>"
    assert set(row.alias_history) >= {"mlci.candidate.by", "mlci.production.by"}
    assert all(isinstance(e, EnvironmentUnavailable) for e in report.environments)

    listing = json.loads(project.mlci("status", "--json").stdout)
    assert set(listing) == REPORT_KEYS and set(listing["versions"][0]) == VERSION_KEYS
    assert listing == json.loads(json.dumps(report.as_dict()))
    assert [set(e) for e in listing["environments"]] == [{"env", "error"}, {"env", "error"}]
    assert "no Docker engine answers" in listing["environments"][0]["error"]


def test_an_environment_with_nothing_deployed(project):
    """Against the real Docker engine: no router, no slots, no records (a project name nothing uses)."""
    project.edit(project=f"status-{uuid.uuid4().hex[:8]}")
    env = status.environment(config_module.load(project.config_file), "staging")
    assert isinstance(env, EnvironmentStatus)
    assert env.router == "missing" and env.live is None and env.current is None and env.last_deploys == []
    assert env.slots == {"blue": None, "green": None}
    scoped = project.mlci("status", "--env", "staging", "--json")
    assert scoped.exit_code == 0, scoped.stderr
    (listed,) = json.loads(scoped.stdout)
    assert set(listed) == ENVIRONMENT_KEYS and listed == env.as_dict()
    assert listed["host"] == "local engine"
    shown = project.mlci("status", "--env", "staging")
    assert shown.exit_code == 0 and "router missing" in shown.stdout and "live colour none" in shown.stdout
