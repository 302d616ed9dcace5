"""An environment's lock and state on its Docker host, piece by piece: a lock container left stopped
or never started is stale, one that cannot start is a clear error, a lock lost mid-deploy is noticed
before anything switches, and `down` of an environment never deployed needs no image.

Two agents sharing that state (one history, rollback from the other clone, deploys serialized under
load, a holder killed with SIGKILL blocking nobody) is tests/integration/docker/test_team_line.py's
line, on the team's shared server."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
ENV = "staging"


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=300)


@pytest.mark.parametrize("leftover", ["exited", "created"])
def test_a_lock_container_that_does_not_run_is_stale(base_images, leftover):
    """What an engine restart (or a holder killed between create and start) leaves: a lock container
    that holds nothing. The next deploy removes it and takes the lock."""
    from mlci.deploy.lock import EnvironmentLock
    from mlci.deploy.router import Names
    from mlci.ship.docker import Docker

    names, image = Names(f"it-{uuid.uuid4().hex[:8]}", ENV), base_images["MLCI_ROUTER_BASE_IMAGE"]
    try:
        if leftover == "exited":
            docker("run", "--name", names.lock, "--entrypoint", "true", image)
        else:
            docker("create", "--name", names.lock, "--entrypoint", "true", image)
        waits: list[str] = []
        with EnvironmentLock(Docker(), names, image, timeout=20, step=waits.append) as lock:
            assert lock.exec("echo held").strip() == "held"
        assert bool(waits) == (leftover == "created")  # a fresh "created" one gets its grace period
        assert docker("inspect", names.lock, check=False).returncode != 0
    finally:
        docker("rm", "-f", names.lock, check=False)
        docker("volume", "rm", names.state, check=False)


def test_a_lock_container_that_cannot_start_is_a_clear_error(base_images):
    from mlci.deploy.lock import EnvironmentLock
    from mlci.deploy.router import Names
    from mlci.ship.docker import Docker, DockerError

    names = Names(f"it-{uuid.uuid4().hex[:8]}", ENV)
    try:
        lock = EnvironmentLock(Docker(), names, "mlci-it/no-such-image:none", timeout=5)
        with pytest.raises(DockerError, match=f"could not start the lock container {names.lock}"):
            lock.__enter__()
    finally:
        docker("volume", "rm", names.state, check=False)


def test_down_of_an_environment_never_deployed_needs_no_image(project, docker_engine):
    """No router and no router image on the host: nothing to lock with, nothing deployed; down says so."""
    name = f"it-{uuid.uuid4().hex[:8]}"
    project.edit(project=name)
    # Its own process, as an agent runs it (in-process, mlflow.set_tracking_uri would leave
    # MLFLOW_TRACKING_URI set for the fixtures of the modules that follow).
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    command = [sys.executable, "-m", "mlci.cli.main", "--config", str(project.root / "mlci.yaml")]
    result = subprocess.run(
        [*command, "down", "--env", "staging"], cwd=project.root, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "staging was not running" in result.stdout
    assert docker("volume", "inspect", f"{name}-staging-state", check=False).returncode != 0


def test_a_lost_lock_is_noticed_before_anything_switches(base_images):
    """A lock container that stops while its deploy runs (ssh drop, engine restart, docker rm -f):
    another deploy may hold the environment now, so the first one must not switch."""
    from mlci.core.errors import Unreachable
    from mlci.deploy.lock import EnvironmentLock
    from mlci.deploy.router import Names
    from mlci.ship.docker import Docker

    names, image = Names(f"it-{uuid.uuid4().hex[:8]}", ENV), base_images["MLCI_ROUTER_BASE_IMAGE"]
    try:
        with EnvironmentLock(Docker(), names, image, timeout=20) as lock:
            lock.ensure_held()  # held: nothing to say
            docker("rm", "-f", names.lock)
            with pytest.raises(Unreachable, match=f"lost the lock of {ENV}"):
                lock.ensure_held()
    finally:
        docker("rm", "-f", names.lock, check=False)
        docker("volume", "rm", names.state, check=False)
