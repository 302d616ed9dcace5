"""Shared by every Python suite: a clean, offline environment for MLflow and the CLI, and throw-away
projects (tests/helpers/project.py) driven through the CLI. Every fixture module under tests/fixtures/
is a plugin of this file, so a suite uses a fixture wherever it lives in the tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.environment import LEAKY
from tests.helpers.ports import reserve_ports
from tests.helpers.project import REPO, Project, make_project

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
# Every `mlflow server`/`mlflow ui` the tests start: no MLflow 3 job runner (two huey consumers of five
# workers each, polling all the time, for GenAI jobs mlci never runs), as the team stack's image has it.
os.environ["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"

pytest_plugins = (
    "tests.fixtures.bundles",
    "tests.fixtures.dashboard",
    "tests.fixtures.docker",
    "tests.fixtures.browser",
    "tests.fixtures.release",
    "tests.helpers.topology",
)


# pytest-xdist (make test: -n 2 --dist loadgroup) runs a group on one worker, in order. Every test that
# drives the Docker engine is in one group: on 2 cores two pipelines at once (training, image builds,
# slots starting under load) each take longer than both in turn, and their timing bounds are set for
# one line at a time. The other worker takes the unit, browser and packaging suites meanwhile. Tests
# sharing a session fixture that is costly to build (the released wheel's venv) share a group too.
ENGINE_GROUP = "engine"
SHARED_GROUPS = {
    "test_release.py": "release",
    "test_example_consumer.py": "release",
    "test_dist.py": "release",
    "test_library_setup.py": "release",
    "test_library_setup_trust.py": "release",
}


def xdist_group(path: Path) -> str | None:
    """The group of a test module, or None for tests any worker may take one by one."""
    if "docker" in path.parts and "integration" in path.parts:
        return ENGINE_GROUP
    if "integration" in path.parts or "packaging" in path.parts:
        return SHARED_GROUPS.get(path.name, path.stem)
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist turns the marks into groups
def pytest_collection_modifyitems(items):
    for item in items:
        group = xdist_group(Path(str(item.path)))
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


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


def suite_of(nodeid: str) -> str:
    """tests/integration/docker/test_deploy.py::… -> integration/docker; tests/unit/… -> unit."""
    folders = nodeid.split("::")[0].split("/")[1:-1]
    return "/".join(folders[:2]) if folders[:1] == ["integration"] else (folders[:1] or ["?"])[0]


def pytest_terminal_summary(terminalreporter):
    """Each suite's time (setup, call and teardown of its tests summed, whichever worker ran them): the
    per-suite table of docs/testing.md."""
    seconds: dict[str, float] = {}
    counted: dict[str, int] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            nodeid, duration = getattr(report, "nodeid", None), getattr(report, "duration", None)
            if not nodeid or duration is None:
                continue
            suite = suite_of(nodeid)
            seconds[suite] = seconds.get(suite, 0.0) + duration
            if getattr(report, "when", None) == "call":
                counted[suite] = counted.get(suite, 0) + 1
    if seconds:
        terminalreporter.section("suite times (summed over their tests)")
        for suite in sorted(seconds, key=lambda name: -seconds[name]):
            terminalreporter.write_line(f"{suite:<22} {counted.get(suite, 0):>4} tests {seconds[suite]:>8.0f} s")
