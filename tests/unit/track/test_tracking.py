"""mlci.track.tracking: the MLflow connection. A real `mlflow server` process started by the test, one
that is not there, and the workspace store a Jenkins build may not use."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mlci.core import config as config_module
from mlci.track import tracking

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory, free_port):
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    process = subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(root / "server.log", "w"),  # noqa: SIM115 - the server process owns it until the end
        env=env,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(uri + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
        if process.poll() is not None:
            pytest.fail("mlflow server exited:\n" + (root / "server.log").read_text()[-2000:])
    else:
        process.kill()
        pytest.fail("mlflow server did not answer /health within 90 s")
    yield uri
    process.terminate()
    process.wait(timeout=20)


def test_train_gate_status_against_a_tracking_server(project, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    trained = project.mlci("train")
    assert trained.exit_code == 0, trained.stderr
    assert mlflow_server in trained.stdout
    assert project.mlci("gate").exit_code == 0
    listing = json.loads(project.mlci("status", "--json").stdout)
    assert listing["tracking_uri"] == mlflow_server
    assert listing["versions"][0]["aliases"] == ["candidate"]
    assert not (project.root / ".mlci").exists(), "nothing may be written to the embedded store"
    # Artifacts went through the server's proxy, not to a local folder.
    runs = httpx.post(
        f"{mlflow_server}/api/2.0/mlflow/runs/search",
        json={"experiment_ids": [project.report("train")["experiment_id"]]},
    ).json()["runs"]
    assert runs[0]["info"]["artifact_uri"].startswith("mlflow-artifacts:")


def test_unreachable_tracking_server_fails_fast_with_exit_3(project, monkeypatch, free_port):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    for command in (["train"], ["gate", "--version", "1"], ["status"], ["promote", "1", "--to", "production"]):
        started = time.monotonic()
        result = project.mlci(*command)
        elapsed = time.monotonic() - started
        assert result.exit_code == 3, (command, result.stderr)
        assert "is unreachable" in result.stderr and "MLFLOW_TRACKING_URI" in result.stderr
        assert "Traceback" not in result.stderr
        assert elapsed < 15, f"{command} took {elapsed:.1f} s"
    assert not (project.root / ".mlci").exists()


def test_server_dying_mid_command_is_reported_as_unreachable(project, monkeypatch):
    """A server that answers /health but then refuses the API is exit 3, not a traceback."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class HealthOnly(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/health":
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"OK")
            else:
                self.connection.close()  # drop the connection: what a crashed server looks like

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), HealthOnly)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    try:
        result = project.mlci("status")
    finally:
        server.shutdown()
    assert result.exit_code == 3, result.stderr
    assert "stopped answering" in result.stderr and "Traceback" not in result.stderr


JENKINS = "https://jenkins.example/"


@pytest.mark.parametrize(
    "command",
    [["train"], ["gate", "--version", "1"], ["status"], ["promote", "1", "--to", "production"]],
)
def test_jenkins_with_the_embedded_store_is_refused_with_the_team_stack_instructions(project, monkeypatch, command):
    monkeypatch.setenv("JENKINS_URL", JENKINS)
    result = project.mlci(*command)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "store inside its workspace" in result.stderr
    assert "The team stack" in result.stderr and "MLFLOW_TRACKING_URI" in result.stderr
    assert "tracking.allow_local_store: true" in result.stderr and "Traceback" not in result.stderr
    assert not (project.root / ".mlci").exists(), "nothing may be created in the refused store"


def test_allow_local_store_says_the_user_means_it(project, monkeypatch):
    monkeypatch.setenv("JENKINS_URL", JENKINS)
    project.edit(**{"tracking.allow_local_store": True})
    trained = project.mlci("train")
    assert trained.exit_code == 0, trained.stderr
    assert project.mlci("status").exit_code == 0


def test_outside_jenkins_the_embedded_store_is_the_default(project):
    assert project.mlci("train").exit_code == 0


def test_which_stores_count_as_inside_the_workspace(project, monkeypatch, tmp_path):
    config = config_module.load(project.config_file)
    assert tracking.local_store(config) == (project.root / ".mlci" / "mlflow.db").resolve()
    for uri, inside in (
        (f"sqlite:///{project.root / 'other.db'}", True),
        (f"file://{project.root / 'mlruns'}", True),
        (f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}", False),  # a file the team put elsewhere
        ("http://mlflow.example:5000", False),
        ("postgresql://mlflow@db.example/mlflow", False),
    ):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        assert (tracking.local_store(config) is not None) is inside, uri
    monkeypatch.setenv("JENKINS_URL", JENKINS)
    tracking.require_shared_store(config)  # the last URI, a database server: accepted
