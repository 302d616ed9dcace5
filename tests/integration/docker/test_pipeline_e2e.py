"""End to end, as a newcomer runs it: from a clean copy of the repository, `mlci pipeline run`
reaches production; a second run with a changed parameter switches colour under load without a
failed request; --no-approve leaves production untouched; a failing unit test stops the line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
MLCI = str(Path(sys.executable).parent / "mlci")


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

    def pipeline(self, *args: str, in_process: bool = True) -> subprocess.CompletedProcess:
        """`mlci pipeline run` from the clone: as a process (what a user types), or through the same
        CLI entry in this process (so the run counts towards coverage)."""
        if not in_process:
            return subprocess.run(
                [MLCI, "pipeline", "run", *args],
                cwd=self.root,
                capture_output=True,
                text=True,
                timeout=900,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "COLUMNS": "200"},
            )
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


@pytest.fixture(scope="module")
def clone(tmp_path_factory, base_images, build_sources, free_ports):
    """A clean copy of this repository (what git would check out), with its own ports and names."""
    _, remove_images = build_sources
    root = tmp_path_factory.mktemp("clone") / "repo"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()
    for name in files:
        source = REPO / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    if (REPO / "build" / "wheelhouse").is_dir():  # the host's downloads, hard-linked: no network
        shutil.copytree(REPO / "build" / "wheelhouse", root / "build" / "wheelhouse", copy_function=os.link)
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    prod, prod_preview, dashboard, staging, staging_preview = free_ports(5)
    config = yaml.safe_load((root / "mlci.yaml").read_text())
    config["project"] = name
    config["model"]["params"]["n_estimators"] = 30
    config["split"]["cv_folds"] = 3
    config["tests"] = {"paths": ["tests/unit/learn/test_gate.py"], "coverage": []}
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
    clone = Clone(root)
    clone.git("init", "-q", "-b", "main")
    clone.git("-c", "user.name=Grace Hopper", "-c", "user.email=grace@example.com", "add", "-A")
    clone.git("-c", "user.name=Grace Hopper", "-c", "user.email=grace@example.com", "commit", "-qm", "clone")
    clone.git("config", "user.name", "Grace Hopper")
    clone.git("config", "user.email", "grace@example.com")
    monkeypatch = pytest.MonkeyPatch()
    for key, value in base_images.items():
        monkeypatch.setenv(key, value)
    try:
        yield clone
    finally:
        for env in ("production", "staging"):
            subprocess.run([MLCI, "down", "--env", env], cwd=root, capture_output=True, timeout=120)
            # the history outlives mlci down on purpose; a test's environment leaves nothing behind
            subprocess.run(["docker", "volume", "rm", f"{name}-{env}-state"], capture_output=True, timeout=60)
        monkeypatch.undo()
        remove_images(name)


def test_first_run_reaches_production(clone):
    run = clone.pipeline("--approve", in_process=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    stages = ("Setup", "Test", "Train", "Gate", "Build images", "Deploy staging", "Approve", "Deploy production")
    for number, stage in enumerate(stages, start=1):
        assert f"stage {number}/8: {stage} — ok" in run.stdout
    assert clone.served("production") == ("1", "blue") and clone.served("staging") == ("1", "blue")
    assert "production: v1 (blue)" in run.stdout and "RESULT OK: pipeline done" in run.stdout
    dashboard = yaml.safe_load(clone.config_file.read_text())["environments"]["production"]["dashboard_port"]
    assert httpx.get(f"http://127.0.0.1:{dashboard}/_stcore/health", timeout=5).status_code == 200


def test_second_run_switches_colour_under_load(clone, load_generator):
    clone.edit(lambda c: c["model"]["params"].update(max_depth=6))
    record = json.loads((clone.root / "build" / "bundle" / "reference.json").read_text())["records"][0]
    with load_generator(clone.url("production"), record, connections=2) as load:
        run = clone.pipeline("--approve")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert clone.served("production") == ("2", "green")
    assert load.failures == [] and len(load.results) > 50
    assert {version for *_, version in load.results} == {"1", "2"}
    assert clone.report("gate")["production"]["version"] == "1"


def test_no_approve_stops_before_production(clone):
    before = clone.served("production")
    clone.edit(lambda c: c["model"]["params"].update(max_depth=7))
    run = clone.pipeline("--no-approve")
    assert run.returncode == 1
    assert "stage 7/8: Approve — stopped" in run.stdout
    assert "v3 was not approved: production is untouched" in run.stderr
    assert clone.served("production") == before and clone.served("staging")[0] == "3"


def test_failing_unit_test_stops_the_line_at_test(clone):
    (clone.root / "tests" / "unit" / "test_broken.py").write_text("def test_broken():\n    assert 1 + 1 == 3\n")
    clone.edit(lambda c: c["tests"].update(paths=["tests/unit/test_broken.py"]))
    trained_before = clone.report("train")["version"]
    run = clone.pipeline("--approve")
    assert run.returncode == 1
    assert "stage 2/8: Test — FAILED" in run.stdout and "tests failed: 1 failed" in run.stderr
    assert "stage 3/8" not in run.stdout
    assert clone.report("train")["version"] == trained_before
