"""An environment's state lives on its Docker host: two clones of one project (two agents, two
folders, one shared MLflow server, one engine) see the same history, roll back with each other's
records, are serialized by one lock, and a holder killed with SIGKILL blocks nobody."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]
ENV = "staging"
DRAIN = 1.0


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=300)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory, free_port):
    """One tracking server for both clones (the team's shared server), on loopback."""
    root = tmp_path_factory.mktemp("shared-mlflow")
    port = free_port()
    log = open(root / "server.log", "w")  # noqa: SIM115 - the server process owns it until the end
    store = [
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
    ]
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), *store],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(uri + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("mlflow server did not come up:\n" + (root / "server.log").read_text()[-2000:])
        time.sleep(0.5)
    yield uri
    process.terminate()
    process.wait(timeout=20)
    log.close()


class Clone:
    """One checkout of the project, driven as an agent would: `mlci` in its own process."""

    def __init__(self, root: Path):
        self.root = root

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "mlci.cli.main", "--config", str(self.root / "mlci.yaml"), *args]

    @staticmethod
    def env() -> dict[str, str]:
        """The tracking URI comes from mlci.yaml: never from a variable an earlier in-process test left."""
        return {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            self.command(*args),
            cwd=self.root,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def mlci(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
        done = subprocess.run(
            self.command(*args), cwd=self.root, env=self.env(), capture_output=True, text=True, timeout=300
        )
        if expect is not None:
            assert done.returncode == expect, done.stdout + done.stderr
        return done

    def status(self) -> dict:
        return json.loads(self.mlci("status", "--env", ENV, "--json").stdout)[0]


@pytest.fixture(scope="module")
def clones(tmp_path_factory, base_images, project_factory, build_sources, free_ports, mlflow_server):
    """Clone A trains versions 1 and 2 and builds their images; clone B is a fresh checkout of the
    same config: no reports, no .mlci, nothing but what every agent shares."""
    copy_sources, remove_images = build_sources
    project = project_factory(
        tmp_path_factory.mktemp("clone-a"), REPO / "mlci.yaml", [REPO / "data" / "breast_cancer.csv"]
    )
    copy_sources(project.root)
    name = f"it-{uuid.uuid4().hex[:8]}"
    port, preview = free_ports(2)
    checks = {"ready_timeout": 30, "verify_seconds": 2.5}
    project.edit(
        project=name,
        **{"tracking.uri": mlflow_server},
        environments={ENV: {"port": port, "preview_port": preview, "drain_seconds": DRAIN, "checks": checks}},
    )
    project.commit("shared config")
    monkeypatch = pytest.MonkeyPatch()
    for key, value in base_images.items():
        monkeypatch.setenv(key, value)
    a = Clone(project.root)
    root_b = tmp_path_factory.mktemp("clone-b") / "project"
    try:
        for depth in (8, 5):
            project.edit(**{"model.params.max_depth": depth})
            project.commit(f"depth {depth}")
            a.mlci("train")
            a.mlci("build", "--only", "api", "--only", "router")
        shutil.copytree(project.root, root_b, ignore=shutil.ignore_patterns("reports", ".mlci", "build", ".git"))
        yield a, Clone(root_b), name
    finally:
        a.mlci("down", "--env", ENV, expect=None)
        docker("volume", "rm", f"{name}-{ENV}-state", check=False)
        monkeypatch.undo()
        remove_images(name)


def served(clone: Clone) -> str:
    return str(httpx.get(f"{clone.status()['url']}/version", timeout=5).json()["version"])


def wait_for_lock(name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while docker("inspect", "-f", "{{.State.Running}}", f"{name}-{ENV}-lock", check=False).stdout.strip() != "true":
        assert time.monotonic() < deadline, "no lock container appeared on the engine"
        time.sleep(0.1)


def test_a_fresh_clone_sees_and_rolls_back_the_same_history(clones):
    a, b, _name = clones
    a.mlci("deploy", "--env", ENV, "--version", "1")
    a.mlci("deploy", "--env", ENV, "--version", "2")
    seen_by_a, seen_by_b = a.status(), b.status()
    assert seen_by_b["live"] == seen_by_a["live"] and seen_by_b["current"]["model_version"] == "2"
    assert seen_by_b["last_deploys"] == seen_by_a["last_deploys"]
    assert [r["model_version"] for r in seen_by_b["last_deploys"]][-2:] == ["1", "2"]
    assert not (b.root / ".mlci").exists()

    rolled = b.mlci("rollback", "--env", ENV)
    assert "checking it" in rolled.stdout  # a switch back to A's previous colour, from A's history
    assert served(a) == "1"
    after = a.status()
    assert after["current"]["kind"] == "rollback" and after["current"]["model_version"] == "1"
    assert after["live"] != seen_by_a["live"]


def test_two_deploys_from_two_clones_are_serialized_under_load(clones, load_generator):
    a, b, name = clones
    reference = json.loads((a.root / "build" / "bundle" / "reference.json").read_text())["records"][0]
    url = a.status()["url"]
    with load_generator(url, reference, connections=2) as load:
        first, second = (
            a.start("deploy", "--env", ENV, "--version", "2"),
            b.start("deploy", "--env", ENV, "--version", "1"),
        )
        outputs = [process.communicate(timeout=300)[0] for process in (first, second)]
        assert (first.returncode, second.returncode) == (0, 0), outputs
        time.sleep(DRAIN)
    assert load.failures == [] and len(load.results) > 50
    assert sum("waiting up to" in output and "locked by" in output for output in outputs) == 1, outputs
    deploys = a.status()["last_deploys"][-2:]
    assert {r["result"] for r in deploys} == {"deployed"} and {r["model_version"] for r in deploys} == {"1", "2"}

    # With --lock-timeout 0 the second one does not wait: exit 1, naming the holder. The holder is
    # this test, holding the environment's lock as a deploy does, for as long as the check takes (a
    # real deploy as holder could finish before the other clone's command even starts on a busy box).
    from mlci.deploy.lock import EnvironmentLock
    from mlci.deploy.router import Names
    from mlci.ship.docker import Docker

    live_before = a.status()["current"]["model_version"]
    router_image = docker("inspect", "-f", "{{.Image}}", f"{name}-{ENV}-router").stdout.strip()
    with EnvironmentLock(Docker(), Names(name, ENV), router_image, timeout=20):
        refused = b.mlci("deploy", "--env", ENV, "--version", "1", "--lock-timeout", "0", expect=1)
    said = refused.stdout + refused.stderr
    assert "is locked by" in said and f"pid {os.getpid()}" in said and "Traceback" not in said, said
    assert a.status()["current"]["model_version"] == live_before  # nothing moved


def test_a_holder_killed_mid_deploy_blocks_nobody(clones):
    a, b, name = clones
    killed = a.start("deploy", "--env", ENV, "--version", "1")
    wait_for_lock(name)
    time.sleep(1.0)  # inside the deploy: the new slot is starting
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    # Within --lock-timeout 10 or exit 1: the dead holder's lock container is gone in seconds.
    b.mlci("deploy", "--env", ENV, "--version", "1", "--lock-timeout", "10")
    assert served(b) == "1"
    assert docker("inspect", f"{name}-{ENV}-lock", check=False).returncode != 0  # released again


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
    result = Clone(project.root).mlci("down", "--env", "staging")
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
