"""examples/churn-team as a team runs it: a repository with no mlci source and mlci installed from the
wheel (tests/fixtures/release.py: the wheel on the library's lock, nothing from this checkout). Its
own tests pass under `mlci test` (the starter test `mlci init` wrote included) and its config trains.
Gate, package, serve and the engine half of the line from a wheel (images, staging, production) are
tests/packaging/test_release.py's, in a team repository of its own."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.release import VERSION, Release, ok, run
from tests.helpers.project import REPO

EXAMPLE = REPO / "examples" / "churn-team"


@pytest.mark.parametrize("example", ["churn-team", "progression-team", "wine-team"])
def test_the_examples_hold_no_mlci_source(example):
    root = REPO / "examples" / example
    assert (root / "Jenkinsfile").read_text() == f"@Library('mlci@v{VERSION}') _\nmlciPipeline()\n"
    for source in ("ml", "api", "dashboard", "docker", "requirements", "setup.cfg", "vars"):
        assert not (root / source).exists(), source
    assert "mlci==" not in (root / "README.md").read_text().replace(f"mlci=={VERSION}", "").replace(
        f"mlci[boosting]=={VERSION}", ""
    )  # every pin in its README is this release


@pytest.fixture
def consumer(tmp_path: Path) -> Path:
    """A copy of the example, as a team's fresh clone: its own git history on main."""
    root = tmp_path / "churn-team"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".mlci", "reports", "build", "__pycache__"))
    git = ["git", "-c", "user.name=Churn Team", "-c", "user.email=churn@example.com"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "churn model"]):
        subprocess.run([*git, *args], cwd=root, check=True, capture_output=True)
    return root


def test_the_wheel_tests_and_trains_the_example(consumer: Path, release: Release):
    env = release.env(COLUMNS="200")
    mlci = str(release.bin / "mlci")
    where = ok(run([str(release.bin / "python"), "-c", "import mlci; print(mlci.__file__)"], consumer, env, 60))
    assert Path(where.stdout.strip()).is_relative_to(release.venv), where.stdout
    assert ok(run([mlci, "--version"], consumer, env, 60)).stdout.strip().endswith(f"version {VERSION}")

    tested = ok(run([mlci, "test"], consumer, env, 600))
    assert "5 passed" in tested.stdout, tested.stdout  # the team's own tests, the starter test included
    trained = ok(run([mlci, "train"], consumer, env, 600))
    assert "RESULT OK" in trained.stdout, trained.stdout
    assert json.loads((consumer / "reports" / "train.json").read_text())["version"] in (1, "1")
