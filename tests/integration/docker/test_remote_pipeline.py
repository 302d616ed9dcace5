"""Issue 14 end to end: the build engine pushes to a real registry (TLS, htpasswd); staging and
production are two other Docker hosts, reached over SSH (tests/helpers/topology.py), that pull by
digest. One pipeline across them, a switch under load, a rollback, and the faults: a registry that
is down, an image missing from the registry or with another digest, a host that is unreachable,
refuses the key, or whose engine stops in the middle of a deploy.

Tests run in file order and share one project (module scope): each builds on the state the previous
one left, as the line does in real life."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from mlci.cli.main import cli
from tests.helpers import topology as topo
from tests.helpers.files import copy_checkout

REPO = Path(__file__).resolve().parents[3]
MLCI = str(Path(sys.executable).parent / "mlci")
PORT, PREVIEW = 8080, 18080  # inside each namespace: its own ports, nothing else listens there


class Remote:
    def __init__(self, root: Path, name: str, topology):
        self.root, self.name, self.topology = root, name, topology
        self.config_file = root / "mlci.yaml"

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True, text=True).stdout

    def mlci(self, *args: str):
        return CliRunner().invoke(cli, ["--config", str(self.config_file), *args])

    def report(self, name: str) -> dict:
        return json.loads((self.root / "reports" / f"{name}.json").read_text())

    def host(self, env: str):
        return self.topology.hosts[env]

    def url(self, env: str) -> str:
        return f"http://{self.host(env).address}:{PORT}"

    def served(self, env: str) -> tuple[str, str]:
        version = httpx.get(f"{self.url(env)}/version", timeout=5).json()
        return str(version["version"]), version["colour"]

    def tags(self, version: str) -> dict[str, str]:
        from mlflow import MlflowClient

        uri = f"sqlite:///{self.root / '.mlci' / 'mlflow.db'}"
        return (
            MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version("breast-cancer-classifier", version).tags
        )

    def record(self) -> dict:
        return json.loads((self.root / "build" / "bundle" / "reference.json").read_text())["records"][0]


@pytest.fixture(scope="module")
def remote(topology, tmp_path_factory, base_images, build_sources):
    _, remove_images = build_sources
    root = tmp_path_factory.mktemp("remote") / "repo"
    copy_checkout(root)
    name = f"rm-{uuid.uuid4().hex[:8]}"
    config = yaml.safe_load((root / "mlci.yaml").read_text())
    config["project"] = name
    config["model"]["params"]["n_estimators"] = 30
    config["split"]["cv_folds"] = 3
    config["tests"] = {"paths": ["tests/unit/core/test_polling.py"], "coverage": []}
    config["images"] = {"registry": topology.registry}
    config["environments"] = {
        env: {
            "port": PORT,
            "preview_port": PREVIEW,
            "docker_host": topology.hosts[env].docker_host,
            "address": topology.hosts[env].address,
            "drain_seconds": 1,
            "checks": {"ready_timeout": 60, "verify_seconds": 2.5},
        }
        for env in ("staging", "production")
    }
    (root / "mlci.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    remote = Remote(root, name, topology)
    for args in (("init", "-q", "-b", "main"), ("config", "user.name", "Ada"), ("config", "user.email", "ada@x.org")):
        remote.git(*args)
    remote.git("add", "-A")
    remote.git("commit", "-qm", "clone")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for key, value in {
        **base_images,
        **topology.env(),
        "MLCI_REGISTRY_USERNAME": topology.username,
        "MLCI_REGISTRY_PASSWORD": topology.password,
    }.items():
        monkeypatch.setenv(key, value)
    try:
        yield remote
    finally:
        for env in ("production", "staging"):
            remote.mlci("down", "--env", env)
        monkeypatch.undo()
        remove_images(name)
        remove_images(f"{topology.registry}/{name}")


def test_one_pipeline_across_two_hosts_through_the_registry(remote):
    result = remote.mlci("pipeline", "run", "--approve")
    assert result.exit_code == 0, result.output
    registry = remote.topology.registry

    # Every image the line deploys pushed, its digest in reports/build.json and on the model version; no
    # environment here serves a dashboard, so no dashboard image is built, pushed or pulled.
    build = remote.report("build")
    tags = remote.tags("1")
    assert set(build["images"]) == {"api", "router"}, build["images"]
    for role in ("api", "router"):
        digest = build["images"][role]["digest"]
        assert digest.startswith(f"{registry}/{remote.name}-{role}@sha256:"), digest
        assert tags[f"mlci.image.{role}.digest"] == digest
    # The password went with each push and pull (the engine API's auth), never to a file: not to the real
    # user's ~/.docker (the test runs mlci under a HOME of its own, so read the account's home).
    user_config = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".docker" / "config.json"
    assert not user_config.exists() or registry not in user_config.read_text()

    # Both hosts serve v1, from the API image pulled by digest; nothing runs on the build engine.
    for env in ("staging", "production"):
        assert remote.served(env) == ("1", "blue")
        blue = json.loads(remote.host(env).docker("inspect", f"{remote.name}-{env}-blue").stdout)[0]
        assert blue["Config"]["Image"] == build["images"]["api"]["digest"]
        assert remote.host(env).docker("volume", "inspect", f"{remote.name}-{env}-state").returncode == 0
        local = subprocess.run(["docker", "ps", "-aq", "--filter", f"name={remote.name}-"], capture_output=True)
        assert local.stdout.strip() == b""
        deployed = remote.report(f"deploy-{env}")["current"]
        assert deployed["host"] == remote.host(env).docker_host
        assert deployed["digest"] == build["images"]["api"]["digest"]
    # The published ports are on the environment's address only.
    router = json.loads(remote.host("production").docker("inspect", f"{remote.name}-production-router").stdout)[0]
    bound = {b["HostIp"] for bindings in router["HostConfig"]["PortBindings"].values() for b in bindings}
    assert bound == {remote.host("production").address}

    status = remote.mlci("status", "--json")
    assert status.exit_code == 0, status.output
    text = status.output
    for env in ("staging", "production"):
        assert remote.host(env).docker_host in text
    assert build["images"]["api"]["digest"] in text
    # What ops read: each environment names its host, and the deploy lines the digest they pulled.
    human = remote.mlci("status")
    assert human.exit_code == 0, human.output
    for env in ("staging", "production"):
        assert f"environment {env} on {remote.host(env).docker_host}:" in human.output
    assert f"image {build['images']['api']['digest']}" in human.output


def test_a_switch_under_load_loses_no_request_and_a_rollback_goes_back(remote, load_generator):
    config = yaml.safe_load(remote.config_file.read_text())
    config["model"]["params"]["max_depth"] = 5
    remote.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    remote.git("commit", "-qam", "v2")
    assert remote.mlci("train").exit_code == 0
    built = remote.mlci("build", "--only", "api", "--only", "router")
    assert built.exit_code == 0, built.output
    with load_generator(remote.url("production"), remote.record(), connections=4, max_seconds=180) as load:
        # --force: v2 skips staging and the gate on purpose (this test is about the switch).
        deployed = remote.mlci("deploy", "--env", "production", "--version", "2", "--force", "--reason", "load test")
        assert deployed.exit_code == 0, deployed.output
        assert remote.served("production") == ("2", "green")
        back = remote.mlci("rollback", "--env", "production")
        assert back.exit_code == 0, back.output
        time.sleep(1)
    assert load.failures == [], load.failures[:5]
    versions = {version for *_, version in load.results}
    assert versions == {"1", "2"} and len(load.results) > 100
    assert remote.served("production") == ("1", "blue")


def test_an_image_missing_from_the_registry_or_with_another_digest_switches_nothing(remote):
    before = remote.served("production")
    missing = f"{remote.topology.registry}/{remote.name}-api@sha256:{'0' * 64}"
    result = remote.mlci("deploy", "--env", "production", "--image", missing)
    assert result.exit_code == 1, result.output
    assert "0" * 64 in result.output and "not in the registry" in result.output

    # An image of version 1 rebuilt (another digest) and pushed: not the digest recorded for v1.
    tag = f"{remote.topology.registry}/{remote.name}-api:tampered"
    v1 = remote.tags("1")["mlci.image.api.digest"]
    subprocess.run(["docker", "build", "-t", tag, "-"], input=f"FROM {v1}\nLABEL tampered=yes\n", text=True,
                   check=True, capture_output=True)  # fmt: skip
    login = Path(remote.root / "docker-config")
    login.mkdir()
    env = {**os.environ, "DOCKER_CONFIG": str(login)}
    subprocess.run(["docker", "login", "-u", remote.topology.username, "--password-stdin", remote.topology.registry],
                   input=remote.topology.password, text=True, env=env, check=True, capture_output=True)  # fmt: skip
    pushed = subprocess.run(["docker", "push", tag], env=env, check=True, capture_output=True, text=True).stdout
    digest = next(w for w in pushed.split() if w.startswith("sha256:"))
    result = remote.mlci("deploy", "--env", "production", "--image", f"{tag.rsplit(':', 1)[0]}@{digest}")
    assert result.exit_code == 1, result.output
    assert digest in result.output and "not the one recorded" in result.output
    assert remote.served("production") == before


def test_wrong_registry_credentials_a_tag_or_an_unknown_version_is_exit_2(remote, monkeypatch):
    before = remote.served("production")
    tag = f"{remote.topology.registry}/{remote.name}-api:latest"
    result = remote.mlci("deploy", "--env", "production", "--image", tag)
    assert result.exit_code == 2 and "pulls by digest only" in result.output, result.output
    result = remote.mlci("deploy", "--env", "production", "--version", "7")
    assert result.exit_code == 2 and "no version 7" in result.output, result.output
    monkeypatch.setenv("MLCI_REGISTRY_PASSWORD", "not-the-password")
    result = remote.mlci("deploy", "--env", "production", "--version", "1")
    assert result.exit_code == 2 and "refused the credentials" in result.output, result.output
    assert remote.served("production") == before


def test_a_registry_that_is_down_is_exit_3_in_seconds(remote, monkeypatch):
    monkeypatch.setenv("MLCI_REGISTRY", f"{topo.REGISTRY_ADDRESS}:5999")  # nothing listens there
    started = time.monotonic()
    result = remote.mlci("build", "--only", "router")
    assert result.exit_code == 3, result.output
    assert f"{topo.REGISTRY_ADDRESS}:5999" in result.output
    assert time.monotonic() - started < 20


def test_an_unreachable_host_or_a_refused_key_is_exit_3_naming_the_host(remote, monkeypatch):
    before = remote.served("production")
    monkeypatch.setenv("MLCI_PRODUCTION_DOCKER_HOST", "ssh://root@10.231.2.3")  # no host there
    started = time.monotonic()
    result = remote.mlci("deploy", "--env", "production", "--version", "1")
    assert result.exit_code == 3, result.output
    assert "ssh://root@10.231.2.3" in result.output and time.monotonic() - started < 20
    monkeypatch.delenv("MLCI_PRODUCTION_DOCKER_HOST")

    host = remote.host("production")
    keys = (host.root / "authorized_keys").read_text()
    subprocess.run(["ssh", "-F", str(remote.topology.ssh_config), "-O", "exit", host.address], capture_output=True)
    (host.root / "authorized_keys").write_text("")
    try:
        result = remote.mlci("deploy", "--env", "production", "--version", "1")
    finally:
        (host.root / "authorized_keys").write_text(keys)
    assert result.exit_code == 3, result.output
    assert host.docker_host in result.output and "refused" in result.output
    assert remote.served("production") == before


def test_the_deploy_key_from_an_ssh_agent_is_enough_and_none_is_exit_3(remote, tmp_path, monkeypatch):
    """On Jenkins the hosts' key is a credential loaded into an ssh-agent around the deploy step
    (mlciSshCredentials, `sshagent`), never a file on the agent: a HOME whose ~/.ssh names no key."""
    root = remote.topology.ssh_config.parent
    home = tmp_path / "agent-home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host 10.231.*\n  User root\n")
    (home / ".ssh" / "known_hosts").write_text((root / "known_hosts").read_text())
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(50):
            if socket_path.exists():
                break
            time.sleep(0.1)
        agent_env = {**os.environ, "SSH_AUTH_SOCK": str(socket_path)}
        subprocess.run(["ssh-add", "-q", str(root / "id_ed25519")], env=agent_env, check=True, timeout=30)
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))

        status = remote.mlci("status", "--env", "production", "--json")
        assert status.exit_code == 0, status.output

        subprocess.run(["ssh-add", "-q", "-D"], env=agent_env, check=True, timeout=30)  # the binding is over
        refused = remote.mlci("status", "--env", "production")
        assert refused.exit_code == 3, refused.output
        assert remote.host("production").docker_host in refused.output
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_the_engine_stopping_mid_deploy_is_exit_3_and_nothing_is_half_switched(remote):
    host = remote.host("production")
    live_before = remote.served("production")
    process = subprocess.Popen(
        [
            MLCI,
            "--config",
            str(remote.config_file),
            "deploy",
            "--env",
            "production",
            "--version",
            "2",
            "--force",
            "--reason",
            "fault test",
        ],
        cwd=remote.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    output: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if "in the idle slot" in line:  # the new slot is starting: the engine goes away now
            host.stop_engine()
            break
    output.append(process.stdout.read())
    assert process.wait(timeout=120) == 3, "".join(output)
    assert host.docker_host in "".join(output)
    # The engine back: its containers come back (restart unless-stopped) on the colour that was live.
    host.start_engine()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if remote.served("production") == live_before:
                break
        except (httpx.HTTPError, ValueError):  # the router is back before the slot: a 502 page
            pass
        time.sleep(0.5)
    assert remote.served("production") == live_before


def test_after_the_fault_the_host_deploys_again_and_goes_down_cleanly(remote):
    # The lock container the stopped engine left behind is stale: the next deploy removes it.
    result = remote.mlci("deploy", "--env", "production", "--version", "2", "--force", "--reason", "after the fault")
    assert result.exit_code == 0, result.output
    assert remote.served("production")[0] == "2"
    host = remote.host("production")
    down = remote.mlci("down", "--env", "production")
    assert down.exit_code == 0, down.output
    left = host.docker("ps", "-aq", "--filter", f"name={remote.name}-production-").stdout.strip()
    assert left == ""
    # The history stays on that host (it outlives down) and says so.
    history = host.docker("run", "--rm", "-v", f"{remote.name}-production-state:/state:ro", "--entrypoint", "cat",
                          remote.tags("2")["mlci.image.router.digest"], "/state/history.jsonl").stdout  # fmt: skip
    kinds = [json.loads(line)["result"] for line in history.splitlines()]
    assert kinds[-1] == "down" and "deployed" in kinds
