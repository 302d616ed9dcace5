"""examples/churn-team as a team runs it: a repository with no mlci source, mlci installed from the
wheel `make dist` builds into a fresh virtualenv, the whole line (`mlci pipeline run --approve`: test,
train, gate, build, staging, approve, production) on the real Docker engine, then `mlci down`.

mlci is the release tests/fixtures/release.py installs (the wheel on the library's lock), shared with
tests/packaging/test_release.py. About 5 minutes on the
2-core CI box with warm Docker layers (4 min 56 s measured, first run of the host wheelhouse 41 s more)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.fixtures.release import host_wheelhouse, ok, run

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "churn-team"
VERSION = (REPO / "resources" / "io" / "mlci" / "VERSION").read_text().strip()
NAME = "churn-team"  # the example's own project name: its containers, network, volumes and images
PORTS = {"production": 8280, "staging": 8281, "dashboard": 8580}


def clean_environments(mlci: str | None, cwd: Path, env: dict[str, str]) -> None:
    for name in ("production", "staging"):
        if mlci:
            subprocess.run([mlci, "down", "--env", name], cwd=cwd, env=env, capture_output=True, timeout=180)
        subprocess.run(["docker", "volume", "rm", f"{NAME}-{name}-state"], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def venv(release) -> Path:
    """The released mlci (tests/fixtures/release.py): the wheel on the library's lock, nothing from this checkout."""
    return release.venv


@pytest.fixture(scope="module")
def consumer(tmp_path_factory, venv, base_images):
    """A copy of the example, as a team's fresh clone: its own git history on main, no mlci source."""
    root = tmp_path_factory.mktemp("clone") / NAME
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".mlci", "reports", "build", "__pycache__"))
    # The images' wheels from the host's downloads, hard-linked: no network inside or around the build.
    for lock in ("api", "dashboard"):
        shutil.copytree(host_wheelhouse(lock), root / "build" / "wheelhouse" / lock, copy_function=os.link)
    git = ["git", "-c", "user.name=Churn Team", "-c", "user.email=churn@example.com"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "churn model"]):
        subprocess.run([*git, *args], cwd=root, check=True, capture_output=True)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "MLFLOW_TRACKING_URI")},
        **base_images,
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "COLUMNS": "200",
    }
    mlci = str(venv / "bin" / "mlci")
    clean_environments(mlci, root, env)  # what an interrupted earlier run may have left
    try:
        yield root, env, mlci
    finally:
        clean_environments(mlci, root, env)
        tags = subprocess.run(
            ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={NAME}-*"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if tags:
            subprocess.run(["docker", "rmi", "--no-prune", *tags], capture_output=True)


def test_the_example_holds_no_mlci_source():
    assert (EXAMPLE / "Jenkinsfile").read_text() == f"@Library('mlci@v{VERSION}') _\nmlciPipeline()\n"
    for source in ("ml", "api", "dashboard", "docker", "requirements", "setup.cfg", "vars"):
        assert not (EXAMPLE / source).exists(), source


def test_the_wheel_runs_the_whole_line_from_the_example(consumer):
    root, env, mlci = consumer
    python = str(Path(mlci).parent / "python")
    where = ok(run([python, "-c", "import mlci.api, mlci.dashboard; print(mlci.__file__)"], root, env, 60))
    venv = Path(mlci).parents[1]
    assert Path(where.stdout.strip()).is_relative_to(venv), f"{where.stdout} is not from the wheel installed in {venv}"
    assert ok(run([mlci, "--version"], root, env, 60)).stdout.strip().endswith(f"version {VERSION}")

    line = run([mlci, "pipeline", "run", "--approve"], root, env, 1500)
    assert line.returncode == 0, line.stdout[-5000:] + line.stderr[-3000:]
    stages = ("Setup", "Test", "Train", "Gate", "Build images", "Deploy staging", "Approve", "Deploy production")
    for number, stage in enumerate(stages, start=1):
        assert f"stage {number}/8: {stage} — ok" in line.stdout
    assert "5 passed" in line.stdout  # the team's own tests, starter test included
    # Every image was built from the wheel's sources, in a context of its own.
    for role, dockerfile in (("api", "api"), ("dashboard", "dashboard"), ("router", "router")):
        assert (root / "build" / "context" / role / "docker" / f"{dockerfile}.Dockerfile").is_file()
    for env_name in ("production", "staging"):
        served = httpx.get(f"http://127.0.0.1:{PORTS[env_name]}/version", timeout=5).json()
        assert str(served["version"]) == "1" and served["name"] == NAME
    assert httpx.get(f"http://127.0.0.1:{PORTS['dashboard']}/_stcore/health", timeout=5).status_code == 200

    for env_name in ("production", "staging"):
        down = ok(run([mlci, "down", "--env", env_name], root, env, 180))
        assert "RESULT OK" in down.stdout
    left = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}", "--filter", f"name={NAME}-"], capture_output=True, text=True
    ).stdout.split()
    assert left == []
