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
from pathlib import Path

import httpx
import pytest

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
