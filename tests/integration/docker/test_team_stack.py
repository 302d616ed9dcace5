"""The team stack (docker/compose.team.yaml) on a real Docker engine: PostgreSQL + an MLflow
tracking server with proxied artifacts, built offline from the local Debian base, used by the
MLflow client of this venv exactly as a Jenkins agent would use it.

Slow the first time (base image ~3 min, MLflow image ~3 min); Docker's layer cache makes the
next runs take about a minute (mostly the server's start).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

# A cold machine builds a base image and two service images inside the first test
# (the session fixture `team_stack` in conftest.py, shared with test_team_line.py).
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture
def stack(team_stack):
    return team_stack


def docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"docker {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def inspect(kind: str, ref: str) -> dict:
    return json.loads(docker(kind, "inspect", ref))[0]


def test_server_runs_as_non_root_behind_loopback_only_ports(stack):
    mlflow_id, db_id = stack.container("mlflow"), stack.container("db")
    assert docker("exec", mlflow_id, "id", "-u").strip() == "10001"
    assert inspect("container", mlflow_id)["Config"]["User"] == "10001:10001"

    published = inspect("container", mlflow_id)["NetworkSettings"]["Ports"]["5000/tcp"]
    assert [(p["HostIp"], p["HostPort"]) for p in published] == [("127.0.0.1", str(stack.port))]
    assert not any(inspect("container", db_id)["NetworkSettings"]["Ports"].values()), "the database is published"
    # The password travels in PGPASSWORD only, never in the store URI.
    environment = inspect("container", mlflow_id)["Config"]["Env"]
    store = next(v for v in environment if v.startswith("MLFLOW_BACKEND_STORE_URI="))
    assert store == f"MLFLOW_BACKEND_STORE_URI=postgresql+psycopg2://{stack.db_user}@db:5432/{stack.db_name}"
    assert stack.db_password not in store

    for tag, title in (
        (stack.mlflow_image, "mlci team MLflow tracking server"),
        (stack.postgres_image, "mlci team PostgreSQL (MLflow backend store)"),
    ):
        labels = inspect("image", tag)["Config"]["Labels"]
        assert labels["org.opencontainers.image.title"] == title
        assert labels["org.opencontainers.image.revision"] == stack.env["MLCI_REVISION"]
        assert labels["org.opencontainers.image.base.name"] == stack.base_image
        assert labels["org.opencontainers.image.created"].endswith("Z")
    assert inspect("image", stack.mlflow_image)["Config"]["Healthcheck"]["Test"][0] == "CMD"


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
    rows = docker("exec", db_id, "psql", "-U", stack.db_user, "-d", stack.db_name, "-tAc", query)
    assert rows.strip() == "1"
    found = docker("exec", mlflow_id, "find", "/mlflow/artifacts", "-name", "report.json")
    assert f"/{run_id}/artifacts/reports/report.json" in found


def test_data_survives_a_restart_of_the_stack(stack):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=stack.url)
    experiment_id = client.create_experiment(f"persisted-{uuid.uuid4().hex[:6]}")
    stack.compose("stop", "--timeout", "20", timeout=120)
    stack.compose("up", "-d", "--no-build", timeout=300)
    stack.wait_healthy(timeout=240)
    assert client.get_experiment(experiment_id).name.startswith("persisted-")
