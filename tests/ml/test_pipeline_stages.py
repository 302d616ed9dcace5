"""The local pipeline and the Jenkinsfile must never drift apart: same stages, same order."""

import re
from pathlib import Path

import pytest

from ml.errors import BadInput
from ml.pipeline import STAGES, stage_named

REPO = Path(__file__).resolve().parents[2]


def jenkinsfile_stages() -> list[str]:
    """The stages that run steps, in order. Parent stages only group them (one agent for Setup to Gate,
    the staging lock over Deploy staging and Approve): they hold `stages {` before their first child."""
    text = (REPO / "Jenkinsfile").read_text()
    found = list(re.finditer(r"^\s*stage\('([^']+)'\)", text, flags=re.M))
    ends = [match.start() for match in found[1:]] + [len(text)]
    return [match.group(1) for match, end in zip(found, ends) if "stages {" not in text[match.end() : end]]


def test_the_jenkinsfile_groups_stages_without_hiding_any():
    names = re.findall(r"^\s*stage\('([^']+)'\)", (REPO / "Jenkinsfile").read_text(), flags=re.M)
    assert set(jenkinsfile_stages()) < set(names)  # the groups are not stages of mlci pipeline


def test_mlci_pipeline_stages_equals_the_jenkinsfile(project):
    listed = project.mlci("pipeline", "stages")
    assert listed.exit_code == 0
    assert listed.stdout.splitlines() == jenkinsfile_stages() == list(STAGES)


def test_mlci_pipeline_step_uses_the_same_stage_names():
    text = (REPO / "vars" / "mlciPipeline.groovy").read_text()
    assert re.findall(r"stage\('([^']+)'\)", text) == list(STAGES)


@pytest.mark.parametrize(
    "given, name",
    [
        ("train", "Train"),
        ("build", "Build images"),
        ("Build images", "Build images"),
        ("deploy-production", "Deploy production"),
        ("APPROVE", "Approve"),
    ],
)
def test_stage_names_and_slugs(given, name):
    assert stage_named(given) == name


def test_bad_slices_are_bad_input(project):
    result = project.mlci("pipeline", "run", "--from", "deploy", "--no-approve")
    assert result.exit_code == 2 and "unknown stage 'deploy'" in result.stderr
    result = project.mlci("pipeline", "run", "--from", "gate", "--to", "train")
    assert result.exit_code == 2 and "comes after" in result.stderr
    with pytest.raises(BadInput):
        stage_named("ship it")


def test_a_slice_runs_only_its_stages(project):
    result = project.mlci("pipeline", "run", "--from", "train", "--to", "gate")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "stage 1/2: Train" in result.stdout and "stage 2/2: Gate" in result.stdout
    assert "Build images" not in result.stdout
    assert project.report("gate")["passed"] is True


def test_approval_without_a_terminal_needs_a_flag(project):
    assert project.mlci("train").exit_code == 0
    result = project.mlci("pipeline", "run", "--from", "approve", "--to", "approve")
    assert result.exit_code == 2 and "--approve or --no-approve" in result.stderr
    refused = project.mlci("pipeline", "run", "--from", "approve", "--to", "approve", "--no-approve")
    assert refused.exit_code == 1 and "was not approved: production is untouched" in refused.stderr
