"""Issue 15 item 4 with a real Docker engine: the build report (image digests) and each deploy record
land on the MLflow run of the version they built and deployed."""

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import yaml
from mlflow import MlflowClient


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


REPO = Path(__file__).resolve().parents[2]
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
    config["tests"] = {"paths": ["tests/ml/test_gate_rules.py"], "coverage": ["ml"]}
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


def test_the_demo_line_leaves_every_report_on_the_run(tmp_path, base_images, build_sources, free_ports, monkeypatch):
    _, remove_images = build_sources
    root = tmp_path / "repo"
    name = _clone(root, free_ports)
    for key, value in base_images.items():
        monkeypatch.setenv(key, value)
    try:
        run = subprocess.run(
            [MLCI, "pipeline", "run", "--approve"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=1200,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "not archived to MLflow" not in run.stdout and "is not on MLflow run" not in run.stdout, run.stdout
        uri = f"sqlite:///{root / '.mlci' / 'mlflow.db'}"
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        run_id = json.loads((root / "reports" / "train.json").read_text())["run_id"]
        for folder, names in EXPECTED.items():
            assert {Path(f.path).name for f in client.list_artifacts(run_id, folder)} == names, folder
        records = sorted(Path(f.path).name for f in client.list_artifacts(run_id, "reports/deploy"))
        assert [r.split("-deploy-")[0] for r in records] == ["production", "staging"], records
    finally:
        for env in ("production", "staging"):
            subprocess.run([MLCI, "down", "--env", env], cwd=root, capture_output=True, timeout=120)
            subprocess.run(["docker", "volume", "rm", f"{name}-{env}-state"], capture_output=True, timeout=60)
        remove_images(name)
