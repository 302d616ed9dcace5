"""The team, end to end (issue 11): one shared MLflow server (the team stack: PostgreSQL backend),
one bare git origin, two clones as two Jenkins agents — A builds `main`, B builds `feature-x` —
and one Docker engine for staging and production.

What a team needs from the line, with real parts only:
- both branches train at the same time, and every later stage of a build (gate, build, deploy)
  uses the version that build trained: main never ships feature-x's model;
- the very first build (nothing in production) passes its gate against the floor;
- both agents see one history per environment (status, rollback from the other clone);
- two deploys of one environment from the two clones are serialized, 0 failed requests under load;
  with --lock-timeout 0 a locked environment is refused at once, naming its holder; a deploy killed
  (SIGKILL) while it holds the lock blocks nobody;
- production accepts only what passed the gate against it, was verified in staging and is approved;
  `--force --reason` overrides, recorded on the model version.

The tests run in order and share the agents (like test_pipeline_e2e): each step builds on the last.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers.environment import LEAKY

REPO = Path(__file__).resolve().parents[3]
MLCI = str(Path(sys.executable).parent / "mlci")
ENVS = ("staging", "production")
# What a developer's shell could leak into the agents: each agent gets only what Jenkins would set.
NOT_INHERITED = (*LEAKY, "MLCI_APPROVER")

# The first test also builds the team stack's images on a cold machine.
pytestmark = pytest.mark.timeout(1800)


class Agent:
    """One clone of the origin, on one branch, driven as a Jenkins agent drives it: `mlci` processes."""

    def __init__(self, root: Path, branch: str, env: dict[str, str]):
        self.root, self.branch, self.env = root, branch, env
        self.build_number = 0

    def _env(self) -> dict[str, str]:
        job = f"http://jenkins.example/job/team/job/{self.branch}/{self.build_number}/"
        return {**self.env, "BUILD_NUMBER": str(self.build_number), "BUILD_URL": job}

    def next_build(self) -> None:
        self.build_number += 1

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [MLCI, *args],
            cwd=self.root,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def mlci(self, *args: str, expect: int | None = 0, timeout: float = 600) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [MLCI, *args],
            cwd=self.root,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if expect is not None:
            assert done.returncode == expect, f"mlci {' '.join(args)} in {self.branch}: exit {done.returncode}\n" + (
                done.stdout[-4000:] + done.stderr[-4000:]
            )
        return done

    def steps(self, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess]:
        """One build's stages, in order, each one required to pass."""
        return [self.mlci(*command) for command in commands]

    def report(self, name: str) -> dict:
        return json.loads((self.root / "reports" / f"{name}.json").read_text())

    def trained(self) -> str:
        return str(self.report("train")["version"])

    def status(self, env: str | None = None) -> dict:
        if env is None:
            return json.loads(self.mlci("status", "--json").stdout)
        return json.loads(self.mlci("status", "--env", env, "--json").stdout)[0]

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True, text=True).stdout


class Team:
    """The two agents and what every test needs to look at the environments and the registry."""

    def __init__(self, a: Agent, b: Agent, project: str, model: str, ports: dict[str, int], tracking_uri: str):
        self.a, self.b, self.project, self.model, self.ports = a, b, project, model, ports
        self.tracking_uri = tracking_uri
        self.versions: dict[str, str] = {}  # what each build trained: a1, b1, a2

    def served(self, env: str) -> tuple[str, str]:
        """(model version, colour) answered through the environment's router."""
        answer = httpx.get(f"http://127.0.0.1:{self.ports[env]}/version", timeout=5).json()
        return str(answer["version"]), answer["colour"]

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def tags(self, version: str) -> dict[str, str]:
        return dict(self.client().get_model_version(self.model, version).tags)

    def reference_record(self) -> dict:
        return json.loads((self.a.root / "build" / "bundle" / "reference.json").read_text())["records"][0]


def both(*jobs):
    """Run the two agents' work at the same time (two builds on two agents), each result in order."""
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(job) for job in jobs]
        return [future.result() for future in futures]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def set_key(root: Path, dotted: str, value) -> None:
    config = yaml.safe_load((root / "mlci.yaml").read_text())
    node = config
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    (root / "mlci.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def team(tmp_path_factory, team_stack, base_images, project_factory, build_sources, free_ports):
    """origin (bare) with main and feature-x; clone A on main, clone B on feature-x; both agents'
    MLflow is the team server. Teardown: both environments down, state volumes and images gone."""
    copy_sources, remove_images = build_sources
    top = tmp_path_factory.mktemp("team")
    seed = project_factory(top / "seed", REPO / "mlci.yaml", [REPO / "data" / "breast_cancer.csv"])
    copy_sources(seed.root)
    (seed.root / ".gitignore").write_text("build/\nreports/\n.mlci/\n")
    project = f"it-team-{uuid.uuid4().hex[:8]}"
    model = f"{project}-model"  # this run's own registered model on the shared server
    staging, staging_preview, production, production_preview = free_ports(4)
    ports = {"staging": staging, "production": production}

    def checks() -> dict:  # one dict per environment: one object twice would be dumped as a YAML alias
        # Generous on purpose: CI runs this beside other suites on 2 cores, where a slot can take
        # long to start and an upstream keep-alive can outlive a 1 s drain.
        return {"ready_timeout": 90, "verify_seconds": 4}

    seed.edit(
        project=project,
        **{"model.name": model, "model.params.n_estimators": 30},
        environments={
            "staging": {"port": staging, "preview_port": staging_preview, "drain_seconds": 2, "checks": checks()},
            "production": {
                "port": production,
                "preview_port": production_preview,
                "drain_seconds": 2,
                "checks": checks(),
            },
        },
    )
    seed.commit("team project: shared server, its own ports and names")
    origin = top / "origin.git"
    git(top, "init", "-q", "--bare", "-b", "main", str(origin))
    seed.git("remote", "add", "origin", str(origin))
    seed.git("push", "-q", "origin", "main")
    # Grace's branch: a hyperparameter change, pushed for the team's Jenkins to build.
    seed.git("checkout", "-q", "-b", "feature-x")
    seed.edit(**{"model.params.max_depth": 4})
    seed.git("-c", "user.name=Grace Hopper", "-c", "user.email=grace@example.com", "commit", "-qam", "shallower trees")
    seed.git("push", "-q", "origin", "feature-x")

    inherited = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    agents = []
    for letter, branch in (("a", "main"), ("b", "feature-x")):
        root = top / f"agent-{letter}" / "workspace"
        git(top, "clone", "-q", "-b", branch, str(origin), str(root))
        git(root, "config", "user.name", "Jenkins")
        git(root, "config", "user.email", "jenkins@example.com")
        env = {
            **inherited,
            **base_images,
            "MLFLOW_TRACKING_URI": team_stack.url,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "JENKINS_URL": "http://jenkins.example/",
            "JOB_NAME": f"team/{branch}",
            "BRANCH_NAME": branch,
            "COLUMNS": "200",
        }
        agents.append(Agent(root, branch, env))
    a, b = agents
    try:
        yield Team(a, b, project, model, ports, team_stack.url)
    finally:
        for env in ENVS:
            a.mlci("down", "--env", env, expect=None)
            subprocess.run(["docker", "rm", "-f", f"{project}-{env}-lock"], capture_output=True, timeout=60)
            subprocess.run(["docker", "volume", "rm", f"{project}-{env}-state"], capture_output=True, timeout=60)
        remove_images(project)
        assert leftovers(project) == [], "the team line left Docker objects behind"


def leftovers(project: str) -> list[str]:
    """Containers, networks, volumes and images of this run still on the engine."""
    found = []
    for kind, filter_ in (
        (["ps", "-a"], f"name={project}-"),
        (["network", "ls"], f"name={project}-"),
        (["volume", "ls"], f"name={project}-"),
        (["images"], f"reference={project}-*"),
    ):
        listed = subprocess.run(
            ["docker", *kind, "-q", "--filter", filter_], capture_output=True, text=True, timeout=60
        ).stdout.split()
        found += [f"{kind[0]} {name}" for name in listed]
    return found


def test_two_branches_train_at_once_and_each_build_keeps_its_version(team):
    a, b = team.a, team.b
    a.next_build()
    b.next_build()
    trainings = [a.start("train"), b.start("train")]  # both agents at the same moment
    outputs = [process.communicate(timeout=600)[0] for process in trainings]
    assert [process.returncode for process in trainings] == [0, 0], "\n---\n".join(outputs)
    a1, b1 = a.trained(), b.trained()
    assert a1 != b1 and {a1, b1} == {"1", "2"}
    team.versions.update(a1=a1, b1=b1)
    assert (a.report("train")["alias"], b.report("train")["alias"]) == ("candidate", "candidate-feature-x")
    aliases = team.client().get_registered_model(team.model).aliases
    assert aliases == {"candidate": a1, "candidate-feature-x": b1}
    assert team.tags(a1)["mlci.branch"] == "main" and team.tags(b1)["mlci.branch"] == "feature-x"

    # Each build's gate and image build, on both agents at once, with no version named.
    build = (("gate",), ("build", "--only", "api", "--only", "router"))
    (gate_a, build_a), (gate_b, build_b) = both(lambda: a.steps(*build), lambda: b.steps(*build))
    for agent, version, gate, build in ((a, a1, gate_a, build_a), (b, b1, gate_b, build_b)):
        assert f"version {version}, trained by this workspace" in gate.stdout, gate.stdout
        assert f"version {version}, trained by this workspace" in build.stdout, build.stdout
        report = agent.report("gate")
        # The very first builds: nothing in production, judged against the floor alone.
        assert report["passed"] is True and report["production"] is None
        assert str(report["candidate"]["version"]) == version
        assert agent.report("build")["version"] == version
        assert team.tags(version)["mlci.gate.against"] == "none"


def test_the_first_build_reaches_production_through_staging(team):
    a, a1 = team.a, team.versions["a1"]
    a.mlci("deploy", "--env", "staging")  # the image of this workspace's build
    assert team.served("staging") == (a1, "blue")
    assert a.report("deploy-staging")["last"]["model_version"] == a1
    # Gate passed against "nothing in production", verified in staging, approved: the policy is met.
    a.mlci("deploy", "--env", "production", "--approver", "alice")
    assert team.served("production") == (a1, "blue")
    current = a.status("production")["current"]
    assert (current["model_version"], current["approver"]) == (a1, "alice")


def test_two_deploys_of_staging_from_both_clones_are_serialized_under_load(team, load_generator):
    a, b = team.a, team.b
    a1, b1 = team.versions["a1"], team.versions["b1"]
    # main's next push: a second version, gated against what production serves now (A's first).
    set_key(a.root, "model.params.n_estimators", 40)
    a.git("commit", "-qam", "more trees")
    a.git("push", "-q", "origin", "main")
    a.next_build()
    a.steps(("train",), ("gate",), ("build", "--only", "api", "--only", "router"))
    a2 = a.trained()
    team.versions["a2"] = a2
    assert a2 not in (a1, b1) and a.report("gate")["production"]["version"] == a1

    with load_generator(f"http://127.0.0.1:{team.ports['staging']}", team.reference_record(), connections=2) as load:
        deploys = [a.start("deploy", "--env", "staging"), b.start("deploy", "--env", "staging")]
        outputs = [process.communicate(timeout=600)[0] for process in deploys]
    shown = "\n---\n".join(outputs)  # a string: pytest would cut a list's repr short
    assert [process.returncode for process in deploys] == [0, 0], shown
    assert sum("waiting up to" in output and "locked by" in output for output in outputs) == 1, shown
    assert load.failures == [] and len(load.results) > 50
    seen = {version for *_, version in load.results}
    assert {a2, b1} <= seen <= {a1, a2, b1}, seen
    # Each build deployed its own version: main never deployed feature-x's model, nor the reverse.
    assert a.report("deploy-staging")["last"]["model_version"] == a2
    assert b.report("deploy-staging")["last"]["model_version"] == b1
    history = a.status("staging")["last_deploys"]
    assert [r["model_version"] for r in history[-2:]] in ([a2, b1], [b1, a2])
    assert team.served("staging")[0] == history[-1]["model_version"]
    # Whichever agent deployed, it deployed what its own branch trained.
    trained_by = {"team/main": {a1, a2}, "team/feature-x": {b1}}
    assert all(r["model_version"] in trained_by[r["job_name"]] for r in history), history


def wait_for_lock(lock: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (
        subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Running}}", lock], capture_output=True, text=True, timeout=60
        ).stdout.strip()
        != "true"
    ):
        assert time.monotonic() < deadline, f"no lock container {lock} appeared on the engine"
        time.sleep(0.1)


def test_with_lock_timeout_0_a_locked_environment_refuses_at_once_naming_its_holder(team):
    # The holder is this test, holding staging's lock as a deploy does, for as long as the check takes
    # (a real deploy as holder could finish before the other agent's command even starts on a busy box).
    from mlci.deploy.lock import EnvironmentLock
    from mlci.deploy.router import Names
    from mlci.ship.docker import Docker

    b, b1 = team.b, team.versions["b1"]
    before = b.status("staging")
    router_image = subprocess.run(
        ["docker", "inspect", "-f", "{{.Image}}", f"{team.project}-staging-router"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    with EnvironmentLock(Docker(), Names(team.project, "staging"), router_image, timeout=20):
        refused = b.mlci("deploy", "--env", "staging", "--version", b1, "--lock-timeout", "0", expect=1)
    said = refused.stdout + refused.stderr
    assert "is locked by" in said and f"pid {os.getpid()}" in said and "Traceback" not in said, said
    assert b.status("staging")["last_deploys"] == before["last_deploys"]  # nothing moved


def test_a_deploy_killed_while_it_holds_the_lock_blocks_nobody(team):
    a, b = team.a, team.b
    a1, b1 = team.versions["a1"], team.versions["b1"]
    killed = a.start("deploy", "--env", "staging", "--version", a1)
    wait_for_lock(f"{team.project}-staging-lock")
    time.sleep(1.0)  # inside the deploy: the new slot is starting
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    # Within --lock-timeout 10 or exit 1: the dead holder's lock container is gone in seconds, and the
    # slot it left half-started is replaced.
    b.mlci("deploy", "--env", "staging", "--version", b1, "--lock-timeout", "10")
    assert team.served("staging")[0] == b1
    lock = subprocess.run(["docker", "inspect", f"{team.project}-staging-lock"], capture_output=True, timeout=60)
    assert lock.returncode != 0  # released again


def test_clone_b_sees_and_rolls_back_what_clone_a_deployed_to_production(team):
    a, b = team.a, team.b
    a1, a2 = team.versions["a1"], team.versions["a2"]
    a.mlci("deploy", "--env", "production", "--approver", "alice")  # main's second build, approved
    assert team.served("production") == (a2, "green")

    seen_by_a, seen_by_b = a.status("production"), b.status("production")
    for key in ("live", "current", "last_deploys"):
        assert seen_by_b[key] == seen_by_a[key], key
    assert seen_by_b["live"] == "green" and seen_by_b["current"]["model_version"] == a2
    assert [r["model_version"] for r in seen_by_b["last_deploys"]] == [a1, a2]

    rolled = b.mlci("rollback", "--env", "production")  # from the clone that never deployed production
    assert "checking it" in rolled.stdout, rolled.stdout  # a switch back to the colour A left running
    assert team.served("production") == (a1, "blue")
    current = a.status("production")["current"]
    assert (current["kind"], current["model_version"], current["job_name"]) == ("rollback", a1, "team/feature-x")


def test_production_refuses_feature_x_unless_forced_and_records_the_override(team):
    a, b = team.a, team.b
    a1, b1 = team.versions["a1"], team.versions["b1"]
    before = b.status("production")
    # b1 was verified in staging, but gated against no production (production now serves a1) and
    # nobody approved it.
    refused = b.mlci("deploy", "--env", "production", "--version", b1, expect=1)
    said = refused.stdout + refused.stderr
    assert f"v{b1} may not be deployed to production" in said and "nothing was changed" in said, said
    assert "gate:" in said and "approver:" in said and "staging:" not in said, said
    assert "Traceback" not in said
    assert team.served("production") == (a1, "blue")
    assert b.status("production")["last_deploys"] == before["last_deploys"]

    forced = b.mlci("deploy", "--env", "production", "--version", b1, "--force", "--reason", "incident 42")
    assert "WARNING" in forced.stdout and "incident 42" in forced.stdout, forced.stdout
    assert team.served("production") == (b1, "green")
    tags = team.tags(b1)
    assert tags["mlci.production.forced"] == "incident 42"
    assert set(tags["mlci.production.skipped"].split(", ")) == {"gate", "approver"}
    current = a.status("production")["current"]
    assert current["model_version"] == b1 and current["policy"]["forced"] is True
    assert current["policy"]["force_reason"] == "incident 42"

    # Back to main's model: the end state is what the team released.
    a.mlci("rollback", "--env", "production")
    assert team.served("production") == (a1, "blue")


def test_the_leaderboard_shows_both_branches_from_either_clone(team):
    a, b = team.a, team.b
    a2, b1 = team.versions["a2"], team.versions["b1"]
    board_a, board_b = a.status()["leaderboard"], b.status()["leaderboard"]
    assert board_a == board_b
    metrics = [row["metric"] for row in board_b]  # best first: roc_auc, higher is better
    assert None not in metrics and metrics == sorted(metrics, reverse=True)
    rows = {row["branch"]: row for row in board_b}
    assert set(rows) == {"main", "feature-x"}
    assert rows["main"]["version"] == a2 and rows["feature-x"]["version"] == b1
    assert (rows["main"]["gate"], rows["main"]["gated_against"]) == ("passed", team.versions["a1"])
    assert (rows["feature-x"]["gate"], rows["feature-x"]["gated_against"]) == ("passed", "none")
    assert "candidate-feature-x" in rows["feature-x"]["aliases"] and "candidate" in rows["main"]["aliases"]
