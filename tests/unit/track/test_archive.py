"""Issue 15 item 4: every report of a build on the MLflow run of its version, with real stores
(embedded SQLite, and a real `mlflow server` with proxied artifacts)."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from mlflow import MlflowClient

from mlci.core.errors import Unreachable
from mlci.track import archive

BUILD_URL = "https://jenkins.example.com/job/ml/job/main/42/"
TESTS = """\
import mlci.core.errors


def test_exit_codes():
    assert mlci.core.errors.Unreachable.exit_code == 3
"""


def _with_tests(project) -> None:
    """A project whose `mlci test` runs one real test with coverage (JUnit + coverage XML)."""
    (project.root / "tests").mkdir()
    (project.root / "tests" / "test_small.py").write_text(TESTS)
    project.edit(**{"tests.paths": ["tests/test_small.py"], "tests.coverage": ["mlci"]})
    project.commit("tests")


def _artifact(client, run_id: str, path: str) -> bytes:
    folder = Path(client.download_artifacts(run_id, path))
    return folder.read_bytes()


def _listing(client, run_id: str, folder: str) -> set[str]:
    return {f.path for f in client.list_artifacts(run_id, folder)}


def _run_the_line(project, tmp_path, client_of) -> tuple[MlflowClient, str]:
    _with_tests(project)
    assert project.mlci("test").exit_code == 0
    trained = project.mlci("train")
    assert trained.exit_code == 0, trained.stderr
    assert project.mlci("gate").exit_code == 0
    packaged = project.mlci("package", "--out", str(tmp_path / "bundle"))
    assert packaged.exit_code == 0, packaged.stderr
    return client_of(), project.report("train")["run_id"]


def _check_reports_on_run(project, tmp_path, client, run_id: str) -> None:
    reports = project.root / "reports"
    expected = {
        "reports/test/junit.xml": reports / "junit.xml",
        "reports/test/coverage.xml": reports / "coverage.xml",
        "reports/train/data.json": reports / "data.json",
        "reports/train/data-profile.json": reports / "data-profile.json",
        "reports/gate/gate.json": reports / "gate.json",
        "reports/package/package.json": reports / "package.json",
        "reports/package/metadata.json": tmp_path / "bundle" / "metadata.json",
    }
    for artifact, local in expected.items():
        assert _artifact(client, run_id, artifact) == local.read_bytes(), artifact
    gate = project.report("gate")
    assert _artifact(client, run_id, "reports/gate/gate-table.txt").decode() == gate["table"]
    parity = __import__("json").loads(_artifact(client, run_id, "reports/package/parity.json"))
    assert parity["max_abs_proba_diff"] == project.report("package")["parity"]["max_abs_proba_diff"]
    assert project.report("data")["passed"] is True
    assert {f["name"] for f in project.report("data-profile")["features"]} == set(project.config["data"]["features"])


def test_train_gate_package_archive_every_report_on_the_run(project, tmp_path, monkeypatch):
    monkeypatch.setenv("BUILD_URL", BUILD_URL)
    monkeypatch.setenv("JOB_NAME", "ml/main")
    monkeypatch.setenv("BUILD_NUMBER", "42")
    client, run_id = _run_the_line(project, tmp_path, project.client)
    _check_reports_on_run(project, tmp_path, client, run_id)
    # The run links back to the build: a tag, and the description the MLflow UI shows on top.
    tags = client.get_run(run_id).data.tags
    assert tags["jenkins.build_url"] == BUILD_URL
    assert BUILD_URL in tags["mlflow.note.content"]
    # Idempotent: a second gate replaces its files, it does not add copies.
    assert project.mlci("gate").exit_code == 0
    assert _listing(client, run_id, "reports/gate") == {"reports/gate/gate.json", "reports/gate/gate-table.txt"}


def test_test_reports_of_another_commit_are_not_archived(project):
    _with_tests(project)
    assert project.mlci("test").exit_code == 0
    project.commit("a later commit, not tested")
    assert project.mlci("train").exit_code == 0
    client, run_id = project.client(), project.report("train")["run_id"]
    assert _listing(client, run_id, "reports/test") == set()
    assert "reports/train/data.json" in _listing(client, run_id, "reports/train")


def test_an_artifact_store_that_refuses_the_gate_report_exits_3(project):
    assert project.mlci("train").exit_code == 0
    train = project.report("train")
    run_dir = Path(urlparse(project.client().get_run(train["run_id"]).info.artifact_uri).path)
    assert run_dir.is_relative_to(project.root / ".mlci")  # the embedded store's own artifacts
    (run_dir / "reports").mkdir(parents=True, exist_ok=True)
    (run_dir / "reports" / "gate").write_text("a file where the folder goes: the store cannot write there")
    gated = project.mlci("gate")
    assert gated.exit_code == 3
    assert "could not archive reports/gate/gate.json to MLflow run" in gated.stderr
    assert "run the command again" in gated.stderr
    assert "Traceback" not in gated.stderr + gated.stdout


def test_best_effort_archive_to_a_dead_server_warns_and_required_raises(free_port, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    dead = MlflowClient(tracking_uri=f"http://127.0.0.1:{free_port()}")
    report = tmp_path / "build.json"
    report.write_text("{}\n")
    started = time.monotonic()
    done = archive.attach(dead, "0" * 32, "build", {"build.json": report}, required=False)
    assert done.stored == [] and done.failed and done.failed[0].startswith("build.json: ")
    assert "warning: reports/build/build.json is not on MLflow run" in capsys.readouterr().out
    with pytest.raises(Unreachable, match=re.escape("could not archive reports/build/build.json")):
        archive.attach(dead, "0" * 32, "build", {"build.json": report}, required=True)
    assert time.monotonic() - started < 60


def test_an_oversized_report_is_skipped_and_tagged(project, tmp_path, monkeypatch):
    assert project.mlci("train").exit_code == 0
    client, run_id = project.client(), project.report("train")["run_id"]
    monkeypatch.setattr(archive, "MAX_BYTES", 10)  # the bound, made small; the store stays real
    done = archive.attach(client, run_id, "build", {"build.json": b"x" * 11}, required=True)
    assert done.stored == [] and "larger than" in done.failed[0]
    assert client.get_run(run_id).data.tags["mlci.archive.build.build.json"] == "failed"
    assert _listing(client, run_id, "reports/build") == set()


def test_a_deploy_record_lands_on_its_versions_run(project):
    assert project.mlci("train").exit_code == 0
    record = {"env": "staging", "kind": "deploy", "deployed_at": "2026-11-27T14:00:00+00:00", "model_version": "1"}
    from mlci.core.config import load

    done = archive.deploy_record(load(project.config_file), record)
    assert done is not None and done.stored == ["reports/deploy/staging-deploy-2026-11-27T14-00-00-00-00.json"]
    content = __import__("json").loads(_artifact(project.client(), project.report("train")["run_id"], done.stored[0]))
    assert content == record


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory, free_port):
    """A real tracking server with proxied artifacts (as the team stack runs it)."""
    root = tmp_path_factory.mktemp("mlflow-archive-server")
    port = free_port()
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
    command += ["--artifacts-destination", str(root / "artifacts")]
    log = open(root / "server.log", "w")  # noqa: SIM115 - the server process owns it until the end
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env={**os.environ})
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(uri + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("mlflow server did not start:\n" + (root / "server.log").read_text()[-2000:])
    yield uri
    process.terminate()
    process.wait(timeout=20)
    log.close()


@pytest.mark.server
def test_reports_reach_the_run_through_a_tracking_server(project, tmp_path, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    client, run_id = _run_the_line(
        project, tmp_path, lambda: MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    )
    assert client.get_run(run_id).info.artifact_uri.startswith("mlflow-artifacts:")
    _check_reports_on_run(project, tmp_path, client, run_id)
