"""Blue/green deploys on a real Docker engine and Nginx: staging and production side by side, a
switch without a lost request, rollback, and every fault of the deploy issue."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from mlci.deploy import router as router_module
from tests.helpers.docker_line import Line, docker

REPO = Path(__file__).resolve().parents[3]
DRAIN = 1.0


class DeployLine(Line):
    """The demo project with two model versions built into API images, and two environments."""

    def __init__(self, project):
        super().__init__(project)
        self.images: dict[str, str] = {}

    def served(self, env: str) -> str:
        return str(httpx.get(f"{self.url(env)}/version", timeout=5).json()["version"])

    def alias(self, env: str) -> str | None:
        version = self.project.client().get_registered_model("breast-cancer-classifier").aliases.get(env)
        return None if version is None else str(version)

    def derived(self, tag: str, dockerfile: str) -> str:
        """An image made from version 1's: how a broken build would look to the deploy."""
        image = f"{self.name}-api:{tag}"
        docker("build", "-t", image, "-", input=f"FROM {self.images['1']}\n{dockerfile}\n")
        return image


@pytest.fixture(scope="module")
def line(tmp_path_factory, base_images, project_factory, build_sources, free_ports):
    copy_sources, remove_images = build_sources
    project = project_factory(
        tmp_path_factory.mktemp("deploy"), REPO / "mlci.yaml", [REPO / "data" / "breast_cancer.csv"]
    )
    copy_sources(project.root)
    name = f"it-{uuid.uuid4().hex[:8]}"
    staging, staging_preview, production, production_preview = free_ports(4)
    checks = {"ready_timeout": 30, "verify_seconds": 2.5}
    project.edit(
        project=name,
        environments={
            "staging": {
                "port": staging,
                "preview_port": staging_preview,
                "drain_seconds": DRAIN,
                "checks": dict(checks),
            },
            "production": {
                "port": production,
                "preview_port": production_preview,
                "drain_seconds": DRAIN,
                "checks": dict(checks),
                # These tests are about the blue/green mechanics; the policy has its own test below.
                "requires": [],
            },
        },
    )
    project.commit("build sources")
    monkeypatch = pytest.MonkeyPatch()
    # mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI: an earlier module's in-process command must
    # not point this project's training at its store.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for key, value in base_images.items():
        monkeypatch.setenv(key, value)
    line = DeployLine(project)
    try:
        for version, depth in (("1", 8), ("2", 5)):
            project.edit(**{"model.params.max_depth": depth})
            project.commit(f"depth {depth}")
            assert line.mlci("train").exit_code == 0
            roles = ("--only", "api") + (("--only", "router") if version == "1" else ())
            built = line.mlci("build", *roles)
            assert built.exit_code == 0, built.output
            line.images[version] = project.report("build")["images"]["api"]["tag"]
        yield line
    finally:
        for env in ("staging", "production"):
            line.mlci("down", "--env", env)
            docker("volume", "rm", f"{name}-{env}-state", check=False)  # the history outlives down
        monkeypatch.undo()
        remove_images(name)


def reference_record(line: DeployLine) -> dict:
    return json.loads((line.project.root / "build" / "bundle" / "reference.json").read_text())["records"][0]


def deploy(line: DeployLine, env: str, *args: str, expect: int = 0):
    result = line.mlci("deploy", "--env", env, *args)
    assert result.exit_code == expect, result.output
    return result


@pytest.fixture(scope="module")
def production_v1(line):
    deploy(line, "production", "--version", "1")
    return line


def test_staging_and_production_side_by_side_isolated(line):
    deploy(line, "staging", "--version", "2")
    deploy(line, "production", "--version", "1")
    assert (line.served("staging"), line.served("production")) == ("2", "1")
    assert (line.alias("staging"), line.alias("production")) == ("2", "1")
    networks = {
        env: json.loads(docker("inspect", f"{line.name}-{env}-blue").stdout)[0]["NetworkSettings"]["Networks"]
        for env in ("staging", "production")
    }
    assert set(networks["staging"]) == {f"{line.name}-staging"}
    assert set(networks["production"]) == {f"{line.name}-production"}
    ports = json.loads(docker("inspect", f"{line.name}-production-router").stdout)[0]["HostConfig"]["PortBindings"]
    assert all(binding["HostIp"] == "127.0.0.1" for bindings in ports.values() for binding in bindings)
    report = json.loads((line.project.root / "reports" / "deploy-production.json").read_text())
    assert report["current"]["model_version"] == "1" and report["current"]["colour"] == "blue"
    status = line.mlci("status", "--env", "production", "--json")
    env = json.loads(status.output)[0]
    assert env["live"] == "blue" and env["slots"]["blue"]["model_version"] == "1"


def test_deploys_and_rollback_under_load_lose_no_request(production_v1, load_generator):
    line = production_v1
    switches: list[tuple[float, str]] = [(0.0, line.served("production"))]
    with load_generator(line.url("production"), reference_record(line)) as load:
        for version in ("2", "1", "2"):
            deploy(line, "production", "--version", version)
            switches.append((time.monotonic(), version))
            assert line.alias("production") == version
        rolled = line.mlci("rollback", "--env", "production")
        assert rolled.exit_code == 0, rolled.output
        switches.append((time.monotonic(), "1"))
        time.sleep(DRAIN + 0.5)
    assert load.failures == []
    assert len(load.results) > 200
    assert line.served("production") == "1" and line.alias("production") == "1"

    # Every answer came from a version live during the request. A switch happens inside its deploy
    # command, so version i may serve from the end of deploy i-1 until the end of deploy i+1 plus
    # the drain of the connections pooled to it.
    times = [at for at, _ in switches]

    def live_during(start: float, end: float) -> set[str]:
        versions = set()
        for i, (_, version) in enumerate(switches):
            begin = times[i - 1] if i else float("-inf")
            finish = times[i + 1] + DRAIN if i + 1 < len(times) else float("inf")
            if begin <= end and start <= finish:
                versions.add(version)
        return versions

    stale = [(s, e, v) for s, e, _, v in load.results if v not in live_during(s, e)]
    assert stale == []
    assert {v for *_, v in load.results} == {"1", "2"}


def test_rollback_with_no_previous_colour(line):
    line.mlci("down", "--env", "staging")
    deploy(line, "staging", "--version", "1")
    result = line.mlci("rollback", "--env", "staging")
    assert result.exit_code == 2
    assert "no previous colour running and no earlier deploy" in result.output
    assert line.live("staging") == "blue.sock" and line.served("staging") == "1"


def fault(line: DeployLine, load_generator, *args: str, expect: int, message: str):
    """Deploy something broken to production under load: it must fail clearly, with production
    still on its colour and version, and not one failed request."""
    live, version = line.live("production"), line.served("production")
    with load_generator(line.url("production"), reference_record(line), connections=2) as load:
        result = deploy(line, "production", *args, expect=expect)
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert load.failures == [] and len(load.results) > 20
    assert line.live("production") == live and line.served("production") == version
    assert line.alias("production") == version
    return result


def test_new_container_exits_at_start(production_v1, load_generator):
    image = production_v1.derived("exits", "ENV MLCI_BUNDLE=/nonexistent")
    fault(production_v1, load_generator, "--image", image, expect=1, message="exited at start")


def test_new_container_never_ready(production_v1, monkeypatch, load_generator):
    line = production_v1
    image = line.derived("hangs", 'CMD ["sleep", "infinity"]')
    env = line.env("production")
    line.project.edit(**{"environments.production.checks": {"ready_timeout": 3, "verify_seconds": 2.5}})
    try:
        fault(line, load_generator, "--image", image, expect=1, message="did not become ready within 3 s")
    finally:
        line.project.edit(**{"environments.production.checks": env["checks"]})


def test_smoke_test_gets_wrong_outputs(production_v1, load_generator):
    # An image that claims version 1 but serves version 2's model (a mislabelled retag): its own
    # warm-up passes, the deploy's smoke test through the preview listener must not.
    line = production_v1
    image = f"{line.name}-api:mislabelled"
    docker("build", "-t", image, "-", input=f"FROM {line.images['2']}\nLABEL io.mlci.model.version=1\n")
    fault(line, load_generator, "--image", image, expect=1, message="smoke test: /version of the new slot names")


def test_invalid_router_config_is_refused(production_v1, monkeypatch, load_generator):
    original = router_module.render
    monkeypatch.setattr(
        "mlci.deploy.orchestrate.render", lambda *a: original(*a).replace("proxy_pass ", "proxy_passs ", 1)
    )
    fault(production_v1, load_generator, "--version", "2", expect=1, message="the rendered router config is invalid")


def hold_lock(line: DeployLine, env: str, holder: dict) -> subprocess.Popen:
    """Another machine's deploy holding the environment: its lock container, on the same engine."""
    image = docker("inspect", "-f", "{{.Image}}", f"{line.name}-{env}-router").stdout.strip()
    name = f"{line.name}-{env}-lock"
    label = f"io.mlci.lock.holder={json.dumps(holder)}"
    command = ["docker", "run", "-i", "--rm", "--name", name, "--label", label, "--network", "none"]
    process = subprocess.Popen([*command, "--entrypoint", "sh", image, "-c", "cat >/dev/null"], stdin=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while docker("inspect", "-f", "{{.State.Running}}", name, check=False).stdout.strip() != "true":
        assert time.monotonic() < deadline and process.poll() is None, "the lock container did not start"
        time.sleep(0.1)
    return process


def test_two_deploys_at_once(production_v1, load_generator):
    line = production_v1
    holder = hold_lock(line, "production", {"by": "alice", "build": "job/7"})
    try:
        result = fault(line, load_generator, "--version", "2", "--lock-timeout", "1", expect=1, message="is locked by")
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert "alice (build job/7)" in result.output
    deploy(line, "production", "--version", "1")  # released: the next deploy goes through


def test_unreachable_docker_engine(production_v1, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = production_v1.mlci("deploy", "--env", "production", "--version", "2")
    assert result.exit_code == 3 and "no Docker engine answers" in result.output


def test_missing_router_is_recreated_on_the_live_colour(production_v1):
    line = production_v1
    live = line.live("production")
    docker("rm", "-f", f"{line.name}-production-router")
    result = deploy(line, "production", "--version", "2")
    assert "created" in result.output
    assert line.served("production") == "2" and line.live("production") != live
    deploy(line, "production", "--version", "1")  # leave production as the other tests expect it


def test_rollback_never_switches_to_a_failed_deploy_left_in_the_idle_slot(production_v1):
    line = production_v1
    deploy(line, "production", "--version", "2")
    deploy(line, "production", "--version", "1")
    image = f"{line.name}-api:mislabelled-2"
    docker("build", "-t", image, "-", input=f"FROM {line.images['2']}\nLABEL io.mlci.model.version=1\n")
    deploy(line, "production", "--image", image, expect=1)  # fails its smoke test, stays in the idle slot
    rolled = line.mlci("rollback", "--env", "production")
    assert rolled.exit_code == 0, rolled.output
    assert "redeploying" in rolled.output and line.served("production") == "2" and line.alias("production") == "2"
    assert (
        docker(
            "inspect", "-f", "{{.Config.Image}}", f"{line.name}-production-{line.live('production')[:-5]}"
        ).stdout.strip()
        == line.images["2"]
    )


def test_a_rollback_that_fails_verification_switches_back(production_v1, monkeypatch):
    line = production_v1
    deploy(line, "production", "--version", "1")  # the idle slot now holds version 2, which served before
    live = line.live("production")

    def failing_verify(*args, **kwargs):
        from mlci.core.errors import CheckFailed

        raise CheckFailed("verification through the router failed: 3 error(s)")

    monkeypatch.setattr("mlci.deploy.checks.verify", failing_verify)
    result = line.mlci("rollback", "--env", "production")
    assert result.exit_code == 1
    assert f"rollback of production failed; live stays on {live[:-5]}" in result.output
    assert line.live("production") == live and line.served("production") == "1" and line.alias("production") == "1"
    report = json.loads((line.project.root / "reports" / "deploy-production.json").read_text())
    assert report["last"]["kind"] == "rollback" and report["last"]["result"] == "rolled back"
    assert report["current"]["model_version"] == "1"


def test_stopped_router_is_started_again(production_v1):
    line = production_v1
    docker("stop", f"{line.name}-production-router")
    result = deploy(line, "production", "--version", "1")
    assert f"{line.name}-production-router on http://127.0.0.1:" in result.output and ": started" in result.output
    assert line.served("production") == "1"


def test_down_removes_everything(line):
    deploy(line, "staging", "--version", "1")
    result = line.mlci("down", "--env", "staging")
    assert result.exit_code == 0, result.output
    left = docker(
        "ps", "-a", "--filter", "label=io.mlci.env=staging", "--filter", f"label=io.mlci.project={line.name}", "-q"
    ).stdout.strip()
    assert left == ""
    assert docker("network", "inspect", f"{line.name}-staging", check=False).returncode != 0
    assert line.alias("staging") is None


def test_production_policy_refuses_an_ungated_version_and_records_an_override(production_v1, monkeypatch):
    line = production_v1
    deploy(line, "production", "--version", "1")  # a known state to compare with
    config = line.project.config_file.read_text()
    line.project.edit(**{"environments.production.requires": ["gate", "staging", "approver"]})
    monkeypatch.setenv("BUILD_USER_ID", "carol")
    try:
        live, served = line.live("production"), line.served("production")
        result = deploy(line, "production", "--version", "2", expect=1)
        assert "v2 may not be deployed to production" in result.output
        assert "gate: v2 has not passed the gate; to meet it: mlci gate --version 2" in result.output
        assert "approver: nobody is named" in result.output and "Traceback" not in result.output
        assert (line.live("production"), line.served("production"), line.alias("production")) == (live, served, "1")
        assert deploy(line, "production", "--version", "2", "--force", expect=2).output.count("--reason") >= 1

        result = deploy(line, "production", "--version", "2", "--force", "--reason", "incident 42")
        assert "WARNING: v2 goes to production WITHOUT meeting its policy" in result.output
        assert line.served("production") == "2"
        tags = line.project.client().get_model_version("breast-cancer-classifier", "2").tags
        assert tags["mlci.production.forced"] == "incident 42" and tags["mlci.production.forced_by"] == "carol"
        assert "gate" in tags["mlci.production.skipped"] and "mlci.production.verified_at" in tags
        record = json.loads((line.project.root / "reports" / "deploy-production.json").read_text())["last"]
        assert record["policy"]["forced"] and record["policy"]["force_reason"] == "incident 42"
    finally:
        line.project.config_file.write_text(config)
    deploy(line, "production", "--version", "1")


def test_an_abort_after_the_switch_puts_live_traffic_back(production_v1):
    """Jenkins aborts with SIGTERM: during the verification window the new colour is not trusted yet,
    so the abort must leave production on the colour and version it served."""
    line = production_v1
    deploy(line, "production", "--version", "1")
    live, served = line.live("production"), line.served("production")
    process = subprocess.Popen(
        [
            str(REPO / ".venv" / "bin" / "mlci"),
            "--config",
            str(line.project.config_file),
            "deploy",
            "--env",
            "production",
            "--version",
            "2",
        ],
        cwd=line.project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    assert process.stdout is not None
    for text in process.stdout:
        seen.append(text)
        if "(no reload)" in text:  # switched: now in the verification window
            process.send_signal(signal.SIGTERM)
            break
    process.stdout.read()
    assert process.wait(timeout=60) == 128 + signal.SIGTERM, "".join(seen)
    assert (line.live("production"), line.served("production"), line.alias("production")) == (live, served, "1")
