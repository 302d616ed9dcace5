"""Issue 15 item 4 with a real Docker engine: the build report (image digests) and each deploy record
land on the MLflow run of the version they built and deployed; after the demo line, every report is on
its run, through the client and as a person sees it in the MLflow UI (`make mlflow-ui`) in chromium.
Screenshots: reports/screenshots/mlflow_ui_run.png, mlflow_ui_artifacts.png, mlflow_ui_build_json.png."""

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.helpers import mlflow_ui
from tests.helpers.browser import shot
from tests.helpers.environment import LEAKY


def test_build_report_and_deploy_record_on_the_run(image_project, free_ports):
    project = image_project
    port, preview = free_ports(2)
    project.edit(
        environments={"staging": {"port": port, "preview_port": preview, "checks": {"ready_timeout": 60}}},
    )
    project.commit("staging on free ports")
    name = project.config["project"]
    assert project.mlci("train").exit_code == 0
    built = project.mlci("build", "--only", "api", "--only", "router")
    assert built.exit_code == 0, built.output
    try:
        deployed = project.mlci("deploy", "--env", "staging")
        assert deployed.exit_code == 0, deployed.output
        client, run_id = project.client(), project.report("train")["run_id"]

        def artifact(path: str) -> bytes:
            return Path(client.download_artifacts(run_id, path)).read_bytes()

        build_json = project.root / "reports" / "build.json"
        assert artifact("reports/build/build.json") == build_json.read_bytes()
        assert json.loads(build_json.read_text())["images"]["api"]["id"].startswith("sha256:")
        records = [f.path for f in client.list_artifacts(run_id, "reports/deploy")]
        assert len(records) == 1 and records[0].startswith("reports/deploy/staging-deploy-")
        last = project.report("deploy-staging")["last"]
        assert json.loads(artifact(records[0])) == last
    finally:
        project.mlci("down", "--env", "staging")
        subprocess.run(["docker", "volume", "rm", f"{name}-staging-state"], capture_output=True)


REPO = Path(__file__).resolve().parents[3]
# A Jenkins build's variables: the run's description then links back to the build (ml/train.run_tags).
JENKINS = {"BUILD_URL": "http://jenkins.example/job/x/1/", "JOB_NAME": "x", "BUILD_NUMBER": "1"}
MLCI = str(Path(sys.executable).parent / "mlci")
# What the "done when" names, as `make demo` leaves it on the run: tests, coverage, data report,
# gate, bundle parity, image digests, deploy records (staging and production).
EXPECTED = {
    "reports/test": {"junit.xml", "coverage.xml"},
    "reports/train": {"data.json", "data-profile.json"},
    "reports/gate": {"gate.json", "gate-table.txt"},
    "reports/package": {"package.json", "metadata.json", "parity.json"},
    "reports/build": {"build.json"},
}


def _clone(root: Path, free_ports) -> str:
    """A clean copy of this repository (what git checks out), with its own names and ports."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    if (REPO / "build" / "wheelhouse").is_dir():  # the host's downloads, hard-linked: no network
        shutil.copytree(REPO / "build" / "wheelhouse", root / "build" / "wheelhouse", copy_function=os.link)
    name = f"arc-{uuid.uuid4().hex[:8]}"
    prod, prod_preview, dashboard, staging, staging_preview = free_ports(5)
    config = yaml.safe_load((root / "mlci.yaml").read_text())
    config["project"] = name
    config["model"]["params"]["n_estimators"] = 30
    config["split"]["cv_folds"] = 3
    # The demo's Test stage, made small: one real test file, with coverage (the XML the run must carry).
    config["tests"] = {"paths": ["tests/unit/learn/test_gate.py"], "coverage": ["mlci"]}
    checks = {"ready_timeout": 30, "verify_seconds": 2.5}
    config["environments"] = {
        "staging": {"port": staging, "preview_port": staging_preview, "drain_seconds": 1, "checks": checks},
        "production": {
            "port": prod,
            "preview_port": prod_preview,
            "dashboard_port": dashboard,
            "drain_seconds": 1,
            "checks": dict(checks),
        },
    }
    (root / "mlci.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    who = ["-c", "user.name=Grace Hopper", "-c", "user.email=grace@example.com"]
    for args in (["init", "-q", "-b", "main"], [*who, "add", "-A"], [*who, "commit", "-qm", "clone"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return name


@dataclass
class DemoLine:
    """The demo line's result in a clone: where it ran, the run it trained, a client of its store."""

    root: Path
    run_id: str
    experiment_id: str
    client: MlflowClient


@pytest.fixture(scope="module")
def demo_line(tmp_path_factory, base_images, build_sources, free_ports) -> Iterator[DemoLine]:
    """`mlci pipeline run --approve` (what `make demo` runs) once in a clone, as a Jenkins build would
    (BUILD_URL set: the run's description links back to it); both environments and the images are
    removed after the module's tests."""
    _, remove_images = build_sources
    root = tmp_path_factory.mktemp("demo-line") / "repo"
    name = _clone(root, free_ports)
    # This fixture outlives a test's environment clean-up: build the environment here, without the
    # variables a developer's shell or an agent may have set.
    env = {key: value for key, value in os.environ.items() if key not in LEAKY}
    env.update(base_images, COLUMNS="200", **JENKINS)
    try:
        run = subprocess.run(
            [MLCI, "pipeline", "run", "--approve"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=1200,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "not archived to MLflow" not in run.stdout and "is not on MLflow run" not in run.stdout, run.stdout
        uri = f"sqlite:///{root / '.mlci' / 'mlflow.db'}"
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        run_id = json.loads((root / "reports" / "train.json").read_text())["run_id"]
        yield DemoLine(root, run_id, client.get_run(run_id).info.experiment_id, client)
    finally:
        for env_name in ("production", "staging"):
            subprocess.run([MLCI, "down", "--env", env_name], cwd=root, env=env, capture_output=True, timeout=120)
            subprocess.run(["docker", "volume", "rm", f"{name}-{env_name}-state"], capture_output=True, timeout=60)
        remove_images(name)


# The module fixture's pipeline (up to its own 1200 s bound) is charged to the first test that uses it.
DEMO_TIMEOUT = pytest.mark.timeout(1500)


@DEMO_TIMEOUT
def test_the_demo_line_leaves_every_report_on_the_run(demo_line):
    client, run_id = demo_line.client, demo_line.run_id
    for folder, names in EXPECTED.items():
        assert {Path(f.path).name for f in client.list_artifacts(run_id, folder)} == names, folder
    records = sorted(Path(f.path).name for f in client.list_artifacts(run_id, "reports/deploy"))
    assert [r.split("-deploy-")[0] for r in records] == ["production", "staging"], records


@DEMO_TIMEOUT
def test_the_mlflow_ui_shows_every_report_of_the_demo_run(demo_line, browser, free_port):
    """The done-when item as a person checks it: `make mlflow-ui`'s server, the run's page in a real
    browser (the Jenkins link in its description), its Artifacts tab with every reports/ folder
    expanded, and build.json opened in the artifact viewer with the image digests."""
    route = mlflow_ui.run_route(demo_line.experiment_id, demo_line.run_id)
    with mlflow_ui.mlflow_ui(demo_line.root, free_port()) as url:
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
