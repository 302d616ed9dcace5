"""The demo line, end to end, as a newcomer runs it and as Jenkins builds it: from a clean copy of the
repository, `mlci pipeline run --approve` (what `make demo` runs) reaches production once per session
and every later test builds on that line, in order:

- every stage passes, both environments serve v1, the dashboard answers;
- every report is on the version's MLflow run (tests, coverage, data, gate, bundle parity, image
  digests, one deploy record per environment), byte for byte what the workspace wrote, and a person
  sees them in the MLflow UI (`make mlflow-ui`) in chromium, with the run linking back to its build;
- a second run with a changed parameter switches colour under load without a failed request;
- a failing unit test stops the line at Test.

(`--no-approve` stopping before production is tests/unit/flow/test_pipeline.py's, on the real CLI: the
stage that would deploy never starts, so an engine adds nothing to it.)

Screenshots: reports/screenshots/mlflow_ui_run.png, mlflow_ui_artifacts.png, mlflow_ui_build_json.png."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from mlflow import MlflowClient

from tests.helpers import mlflow_ui
from tests.helpers.browser import shot
from tests.helpers.docker_line import remove_environments
from tests.helpers.environment import LEAKY
from tests.helpers.files import copy_checkout

REPO = Path(__file__).resolve().parents[3]
MLCI = str(Path(sys.executable).parent / "mlci")
# A Jenkins build's variables: the run's description then links back to the build (mlci.learn.train's tags).
JENKINS = {"BUILD_URL": "http://jenkins.example/job/x/1/", "JOB_NAME": "x", "BUILD_NUMBER": "1"}
# What the demo run leaves on the version's run: tests, coverage, data report, gate, bundle parity,
# image digests (and one deploy record per environment, below).
EXPECTED = {
    "reports/test": {"junit.xml", "coverage.xml"},
    "reports/train": {"data.json", "data-profile.json"},
    "reports/gate": {"gate.json", "gate-table.txt"},
    "reports/package": {"package.json", "metadata.json", "parity.json"},
    "reports/build": {"build.json"},
}
STAGES = ("Setup", "Test", "Train", "Gate", "Build images", "Deploy staging", "Approve", "Deploy production")


class Clone:
    def __init__(self, root: Path):
        self.root = root
        self.config_file = root / "mlci.yaml"

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True, text=True).stdout

    def edit(self, change) -> None:
        config = yaml.safe_load(self.config_file.read_text())
        change(config)
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        self.git("commit", "-qam", "change mlci.yaml")

    def pipeline(self, *args: str) -> subprocess.CompletedProcess:
        """`mlci pipeline run` from the clone through the CLI entry in this process (so the run counts
        towards coverage); the first run, in the fixture, is a process of its own as a user types it."""
        from click.testing import CliRunner

        from mlci.cli.main import cli

        result = CliRunner().invoke(
            cli, ["--config", str(self.config_file), "pipeline", "run", *args], catch_exceptions=False
        )
        return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)

    def report(self, name: str) -> dict:
        return json.loads((self.root / "reports" / f"{name}.json").read_text())

    def url(self, env: str) -> str:
        return f"http://127.0.0.1:{yaml.safe_load(self.config_file.read_text())['environments'][env]['port']}"

    def served(self, env: str) -> tuple[str, str]:
        version = httpx.get(f"{self.url(env)}/version", timeout=5).json()
        return str(version["version"]), version["colour"]


@dataclass
class DemoLine:
    """The first run's clone, its output, the run it trained and a client of its store."""

    clone: Clone
    first: subprocess.CompletedProcess
    run_id: str
    experiment_id: str
    client: MlflowClient


def make_clone(root: Path, free_ports) -> str:
    """A clean copy of this repository (what git checks out), with its own names and ports."""
    copy_checkout(root)
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    prod, prod_preview, dashboard, staging, staging_preview = free_ports(5)
    config = yaml.safe_load((root / "mlci.yaml").read_text())
    config["project"] = name
    config["model"]["params"]["n_estimators"] = 30
    config["split"]["cv_folds"] = 3
    # The demo's Test stage, made small: one real test file (no training in it), with coverage (the XML
    # the run must carry).
    config["tests"] = {"paths": ["tests/unit/core/test_polling.py"], "coverage": ["mlci"]}
    checks = {"ready_timeout": 30, "verify_seconds": 2.5}
    config["environments"] = {
        "staging": {"port": staging, "preview_port": staging_preview, "drain_seconds": 1, "checks": checks},
        "production": {
            "port": prod,
            "preview_port": prod_preview,
            "dashboard_port": dashboard,
            "drain_seconds": 1,
            "checks": dict(checks),  # a copy: one object twice would be dumped as a YAML alias, which mlci refuses
        },
    }
    (root / "mlci.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    who = ["-c", "user.name=Grace Hopper", "-c", "user.email=grace@example.com"]
    for args in (["init", "-q", "-b", "main"], [*who, "add", "-A"], [*who, "commit", "-qm", "clone"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    for key, value in (("user.name", "Grace Hopper"), ("user.email", "grace@example.com")):
        subprocess.run(["git", "config", key, value], cwd=root, check=True, capture_output=True)
    return name


@pytest.fixture(scope="module")
def demo_line(tmp_path_factory, base_images, build_sources, free_ports) -> Iterator[DemoLine]:
    """`mlci pipeline run --approve` once in a clone, in its own process, as a Jenkins build runs it
    (BUILD_URL set: the run's description links back to it); both environments, their histories and
    the images are removed after the module's tests."""
    _, remove_images = build_sources
    root = tmp_path_factory.mktemp("demo-line") / "repo"
    name = make_clone(root, free_ports)
    # This fixture outlives a test's environment clean-up: build the environment here, without the
    # variables a developer's shell or an agent may have set.
    env = {key: value for key, value in os.environ.items() if key not in LEAKY}
    env.update(base_images, COLUMNS="200", **JENKINS)
    monkeypatch = pytest.MonkeyPatch()  # the later runs are in this process: same base images
    for key, value in base_images.items():
        monkeypatch.setenv(key, value)
    try:
        first = subprocess.run(
            [MLCI, "pipeline", "run", "--approve"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=1200,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        uri = f"sqlite:///{root / '.mlci' / 'mlflow.db'}"
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        run_id = json.loads((root / "reports" / "train.json").read_text())["run_id"]
        yield DemoLine(Clone(root), first, run_id, client.get_run(run_id).info.experiment_id, client)
    finally:
        remove_environments(name)  # containers, networks and volumes (the state's too: a test leaves nothing)
        monkeypatch.undo()
        remove_images(name)


# The module fixture's pipeline (up to its own 1200 s bound) is charged to the first test that uses it.
@pytest.mark.timeout(1500)
def test_the_demo_line_reaches_production(demo_line):
    clone, run = demo_line.clone, demo_line.first
    for number, stage in enumerate(STAGES, start=1):
        assert f"stage {number}/8: {stage} — ok" in run.stdout
    assert clone.served("production") == ("1", "blue") and clone.served("staging") == ("1", "blue")
    assert "production: v1 (blue)" in run.stdout and "RESULT OK: pipeline done" in run.stdout
    assert "not archived to MLflow" not in run.stdout and "is not on MLflow run" not in run.stdout, run.stdout
    dashboard = yaml.safe_load(clone.config_file.read_text())["environments"]["production"]["dashboard_port"]
    assert httpx.get(f"http://127.0.0.1:{dashboard}/_stcore/health", timeout=5).status_code == 200


def test_the_demo_line_leaves_every_report_on_the_run(demo_line):
    client, run_id, root = demo_line.client, demo_line.run_id, demo_line.clone.root
    for folder, names in EXPECTED.items():
        assert {Path(f.path).name for f in client.list_artifacts(run_id, folder)} == names, folder

    def artifact(path: str) -> bytes:
        return Path(client.download_artifacts(run_id, path)).read_bytes()

    # The build report (image digests) is the workspace's, byte for byte.
    build_json = root / "reports" / "build.json"
    assert artifact("reports/build/build.json") == build_json.read_bytes()
    assert json.loads(build_json.read_text())["images"]["api"]["id"].startswith("sha256:")
    # One deploy record per environment, each the record the deploy wrote.
    records = sorted(f.path for f in client.list_artifacts(run_id, "reports/deploy"))
    assert [Path(r).name.split("-deploy-")[0] for r in records] == ["production", "staging"], records
    for record in records:
        env = Path(record).name.split("-deploy-")[0]
        assert json.loads(artifact(record)) == demo_line.clone.report(f"deploy-{env}")["last"], env


def test_the_mlflow_ui_shows_every_report_of_the_demo_run(demo_line, browser, free_port):
    """The done-when item as a person checks it: `make mlflow-ui`'s server, the run's page in a real
    browser (the Jenkins link in its description), its Artifacts tab with every reports/ folder
    expanded, and build.json opened in the artifact viewer with the image digests."""
    route = mlflow_ui.run_route(demo_line.experiment_id, demo_line.run_id)
    with mlflow_ui.mlflow_ui(demo_line.clone.root, free_port()) as url:
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(mlflow_ui.TIMEOUT_MS)
        try:
            page.goto(url + route)
            link = page.locator(f'a[href="{JENKINS["BUILD_URL"]}"]')
            link.first.wait_for()
            assert link.first.inner_text().strip() == "x #1"
            assert "Trained by Jenkins build" in page.inner_text("body")
            shot(page, "mlflow_ui_run")

            page.get_by_role("tab", name="Artifacts").click()
            assert page.url.endswith(route + "/artifacts"), page.url
            reports = mlflow_ui.expand(page, "reports")
            assert set(reports) >= {Path(folder).name for folder in EXPECTED} | {"deploy"}, reports
            tree = mlflow_ui.tree_item(page, "reports")
            for folder, names in EXPECTED.items():
                shown = mlflow_ui.expand(tree, Path(folder).name)
                assert set(shown) == names, f"{folder}: the page lists {shown}"
            records = mlflow_ui.expand(tree, "deploy")
            assert sorted(r.split("-deploy-")[0] for r in records) == ["production", "staging"], records
            shot(page, "mlflow_ui_artifacts")

            mlflow_ui.tree_node(mlflow_ui.tree_item(tree, "build"), "build.json").click()
            page.wait_for_function("() => /sha256:[0-9a-f]{64}/.test(document.body.innerText)")
            assert re.search(r"sha256:[0-9a-f]{64}", page.inner_text("body"))
            shot(page, "mlflow_ui_build_json")
        finally:
            page.close()


def test_second_run_switches_colour_under_load(demo_line, load_generator):
    clone = demo_line.clone
    clone.edit(lambda c: c["model"]["params"].update(max_depth=6))
    record = json.loads((clone.root / "build" / "bundle" / "reference.json").read_text())["records"][0]
    with load_generator(clone.url("production"), record, connections=2) as load:
        run = clone.pipeline("--approve")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert clone.served("production") == ("2", "green")
    assert load.failures == [] and len(load.results) > 50
    assert {version for *_, version in load.results} == {"1", "2"}
    assert clone.report("gate")["production"]["version"] == "1"


def test_failing_unit_test_stops_the_line_at_test(demo_line):
    clone = demo_line.clone
    (clone.root / "tests" / "unit" / "test_broken.py").write_text("def test_broken():\n    assert 1 + 1 == 3\n")
    clone.edit(lambda c: c["tests"].update(paths=["tests/unit/test_broken.py"]))
    trained_before = clone.report("train")["version"]
    run = clone.pipeline("--approve")
    assert run.returncode == 1
    assert "stage 2/8: Test — FAILED" in run.stdout and "tests failed: 1 failed" in run.stderr
    assert "stage 3/8" not in run.stdout
    assert clone.report("train")["version"] == trained_before
