"""examples/progression-team (a LightGBM regression) and examples/wine-team (three classes), each a team's
repository with no mlci source, through `mlci pipeline run --approve` on a real Docker engine and Nginx:
test, train, gate, build, staging, approval, production. Production answers what the registered model
predicts (a number per record; a probability per class), and the regression's candidate, waiting in
staging, is compared with production by `mlci shadow report` on mirrored requests: its figures are the
ones computed here from the two versions on exactly the rows sent.

(The wheel half — `pip install mlci` and these repositories' own tests — is the consumer example's, in
tests/packaging/test_example_consumer.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from mlci.api.shadow import FLUSH_SECONDS
from tests.fixtures.release import host_wheelhouse
from tests.helpers.docker_line import remove_environments
from tests.helpers.environment import LEAKY

REPO = Path(__file__).resolve().parents[3]
MLCI = str(Path(sys.executable).parent / "mlci")
STAGES = ("Setup", "Test", "Train", "Gate", "Build images", "Deploy staging", "Approve", "Deploy production")


class Example:
    """A fresh clone of one example, with its own project name and free ports."""

    def __init__(self, name: str, root: Path, env: dict[str, str]):
        self.root = root
        self.env = env
        self.name = name

    def mlci(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [MLCI, *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return done

    @property
    def config(self) -> dict:
        return yaml.safe_load((self.root / "mlci.yaml").read_text())

    def url(self, env: str) -> str:
        return f"http://127.0.0.1:{self.config['environments'][env]['port']}"

    def report(self, name: str) -> dict:
        return json.loads((self.root / "reports" / f"{name}.json").read_text())

    def model(self, version: str):
        """The registered version as the gate loads it (skops, mlci's exact type list)."""
        import mlflow

        from mlci.track import model_loading

        store = f"sqlite:///{self.root / '.mlci' / 'mlflow.db'}"
        mlflow.set_tracking_uri(store)
        mlflow.set_registry_uri(store)
        return model_loading.load_version(self.config["model"].get("name") or self.name, version)

    def records(self) -> pd.DataFrame:
        config = self.config
        frame = pd.read_csv(self.root / config["data"]["path"])
        return frame[list(config["data"]["features"])].astype(np.float64)

    def commit(self, message: str) -> None:
        who = ["-c", "user.name=Example Team", "-c", "user.email=team@example.com"]
        subprocess.run(["git", *who, "commit", "-qam", message], cwd=self.root, check=True, capture_output=True)


def clone(
    example: str, tmp: Path, free_ports, base_images: dict[str, str], shadow_share: float | None = None
) -> Example:
    root = tmp / example
    shutil.copytree(REPO / "examples" / example, root, ignore=shutil.ignore_patterns(".mlci", "reports", "build"))
    wheelhouse = REPO / "build" / "wheelhouse"
    if wheelhouse.is_dir():  # the host's downloads, hard-linked: no copy, no network
        shutil.copytree(wheelhouse, root / "build" / "wheelhouse", copy_function=os.link)
    name = f"ex-{uuid.uuid4().hex[:8]}"
    config = yaml.safe_load((root / "mlci.yaml").read_text())
    config["project"] = name
    config["split"]["cv_folds"] = 3
    staging, staging_preview, production, production_preview = free_ports(4)
    checks = {"ready_timeout": 30, "verify_seconds": 1.5}
    environments = config["environments"]
    # No dashboard here (the browser suite has the regression's pages): fewer images to build.
    environments["staging"] = {"port": staging, "preview_port": staging_preview, "drain_seconds": 1, "checks": checks}
    environments["production"] = {
        **{k: v for k, v in environments["production"].items() if k != "dashboard_port"},
        "port": production,
        "preview_port": production_preview,
        "drain_seconds": 1,
        "checks": dict(checks),
    }
    if shadow_share is not None:  # every request mirrored: the figures are then about every row sent
        environments["production"]["shadow"]["share"] = shadow_share
    (root / "mlci.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    who = ["-c", "user.name=Example Team", "-c", "user.email=team@example.com"]
    for args in (["init", "-q", "-b", "main"], [*who, "add", "-A"], [*who, "commit", "-qm", "example"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    env = {key: value for key, value in os.environ.items() if key not in LEAKY}
    env.update(base_images, COLUMNS="200")
    return Example(name, root, env)


@pytest.fixture(scope="module")
def examples(tmp_path_factory, base_images, build_sources, free_ports) -> Iterator[dict[str, Example]]:
    _, remove_images = build_sources
    tmp = tmp_path_factory.mktemp("examples")
    host_wheelhouse("api")  # the API image's wheels, downloaded once on the host and hard-linked into each clone
    made = {
        "progression-team": clone("progression-team", tmp, free_ports, base_images, shadow_share=1),
        "wine-team": clone("wine-team", tmp, free_ports, base_images),
    }
    try:
        yield made
    finally:
        for example in made.values():
            remove_environments(example.name)
            remove_images(example.name)


def run_line(example: Example) -> subprocess.CompletedProcess:
    run = example.mlci("pipeline", "run", "--approve")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for number, stage in enumerate(STAGES, start=1):
        assert f"stage {number}/8: {stage} — ok" in run.stdout
    return run


@pytest.mark.timeout(1500)
def test_the_regression_example_reaches_production_and_its_candidate_is_shadowed(examples):
    example = examples["progression-team"]
    run_line(example)
    assert example.report("package")["precision"] == "float64"  # LightGBM, followed in float64
    records = example.records().head(40)
    payload = {"records": json.loads(records.to_json(orient="records"))}
    answer = httpx.post(f"{example.url('production')}/predict", json=payload, timeout=10).json()
    v1 = example.model("1").predict(records)
    assert [p["value"] for p in answer["predictions"]] == pytest.approx(v1.tolist(), abs=1e-9)

    # A candidate with smaller trees (rmse 51.0 against 51.3 held out: it passes the gate), trained, gated,
    # built and deployed to staging only, the pipeline's stages one by one (its Test stage and approval
    # add nothing here): production's router now mirrors every /predict to it (share 1 in this clone).
    config = example.config
    config["model"]["params"]["num_leaves"] = 4
    (example.root / "mlci.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    example.commit("smaller trees")
    for step in (["train"], ["gate"], ["build", "--only", "api"], ["deploy", "--env", "staging"]):
        done = example.mlci(*step)
        assert done.returncode == 0, f"{step}: " + done.stdout[-2000:] + done.stderr[-2000:]
    assert "shadow traffic production -> staging: on" in done.stdout + done.stderr
    sent = example.records().iloc[100:160]
    with httpx.Client(timeout=10) as client:
        for _, row in sent.iterrows():
            one = {"records": [json.loads(row.to_json())]}
            assert client.post(f"{example.url('production')}/predict", json=one).status_code == 200
    time.sleep(FLUSH_SECONDS + 1)
    shown = example.mlci("shadow", "report", "--env", "staging", "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    comparison = json.loads(shown.stdout)["comparison"]
    diffs = np.abs(example.model("2").predict(sent) - example.model("1").predict(sent))
    assert comparison["task"] == "regression" and comparison["tolerance"] == 5
    assert comparison["compared"] == comparison["rows"] == len(sent)
    assert comparison["agreement"] == pytest.approx(float(np.mean(diffs <= 5)), abs=1e-6)
    assert comparison["mean_abs_diff"] == pytest.approx(float(diffs.mean()), abs=1e-5)
    assert comparison["max_abs_diff"] == pytest.approx(float(diffs.max()), abs=1e-5)


@pytest.mark.timeout(1500)
def test_the_multiclass_example_reaches_production_with_a_probability_per_class(examples):
    example = examples["wine-team"]
    run_line(example)
    gate = example.report("gate")
    assert gate["primary_metric"] == "f1" and [c["name"] for c in gate["checks"]] == ["f1 floor", "roc_auc min"]
    records = example.records().sample(20, random_state=3)
    payload = {"records": json.loads(records.to_json(orient="records"))}
    answer = httpx.post(f"{example.url('production')}/predict", json=payload, timeout=10).json()["predictions"]
    model = example.model("1")
    assert [p["label"] for p in answer] == list(model.predict(records))
    proba = model.predict_proba(records)
    for row, want in zip(answer, proba):
        assert sorted(row["probabilities"]) == ["barbera", "barolo", "grignolino"]
        assert [row["probabilities"][c] for c in model.classes_] == pytest.approx(want.tolist(), abs=1e-9)
