"""`mlci build` against a real Docker engine: the images build offline, run read-only as non-root,
carry their labels, and a model-only change rebuilds only the model layer."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest

ROLES = ("--only", "api", "--only", "router")


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=300)


def layers(tag: str) -> list[str]:
    return json.loads(docker("image", "inspect", tag).stdout)[0]["RootFS"]["Layers"]


@pytest.fixture
def built(image_project):
    assert image_project.mlci("train").exit_code == 0
    result = image_project.mlci("build", *ROLES)
    assert result.exit_code == 0, result.stdout + result.stderr
    return image_project, image_project.report("build")


def test_api_image_runs_read_only_as_non_root_and_predicts(built, free_port):
    project, report = built
    api = report["images"]["api"]
    commit = project.git("rev-parse", "HEAD")
    assert api["tag"] == f"{project.config['project']}-api:1-{commit[:8]}"
    labels = api["labels"]
    assert labels["org.opencontainers.image.revision"] == commit
    assert labels["io.mlci.model.version"] == "1"
    assert labels["io.mlci.model.name"] == "breast-cancer-classifier"
    assert labels["io.mlci.model.run_id"] == project.report("train")["run_id"]
    assert labels["io.mlci.data.sha256"] == project.report("train")["data"]["sha256"]
    # The bundle digest comes from the registry (not from the baked files), as a label and as the
    # environment the API checks its bundle against.
    registered = project.client().get_model_version("breast-cancer-classifier", "1").tags["mlci.bundle.sha256"]
    assert labels["io.mlci.bundle.sha256"] == registered == report["bundle_sha256"]
    assert registered == project.report("package")["bundle_sha256"]
    env = json.loads(docker("image", "inspect", api["tag"]).stdout)[0]["Config"]["Env"]
    assert f"MLCI_BUNDLE_SHA256={registered}" in env
    assert api["size"] < 350e6

    port = free_port()
    name = f"{project.config['project']}-api-test"
    docker("run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp", "-p", f"127.0.0.1:{port}:8000", api["tag"])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("API container not ready: " + docker("logs", name, check=False).stderr[-2000:])
        reference = json.loads((project.root / "build" / "bundle" / "reference.json").read_text())
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"records": reference["records"]}).json()
        assert [p["label"] for p in answer["predictions"]] == [e["label"] for e in reference["expected"]]
        assert answer["model"] == {"name": "breast-cancer-classifier", "version": "1"}
        assert docker("exec", name, "id", "-u").stdout.strip() == "10001"
        assert docker("exec", name, "sh", "-c", "touch /app/x", check=False).returncode != 0  # read-only
        inspected = json.loads(docker("inspect", name).stdout)[0]
        assert inspected["Config"]["Healthcheck"]["Test"][-1] == "mlci.api.healthcheck"
        # An altered bundle in the same image is refused at start: exit 2 naming the file.
        altered = docker(
            "run",
            "--rm",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--entrypoint",
            "sh",
            api["tag"],
            "-c",
            "cp -r /app/bundle /tmp/b && echo ' ' >> /tmp/b/reference.json && MLCI_BUNDLE=/tmp/b python3 -m mlci.api",
            check=False,
        )
        assert altered.returncode == 2 and "reference.json differs" in altered.stderr, altered.stderr
        # No compilers or build tools in the final image.
        tools = docker("exec", name, "sh", "-c", "command -v gcc cc make pip apt-get || true", check=False).stdout
        assert tools.split() in ([], ["/usr/bin/apt-get"])
    finally:
        docker("rm", "-f", name, check=False)


def test_router_image_rejects_an_invalid_config(built):
    _, report = built
    router = report["images"]["router"]["tag"]
    # The image's own placeholder config is valid: nginx -t passes in a throw-away container.
    assert docker("run", "--rm", "--entrypoint", "nginx", router, "-t", check=False).returncode == 0
    invalid = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "-e",
            "MLCI_ROUTER_CONF=server { listen 8080; bogus_directive on; }",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--tmpfs",
            "/etc/mlci:uid=10001,gid=10001",
            router,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert invalid.returncode == 2
    checked = subprocess.run(
        ["docker", "run", "--rm", "-i", router, "check"],
        input="server { listen 8080; }\nbogus;\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 1 and "unknown directive" in checked.stderr
    assert "bogus_directive" in invalid.stderr and "not starting" in invalid.stderr


def test_model_only_change_rebuilds_only_the_model_layer(built):
    project, first = built
    project.edit(**{"model.params.max_depth": 5})
    project.commit("shallower trees")
    assert project.mlci("train").exit_code == 0
    rebuilt = project.mlci("build", "--only", "api")
    assert rebuilt.exit_code == 0, rebuilt.stderr
    second = project.report("build")["images"]["api"]
    assert second["tag"].split(":")[1].startswith("2-")
    before, after = layers(first["images"]["api"]["tag"]), layers(second["tag"])
    assert len(before) == len(after)
    # Everything up to the bundle layer is shared: dependencies, code, user; only the model differs.
    assert before[:-1] == after[:-1] and before[-1] != after[-1]
    assert second["cached_steps"] >= 13  # every step before the bundle COPY came from the cache


def test_no_docker_engine_is_exit_3(image_project, monkeypatch):
    assert image_project.mlci("train").exit_code == 0
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = image_project.mlci("build")
    assert result.exit_code == 3
    assert "no Docker engine answers" in result.stderr and "Traceback" not in result.stderr


def test_unknown_version_is_exit_2(image_project):
    assert image_project.mlci("train").exit_code == 0
    result = image_project.mlci("build", "--version", "9")
    assert result.exit_code == 2 and "has no version 9" in result.stderr


def test_a_bundle_failing_parity_never_becomes_an_image(image_project):
    # GradientBoosting converts only in float32 (~1e-7 off): an absurd tolerance makes parity fail.
    image_project.edit(
        **{
            "model.estimator": "sklearn.ensemble.GradientBoostingClassifier",
            "model.params": {"n_estimators": 10},
            "package.parity_tolerance": 1e-12,
        }
    )
    image_project.commit("gradient boosting")
    assert image_project.mlci("train").exit_code == 0
    result = image_project.mlci("build", *ROLES)
    assert result.exit_code == 2, result.stdout + result.stderr  # the config's model cannot be served as trained
    assert "does not reproduce scikit-learn" in result.stderr
    name = image_project.config["project"]
    assert docker("images", "-q", f"{name}-api").stdout.strip() == ""


def test_dashboard_image_runs_read_only_as_non_root(image_project, free_port):
    assert image_project.mlci("train").exit_code == 0
    result = image_project.mlci("build", "--only", "dashboard")
    assert result.exit_code == 0, result.stdout + result.stderr
    dashboard = image_project.report("build")["images"]["dashboard"]
    assert dashboard["labels"]["org.opencontainers.image.revision"] == image_project.git("rev-parse", "HEAD")
    port = free_port()
    name = f"{image_project.config['project']}-dashboard-test"
    docker(
        "run",
        "-d",
        "--name",
        name,
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-e",
        "MLCI_API_URL=http://127.0.0.1:9",
        "-p",
        f"127.0.0.1:{port}:8501",
        dashboard["tag"],
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("dashboard container not healthy: " + docker("logs", name, check=False).stderr[-2000:])
        assert docker("exec", name, "id", "-u").stdout.strip() == "10001"
        # No training stack in it: the Models page uses mlflow-skinny, predictions come from the API.
        present = docker(
            "exec",
            name,
            "python3",
            "-c",
            "import importlib.util as u; print([m for m in ('sklearn', 'scipy', 'onnxruntime', 'flask') "
            "if u.find_spec(m)], bool(u.find_spec('mlflow')))",
        ).stdout.strip()
        assert present == "[] True"
    finally:
        docker("rm", "-f", name, check=False)
