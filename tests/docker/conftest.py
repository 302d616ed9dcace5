"""Fixtures for the suites that need a real Docker engine (started by .ci/setup-machine in CI).

Images are built from local Debian base images (docker/base-image.sh): no registry is reachable
here. Builds share Docker's layer cache across tests and runs, so only the first one is slow.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ml.images import download_wheels
from tests.waiting import wait_until_answers

REPO = Path(__file__).resolve().parents[2]
PYTHON_BASE = "mlci-base/python:3.11-bookworm"
NGINX_BASE = "mlci-base/nginx:bookworm"
# What an image build reads from a project: the context allow-listed by .dockerignore.
BUILD_SOURCES = (
    "api",
    "dashboard",
    "docker",
    "requirements",
    ".dockerignore",
)


def docker_ok() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def docker_engine() -> None:
    if not docker_ok():
        pytest.fail("no Docker engine answers (docker info): run .ci/setup-machine (as root) to install and start one")


@pytest.fixture(scope="session")
def base_images(docker_engine) -> dict[str, str]:
    """The local base images, built once with debootstrap when missing (minutes the first time)."""
    done = subprocess.run([str(REPO / "docker" / "base-image.sh"), "all"], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    return {"MLCI_BASE_IMAGE": PYTHON_BASE, "MLCI_ROUTER_BASE_IMAGE": NGINX_BASE}


def copy_build_sources(root: Path) -> None:
    for name in BUILD_SOURCES:
        source = REPO / name
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(
                source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".streamlit"), dirs_exist_ok=True
            )
        else:
            shutil.copy2(source, target)
    wheelhouse = REPO / "build" / "wheelhouse"
    if wheelhouse.is_dir():  # reuse the host's downloads: hard links, no copy, no network
        shutil.copytree(wheelhouse, root / "build" / "wheelhouse", copy_function=os.link, dirs_exist_ok=True)


@pytest.fixture(scope="session")
def build_sources():
    """copy_build_sources and remove_images, for fixtures of wider scope than a test."""
    return copy_build_sources, remove_images


@pytest.fixture
def image_project(project, base_images, monkeypatch):
    """The demo project, able to build images (sources + local base images), with images cleaned up."""
    copy_build_sources(project.root)
    name = f"it-{uuid.uuid4().hex[:8]}"  # unique image names: cleaned up by name, never clash
    project.edit(project=name)
    project.commit("build sources")
    for key, value in base_images.items():
        monkeypatch.setenv(key, value)
    yield project
    remove_images(name)


def remove_images(project_name: str) -> None:
    tags = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={project_name}-*"],
        capture_output=True,
        text=True,
    ).stdout.split()
    if tags:
        # --no-prune keeps the shared parent layers: the next test's build reuses them.
        subprocess.run(["docker", "rmi", "--no-prune", *tags], capture_output=True)


class Load:
    """Bounded load through a router: keep-alive connections sending predictions; each response's
    status and model version recorded with its send and receive times."""

    def __init__(self, url: str, record: dict, connections: int = 4, max_seconds: float = 300):
        self.url, self.record, self.max_seconds = url, record, max_seconds
        self.results: list[tuple[float, float, int, str | None]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(connections)]

    def _run(self) -> None:
        started = time.monotonic()
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set() and time.monotonic() - started < self.max_seconds:
                sent = time.monotonic()
                try:
                    response = client.post(f"{self.url}/predict", json={"records": [self.record]})
                except httpx.HTTPError as error:
                    self.failures.append(f"{type(error).__name__}: {error}")
                    continue
                self.results.append(
                    (sent, time.monotonic(), response.status_code, response.headers.get("x-model-version"))
                )
                if response.status_code != 200:
                    self.failures.append(f"HTTP {response.status_code}: {response.text[:200]}")

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)


@pytest.fixture(scope="session")
def load_generator():
    """The Load class: bounded prediction traffic through a router, recording every answer."""
    return Load


# The team stack (docker/compose.team.yaml): PostgreSQL + an MLflow tracking server, built offline
# from the local Python base. Fixed tags: every run reuses the previous build's layers; containers
# and volumes are per run.
TEAM_COMPOSE_FILE = REPO / "docker" / "compose.team.yaml"
TEAM_MLFLOW_IMAGE = "mlci-team-mlflow:test"
TEAM_POSTGRES_IMAGE = "mlci-team-postgres:test"


def run(
    args: list[str], *, timeout: float, env: dict[str, str] | None = None, check: bool = True, cwd: Path = REPO
) -> subprocess.CompletedProcess:
    """A command with a bound; a timeout or (with check) a non-zero exit fails the test with its output."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"timed out after {timeout:.0f}s: {' '.join(args)}\n{exc.stdout or ''}\n{exc.stderr or ''}")
    if check and done.returncode != 0:
        pytest.fail(f"exit {done.returncode}: {' '.join(args)}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


def require_compose() -> None:
    missing = [tool for tool in ("docker", "docker-compose") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: this suite needs a real Docker engine and Debian's "
            "docker-compose; run .ci/setup-machine (as root), or apt-get install docker.io docker-compose"
        )
    if subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode != 0:
        pytest.fail("no Docker engine answers (docker info): run .ci/setup-machine (as root) to start one")


def ensure_python_base() -> None:
    if subprocess.run(["docker", "image", "inspect", PYTHON_BASE], capture_output=True, timeout=60).returncode == 0:
        return
    run([str(REPO / "docker" / "base-image.sh"), "python"], timeout=1200)


def ensure_server_wheelhouse() -> dict[str, str]:
    """The server lock's wheels on the host (build/wheelhouse/server), unless a PIP_INDEX_URL mirror is set."""
    if os.environ.get("PIP_INDEX_URL"):
        return {"PIP_INDEX_URL": os.environ["PIP_INDEX_URL"]}
    # mlci build's own call, so the server image's wheels are fetched exactly as the API image's are
    download_wheels(REPO / "requirements" / "server.txt", REPO / "build" / "wheelhouse" / "server")
    return {}


class TeamStack:
    """One running team stack: its compose project, settings and published MLflow URL."""

    db_user, db_name = "mlflow", "mlflow"
    mlflow_image, postgres_image, base_image = TEAM_MLFLOW_IMAGE, TEAM_POSTGRES_IMAGE, PYTHON_BASE

    def __init__(self, project: str, env: dict[str, str], port: int, db_password: str):
        self.project, self.env, self.port, self.db_password = project, env, port, db_password
        self.url = f"http://127.0.0.1:{port}"

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        return run(
            ["docker-compose", "-f", str(TEAM_COMPOSE_FILE), "-p", self.project, *args],
            timeout=timeout,
            env=self.env,
            check=check,
        )

    def container(self, service: str) -> str:
        ids = self.compose("ps", "-q", service, timeout=60).stdout.split()
        assert len(ids) == 1, f"expected one {service} container, got {ids}"
        return ids[0]

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "60", timeout=60, check=False).stdout

    def wait_healthy(self, timeout: float) -> None:
        try:
            wait_until_answers(f"{self.url}/health", timeout, poll=1, request_timeout=3)
        except TimeoutError as error:
            pytest.fail(f"MLflow at {self.url} not healthy: {error}\n{self.logs()}")

    def down(self) -> None:
        """Containers and volumes of this run gone; fails the test if compose leaves any behind."""
        self.compose("down", "-v", "--remove-orphans", "--timeout", "20", timeout=180, check=False)
        label = f"label=com.docker.compose.project={self.project}"
        leftovers = run(["docker", "ps", "-aq", "--filter", label], timeout=60, check=False).stdout.split()
        volumes = run(["docker", "volume", "ls", "-q", "--filter", label], timeout=60, check=False).stdout.split()
        assert not leftovers and not volumes, f"compose down left {leftovers} {volumes}"


@pytest.fixture(scope="session")
def team_stack(free_port) -> Iterator[TeamStack]:
    """The team's MLflow server (PostgreSQL backend, proxied artifacts) on a loopback port, built and
    started once per session for every suite that needs it (slow the first time: ~6 min cold, about
    a minute with Docker's layer cache, mostly the server's start)."""
    require_compose()
    ensure_python_base()
    project = f"mlci-team-it-{uuid.uuid4().hex[:8]}"
    port = free_port()
    password = "it-secret-" + uuid.uuid4().hex[:8]
    revision = run(["git", "rev-parse", "HEAD"], timeout=30).stdout.strip()
    env = {
        **os.environ,
        "DOCKER_BUILDKIT": "0",  # no buildx here: the classic builder, through the docker CLI
        "COMPOSE_DOCKER_CLI_BUILD": "1",
        "MLCI_BASE_IMAGE": PYTHON_BASE,
        "MLCI_POSTGRES_BASE_IMAGE": PYTHON_BASE,
        "MLCI_MLFLOW_IMAGE": TEAM_MLFLOW_IMAGE,
        "MLCI_POSTGRES_IMAGE": TEAM_POSTGRES_IMAGE,
        "MLCI_MLFLOW_PORT": str(port),
        "MLCI_DB_USER": TeamStack.db_user,
        "MLCI_DB_NAME": TeamStack.db_name,
        "MLCI_DB_PASSWORD": password,
        "MLCI_REVISION": revision,
        "MLCI_CREATED": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "MLCI_SOURCE": "mlci",
        "MLCI_VERSION": "test",
        **ensure_server_wheelhouse(),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    stack = TeamStack(project, env, port, password)
    stack.compose("build", timeout=1500)
    try:
        # Returns once the database is healthy and the server container started (depends_on).
        stack.compose("up", "-d", "--no-build", timeout=300)
        stack.wait_healthy(timeout=240)
        yield stack
    finally:
        stack.down()


def _topology_fixture():
    """Issue 14's registry + namespaced hosts (tests/docker/topology.py): one fixture for the session,
    shared by the test_registry* and test_remote* suites (a fixture defined in each would start twice)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("mlci_test_topology", Path(__file__).with_name("topology.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the test modules import the same module object (helpers)
    spec.loader.exec_module(module)
    return module.topology


topology = _topology_fixture()
