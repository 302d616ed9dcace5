"""The team stack (docker/compose.team.yaml) on a real Docker engine: PostgreSQL + an MLflow
tracking server with proxied artifacts, built offline from the local Debian base, used by the
MLflow client of this venv exactly as a Jenkins agent would use it.

Slow the first time (base image ~3 min, MLflow image ~3 min); Docker's layer cache makes the
next runs take about a minute (mostly the server's start).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker" / "compose.team.yaml"
PYTHON_BASE = "mlci-base/python:3.11-bookworm"
# Fixed tags: every run reuses the previous build's layers; containers and volumes are per run.
MLFLOW_IMAGE = "mlci-team-mlflow:test"
POSTGRES_IMAGE = "mlci-team-postgres:test"
DB_USER, DB_NAME, DB_PASSWORD = "mlflow", "mlflow", "it-secret-" + uuid.uuid4().hex[:8]

# A cold machine builds a base image and two service images inside the first test.
pytestmark = pytest.mark.timeout(1800)


def run(
    args: list[str], *, timeout: float, env: dict[str, str] | None = None, check: bool = True, cwd: Path = REPO
) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"timed out after {timeout:.0f}s: {' '.join(args)}\n{exc.stdout or ''}\n{exc.stderr or ''}")
    if check and done.returncode != 0:
        pytest.fail(f"exit {done.returncode}: {' '.join(args)}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


def require_docker() -> None:
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


def ensure_wheelhouse() -> dict[str, str]:
    """The server lock's wheels on the host (build/wheelhouse/server), unless a PIP_INDEX_URL mirror is set."""
    if os.environ.get("PIP_INDEX_URL"):
        return {"PIP_INDEX_URL": os.environ["PIP_INDEX_URL"]}
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--require-hashes",
            "--only-binary=:all:",
            "--no-deps",
            "-r",
            "requirements/server.txt",
            "-d",
            "build/wheelhouse/server",
        ],
        timeout=600,
    )
    return {}


class Stack:
    def __init__(self, project: str, env: dict[str, str], port: int):
        self.project, self.env, self.port = project, env, port
        self.url = f"http://127.0.0.1:{port}"

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        return run(
            ["docker-compose", "-f", str(COMPOSE_FILE), "-p", self.project, *args],
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
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=3) as response:
                    if response.status == 200:
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(1)
        pytest.fail(f"MLflow at {self.url} not healthy after {timeout:.0f}s ({last})\n{self.logs()}")


@pytest.fixture(scope="module")
def stack(free_port):
    require_docker()
    ensure_python_base()
    project = f"mlci-team-it-{uuid.uuid4().hex[:8]}"
    port = free_port()
    revision = run(["git", "rev-parse", "HEAD"], timeout=30).stdout.strip()
    env = {
        **os.environ,
        "DOCKER_BUILDKIT": "0",  # no buildx here: the classic builder, through the docker CLI
        "COMPOSE_DOCKER_CLI_BUILD": "1",
        "MLCI_BASE_IMAGE": PYTHON_BASE,
        "MLCI_POSTGRES_BASE_IMAGE": PYTHON_BASE,
        "MLCI_MLFLOW_IMAGE": MLFLOW_IMAGE,
        "MLCI_POSTGRES_IMAGE": POSTGRES_IMAGE,
        "MLCI_MLFLOW_PORT": str(port),
        "MLCI_DB_USER": DB_USER,
        "MLCI_DB_NAME": DB_NAME,
        "MLCI_DB_PASSWORD": DB_PASSWORD,
        "MLCI_REVISION": revision,
        "MLCI_CREATED": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "MLCI_SOURCE": "mlci",
        "MLCI_VERSION": "test",
        **ensure_wheelhouse(),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    team = Stack(project, env, port)
    team.compose("build", timeout=1500)
    try:
        # Returns once the database is healthy and the server container started (depends_on).
        team.compose("up", "-d", "--no-build", timeout=300)
        team.wait_healthy(timeout=240)
        yield team
    finally:
        team.compose("down", "-v", "--remove-orphans", "--timeout", "20", timeout=180, check=False)
        leftovers = run(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"], timeout=60, check=False
        ).stdout.split()
        volumes = run(
            ["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={project}"],
            timeout=60,
            check=False,
        ).stdout.split()
        assert not leftovers and not volumes, f"compose down left {leftovers} {volumes}"


def inspect(kind: str, ref: str) -> dict:
    return json.loads(run(["docker", kind, "inspect", ref], timeout=60).stdout)[0]


def test_server_runs_as_non_root_behind_loopback_only_ports(stack):
    mlflow_id, db_id = stack.container("mlflow"), stack.container("db")
    assert run(["docker", "exec", mlflow_id, "id", "-u"], timeout=60).stdout.strip() == "10001"
    assert inspect("container", mlflow_id)["Config"]["User"] == "10001:10001"

    published = inspect("container", mlflow_id)["NetworkSettings"]["Ports"]["5000/tcp"]
    assert [(p["HostIp"], p["HostPort"]) for p in published] == [("127.0.0.1", str(stack.port))]
    assert not any(inspect("container", db_id)["NetworkSettings"]["Ports"].values()), "the database is published"
    # The password travels in PGPASSWORD only, never in the store URI.
    environment = inspect("container", mlflow_id)["Config"]["Env"]
    store = next(v for v in environment if v.startswith("MLFLOW_BACKEND_STORE_URI="))
    assert store == f"MLFLOW_BACKEND_STORE_URI=postgresql+psycopg2://{DB_USER}@db:5432/{DB_NAME}"
    assert DB_PASSWORD not in store

    for tag, title in (
        (MLFLOW_IMAGE, "mlci team MLflow tracking server"),
        (POSTGRES_IMAGE, "mlci team PostgreSQL (MLflow backend store)"),
    ):
        labels = inspect("image", tag)["Config"]["Labels"]
        assert labels["org.opencontainers.image.title"] == title
        assert labels["org.opencontainers.image.revision"] == stack.env["MLCI_REVISION"]
        assert labels["org.opencontainers.image.base.name"] == PYTHON_BASE
        assert labels["org.opencontainers.image.created"].endswith("Z")
    assert inspect("image", MLFLOW_IMAGE)["Config"]["Healthcheck"]["Test"][0] == "CMD"


def test_runs_models_and_proxied_artifacts_round_trip(stack, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    # Artifact URIs (mlflow-artifacts:/...) resolve against the tracking URI of the environment.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", stack.url)
    client = MlflowClient(tracking_uri=stack.url, registry_uri=stack.url)
    experiment_id = client.create_experiment(f"team-stack-{uuid.uuid4().hex[:6]}")
    run_ = client.create_run(experiment_id, tags={"mlci.commit": stack.env["MLCI_REVISION"]})
    run_id = run_.info.run_id
    assert run_.info.artifact_uri.startswith("mlflow-artifacts:/"), run_.info.artifact_uri

    client.log_param(run_id, "max_depth", "4")
    client.log_param(run_id, "learning_rate", "0.1")
    client.log_metric(run_id, "f1", 0.93, step=1)
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"f1": 0.93}))
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.onnx").write_bytes(os.urandom(4096))
    client.log_artifact(run_id, str(report), "reports")
    client.log_artifacts(run_id, str(model_dir), "model")
    client.set_terminated(run_id)

    name = f"team-stack-model-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    version = client.create_model_version(name, source=f"{run_.info.artifact_uri}/model", run_id=run_id)
    client.set_registered_model_alias(name, "candidate", version.version)

    # Read everything back through the server.
    fetched = client.get_run(run_id)
    assert fetched.data.params == {"max_depth": "4", "learning_rate": "0.1"}
    assert fetched.data.metrics == {"f1": 0.93}
    assert fetched.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(run_id)} == {"model", "reports"}
    downloaded = Path(client.download_artifacts(run_id, "reports/report.json", str(tmp_path / "dl")))
    assert json.loads(downloaded.read_text()) == {"f1": 0.93}
    model_copy = Path(client.download_artifacts(run_id, "model", str(tmp_path / "dl-model")))
    assert (model_copy / "model.onnx").read_bytes() == (model_dir / "model.onnx").read_bytes()

    by_alias = client.get_model_version_by_alias(name, "candidate")
    assert (by_alias.version, by_alias.run_id) == ("1", run_id)
    assert client.get_registered_model(name).aliases == {"candidate": "1"}

    # Stored where the stack says: rows in PostgreSQL, files in the server's artifacts volume.
    db_id, mlflow_id = stack.container("db"), stack.container("mlflow")
    query = f"SELECT count(*) FROM model_versions WHERE name = '{name}'"
    rows = run(["docker", "exec", db_id, "psql", "-U", DB_USER, "-d", DB_NAME, "-tAc", query], timeout=60)
    assert rows.stdout.strip() == "1"
    found = run(["docker", "exec", mlflow_id, "find", "/mlflow/artifacts", "-name", "report.json"], timeout=60)
    assert f"/{run_id}/artifacts/reports/report.json" in found.stdout


def test_data_survives_a_restart_of_the_stack(stack):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=stack.url)
    experiment_id = client.create_experiment(f"persisted-{uuid.uuid4().hex[:6]}")
    stack.compose("stop", "--timeout", "20", timeout=120)
    stack.compose("up", "-d", "--no-build", timeout=300)
    stack.wait_healthy(timeout=240)
    assert client.get_experiment(experiment_id).name.startswith("persisted-")
