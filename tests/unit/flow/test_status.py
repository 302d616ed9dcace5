"""mlci.flow.status: the typed results `mlci status` renders (and `--json` keeps), and the leaderboard:
the latest version of each branch, best first by the primary metric, with its gate result."""

import json
import uuid

from mlci.core import config as config_module
from mlci.deploy.environment_status import EnvironmentStatus, EnvironmentUnavailable
from mlci.flow import status
from mlci.flow.status import LeaderboardRow

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


MODEL = "breast-cancer-classifier"


ROW_KEYS = {
    "branch",
    "version",
    "metric",
    "gate",
    "gated_against",
    "aliases",
    "pull_request",
    "commit",
    "author",
    "created_at",
}


def train_on(project, monkeypatch, branch: str, **params) -> dict:
    monkeypatch.setenv("BRANCH_NAME", branch)
    if params:
        project.edit(**{f"model.params.{k}": v for k, v in params.items()})
    trained = project.mlci("train")
    assert trained.exit_code == 0, trained.stderr
    return project.report("train")


def test_latest_version_per_branch_best_first_with_its_gate(project, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # environments become notes
    project.edit(**{"gate.threshold": 0.5, "gate.max_regression": 1.0, "gate.secondary": {}})
    train_on(project, monkeypatch, "main")  # v1
    assert project.mlci("gate").exit_code == 0
    assert project.mlci("promote", "1", "--to", "production").exit_code == 0
    weak = train_on(project, monkeypatch, "feature-a", n_estimators=1, max_depth=1)  # v2
    assert project.mlci("gate").exit_code == 0  # gated against production v1
    middle = train_on(project, monkeypatch, "feature-b", n_estimators=3, max_depth=2)  # v3, never gated
    latest_main = train_on(project, monkeypatch, "main", n_estimators=20, max_depth=None)  # v4 replaces v1

    listing = project.mlci("status", "--json")
    assert listing.exit_code == 0, listing.stderr
    board = json.loads(listing.stdout)["leaderboard"]
    assert all(set(row) == ROW_KEYS for row in board)
    by_branch = {row["branch"]: row for row in board}
    assert set(by_branch) == {"main", "feature-a", "feature-b"}
    assert by_branch["main"]["version"] == "4" and by_branch["main"]["aliases"] == ["candidate"]
    assert by_branch["main"]["gate"] is None
    assert (by_branch["feature-a"]["gate"], by_branch["feature-a"]["gated_against"]) == ("passed", "1")
    assert by_branch["feature-a"]["aliases"] == ["candidate-feature-a"]
    assert by_branch["feature-b"]["gate"] is None
    for report in (weak, middle, latest_main):
        assert by_branch[report["provenance"]["branch"]]["metric"] == report["primary_value"]
    metrics = [row["metric"] for row in board]
    assert metrics == sorted(metrics, reverse=True), "roc_auc: best (highest) first"
    assert by_branch["main"]["commit"] == project.git("rev-parse", "HEAD")
    assert by_branch["main"]["author"] == "Ada Lovelace <ada@example.com>"

    shown = project.mlci("status")
    assert shown.exit_code == 0, shown.stderr
    assert "leaderboard: latest version per branch, best first" in shown.stdout
    assert "passed vs v1" in shown.stdout and "not gated" in shown.stdout
    lines = shown.stdout[shown.stdout.index("leaderboard") :].splitlines()
    order = [next(b for b in by_branch if f" {b} " in line) for line in lines if line.strip()[:1].isdigit()][:3]
    assert order == [row["branch"] for row in board]


def test_the_first_gate_records_that_no_production_existed(project):
    """mlci.gate.against is always written: "none" when nothing held @production (judged on the floor)."""
    assert project.mlci("train").exit_code == 0
    assert project.mlci("gate").exit_code == 0
    assert project.client().get_model_version(MODEL, "1").tags["mlci.gate.against"] == "none"
    (row,) = json.loads(project.mlci("status", "--json").stdout)["leaderboard"]
    assert (row["gate"], row["gated_against"]) == ("passed", "none")
    assert "passed vs the floor" in project.mlci("status").stdout


def test_a_version_without_the_metric_tag_is_ranked_by_its_run(project):
    """Versions registered before the tag existed: the metric comes from the run; a tag that is not a
    number ranks last instead of failing the status."""
    assert project.mlci("train").exit_code == 0
    client = project.client()
    client.delete_model_version_tag(MODEL, "1", "mlci.metric.roc_auc")
    (row,) = json.loads(project.mlci("status", "--json").stdout)["leaderboard"]
    assert row["metric"] == project.report("train")["primary_value"] and row["gate"] is None
    client.set_model_version_tag(MODEL, "1", "mlci.metric.roc_auc", "not a number")
    (row,) = json.loads(project.mlci("status", "--json").stdout)["leaderboard"]
    assert row["metric"] is None


def row(branch: str, version: str, metric: float | None) -> LeaderboardRow:
    return LeaderboardRow(branch, version, metric, None, None, [], None, "c", None, "2026-01-01T00:00:00+00:00")


def test_ranking_follows_the_metric_direction():
    rows = [row("a", "1", 0.3), row("b", "2", None), row("c", "3", 0.1), row("d", "4", 0.3)]
    assert [r.branch for r in status.rank(rows, higher_is_better=True)] == ["d", "a", "c", "b"]
    assert [r.branch for r in status.rank(rows, higher_is_better=False)] == ["c", "d", "a", "b"]


def test_status_notes_an_unreachable_engine_instead_of_failing(project, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = project.mlci("status")
    assert result.exit_code == 0
    assert "environment production: no Docker engine answers" in result.stdout
    scoped = project.mlci("status", "--env", "production")
    assert scoped.exit_code == 3
