"""Candidates per branch (issue 11, item 2): only the deploy branch moves @candidate; every other branch
and pull request moves its own candidate-<slug>, and each version says where it comes from."""

import re
import shutil

import pytest

from mlci.track import registry

MODEL = "breast-cancer-classifier"
# MLflow's alias rules (mlflow.utils.validation): word characters and "-", not latest, not v<digits>.
MLFLOW_ALIAS = re.compile(r"^[\w\-]{1,255}$")


def test_a_pull_request_build_moves_its_own_alias_and_tags_the_version(project, monkeypatch):
    monkeypatch.setenv("BRANCH_NAME", "PR-12")  # what a Jenkins multibranch job sets for a pull request
    monkeypatch.setenv("CHANGE_ID", "12")
    monkeypatch.setenv("CHANGE_BRANCH", "feature-x")
    monkeypatch.setenv("BUILD_URL", "https://jenkins.example/job/ml/job/PR-12/3/")
    trained = project.mlci("train")
    assert trained.exit_code == 0, trained.stderr
    assert "version 1 as @candidate-pr-12" in trained.stdout
    assert "pull request 12 (PR-12) is not the deploy branch main" in trained.stdout
    report = project.report("train")
    assert report["alias"] == "candidate-pr-12"
    assert report["provenance"]["pull_request"] == "12" and report["provenance"]["change_branch"] == "feature-x"

    client = project.client()
    assert client.get_registered_model(MODEL).aliases == {"candidate-pr-12": 1}, "@candidate must not move"
    tags = client.get_model_version(MODEL, "1").tags
    assert tags["mlci.branch"] == "PR-12" and tags["mlci.pull_request"] == "12"
    assert tags["mlci.change_branch"] == "feature-x"
    assert tags["jenkins.build_url"] == "https://jenkins.example/job/ml/job/PR-12/3/"
    assert tags["mlci.candidate-pr-12.build"] == tags["jenkins.build_url"]
    run_tags = client.get_run(report["run_id"]).data.tags
    assert run_tags["mlci.pull_request"] == "12" and run_tags["mlci.change_branch"] == "feature-x"


def test_only_the_configured_deploy_branch_moves_candidate(project, monkeypatch):
    project.edit(**{"tracking.deploy_branch": "release"})
    monkeypatch.setenv("BRANCH_NAME", "main")
    assert project.mlci("train").exit_code == 0
    monkeypatch.setenv("GIT_BRANCH", "origin/release")  # the Git plugin's form, in a job without BRANCH_NAME
    monkeypatch.delenv("BRANCH_NAME")
    trained = project.mlci("train")
    assert trained.exit_code == 0, trained.stderr
    assert "branch release is the deploy branch" in trained.stdout
    assert project.client().get_registered_model(MODEL).aliases == {"candidate-main": 1, "candidate": 2}
    assert project.client().get_model_version(MODEL, "2").tags["mlci.branch"] == "release"


def test_a_build_with_no_known_branch_is_treated_as_the_deploy_branch_and_says_so(project):
    shutil.rmtree(project.root / ".git")  # no git, no Jenkins variables: the branch is unknown
    trained = project.mlci("train")
    assert trained.exit_code == 0, trained.stderr
    assert "branch unknown" in trained.stdout and "treated as the deploy branch main" in trained.stdout
    assert project.report("train")["alias"] == "candidate"


def test_a_failed_branch_training_puts_the_branch_alias_back(project, monkeypatch):
    from mlci.learn import train as train_module

    monkeypatch.setenv("BRANCH_NAME", "feature-x")
    assert project.mlci("train").exit_code == 0

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(train_module.reports, "write", broken)
    failed = project.mlci("train")
    assert failed.exit_code == 2, failed.stderr
    client = project.client()
    assert client.get_registered_model(MODEL).aliases == {"candidate-feature-x": 1}
    assert [str(v.version) for v in client.search_model_versions(f"name = '{MODEL}'")] == ["1"]


@pytest.mark.parametrize(
    ("branch", "slug"),
    [
        ("PR-12", "pr-12"),
        ("feature/JIRA-123_Fix login", "feature-jira-123-fix-login"),
        ("--Weird..Name--", "weird-name"),
        ("main", "main"),
    ],
)
def test_branch_slugs(branch, slug):
    assert registry.branch_slug(branch) == slug
    assert registry.candidate_alias(branch, deploy_branch="release") == f"candidate-{slug}"


def test_long_and_unusable_branch_names_still_get_distinct_valid_aliases():
    first = registry.candidate_alias("feature/" + "a" * 60 + "-one", "main")
    second = registry.candidate_alias("feature/" + "a" * 60 + "-two", "main")
    odd = registry.candidate_alias("日本語", "main")
    for alias in (first, second, odd):
        slug = alias.removeprefix("candidate-")
        assert MLFLOW_ALIAS.match(alias) and re.fullmatch(r"[a-z0-9-]{1,40}", slug), alias
    assert first != second and len(first.removeprefix("candidate-")) == 40


def test_the_deploy_branch_in_a_pull_request_is_not_the_deploy_branch():
    assert registry.candidate_alias("main", "main") == "candidate"
    assert registry.candidate_alias("main", "main", pull_request="7") == "candidate-main"
    assert registry.candidate_alias(None, "main") == "candidate"
