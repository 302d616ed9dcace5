"""Real parts for the dashboard tests: two model bundles, API processes (uvicorn), an MLflow store.

Every process a test starts is stopped by the fixture that started it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from ml import config as config_module
from ml.bundle import export_bundle
from ml.config import Config
from ml.model import build_pipeline, model_frame

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / "mlci.yaml"
LOANS_CONFIG = ROOT / "tests" / "data" / "loans.yaml"
MODEL_NAME = "breast-cancer-classifier"
PYTHON = sys.executable


def _config(path: Path, params: dict) -> Config:
    config = config_module.load(path)
    model = config.model.model_copy(update={"params": params})
    return config.model_copy(update={"model": model})


def make_bundle(config: Config, out: Path, version: str, *, commit: str, author: str, score: float) -> Path:
    frame = pd.read_csv(config.data_path, delimiter=config.data.delimiter)
    features = model_frame(frame, config)
    target = frame[config.data.target].astype(str)
    x_train, x_test, y_train, _ = train_test_split(
        features, target, test_size=config.split.test_size, random_state=config.split.seed, stratify=target
    )
    pipeline = build_pipeline(config).fit(x_train, y_train)
    metadata = {
        "name": config.model_name,
        "version": version,
        "run_id": f"run{version}" + "0" * 28,
        "commit": commit,
        "data": {
            "sha256": (version * 64)[:64],
            "rows": len(frame),
            "columns": len(frame.columns),
            "path": str(config.data.path),
        },
        "metrics": {config.metrics.primary: score, "accuracy": score - 0.02},
        "trained_at": f"2026-0{version}-01T12:00:00+00:00",
        "trained_by": author,
        "primary_metric": config.metrics.primary,
    }
    export_bundle(pipeline, config, metadata, x_test, out)
    return out


@pytest.fixture(scope="session")
def bundles(tmp_path_factory) -> dict[str, Path]:
    """'v1' and 'v2': the demo model twice, different parameters and versions; 'loans': categoricals."""
    root = tmp_path_factory.mktemp("dashboard-bundles")
    small = {"n_estimators": 15, "max_depth": 3, "n_jobs": 1, "random_state": 1}
    larger = {"n_estimators": 30, "max_depth": 6, "n_jobs": 1, "random_state": 2}
    return {
        "v1": make_bundle(
            _config(DEMO_CONFIG, small), root / "v1", "1", commit="1111111aaaa", author="alice", score=0.97
        ),
        "v2": make_bundle(
            _config(DEMO_CONFIG, larger), root / "v2", "2", commit="2222222bbbb", author="bob", score=0.98
        ),
    }


@pytest.fixture(scope="session")
def loans_bundle(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dashboard-loans")
    config = _config(LOANS_CONFIG, {"n_estimators": 10, "max_depth": 4, "random_state": 0})
    return make_bundle(config, root / "loans", "3", commit="3333333cccc", author="carol", score=0.8)


@pytest.fixture(scope="session")
def freetext_bundle(tmp_path_factory) -> Path:
    """The loans model with `region` as free text (no declared categories): the API bounds its length,
    a bound GET /schema does not publish, so only the API can refuse an over-long value."""
    config = _config(LOANS_CONFIG, {"n_estimators": 5, "max_depth": 3, "random_state": 0})
    features = dict(config.data.features)
    features["region"] = features["region"].model_copy(update={"categories": None})
    config = config.model_copy(update={"data": config.data.model_copy(update={"features": features})})
    out = tmp_path_factory.mktemp("dashboard-freetext") / "bundle"
    return make_bundle(config, out, "4", commit="4444444dddd", author="dan", score=0.8)


@pytest.fixture(scope="session")
def unready_bundle(bundles, tmp_path_factory) -> Path:
    """v1 whose reference outputs were altered: the API starts, fails its warm-up and stays not ready."""
    target = tmp_path_factory.mktemp("dashboard-unready") / "bundle"
    shutil.copytree(bundles["v1"], target)
    reference = json.loads((target / "reference.json").read_text())
    first = reference["expected"][0]
    first["label"] = "benign" if first["label"] == "malignant" else "malignant"
    (target / "reference.json").write_text(json.dumps(reference))
    return target


@dataclass
class ApiProcess:
    bundle: Path
    port: int
    colour: str = "blue"
    environment: str = "test"
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0, ready: bool = True) -> ApiProcess:
        """Start and wait for /ready (or, with ready=False, for /health only: a model that fails its warm-up)."""
        env = {
            **os.environ,
            "MLCI_COLOUR": self.colour,
            "MLCI_ENV": self.environment,
            "MLCI_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            **self.extra_env,
        }
        self.log = self.bundle.parent / f"api-{self.port}-{self.colour}.log"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [PYTHON, "-m", "api.server", str(self.bundle), str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + ("/ready" if ready else "/health"), timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the API on {self.url} was not ready within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


class ApiFactory:
    """Starts API processes and remembers them; the fixture stops every one at teardown."""

    def __init__(self, free_port):
        self.started: list[ApiProcess] = []
        self.free_port = free_port

    def start(self, bundle: Path, port: int | None = None, ready: bool = True, **kwargs) -> ApiProcess:
        api = ApiProcess(bundle=bundle, port=port or self.free_port(), **kwargs)
        self.started.append(api)
        return api.start(ready=ready)

    def stop_all(self) -> None:
        for api in self.started:
            api.stop()


@pytest.fixture(scope="module")
def apis(free_port):
    factory = ApiFactory(free_port)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def api_v1(apis, bundles) -> ApiProcess:
    """Version 1 in the blue slot; batches limited to 10 records so a small CSV needs several chunks."""
    return apis.start(bundles["v1"], colour="blue", environment="staging", extra_env={"MLCI_MAX_BATCH": "10"})


@pytest.fixture()
def dead_url(free_port) -> str:
    """A URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def registry_store(tmp_path_factory) -> dict[str, object]:
    """A real MLflow store (SQLite) holding three versions of the demo model, tagged as `mlci train` does."""
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("dashboard-mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment(MODEL_NAME, artifact_location=(root / "artifacts").as_uri())
    client.create_registered_model(MODEL_NAME)
    scores = [0.951, 0.973, 0.962]
    for i, (score, author) in enumerate(zip(scores, ["alice", "bob", "carol"]), start=1):
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "test_roc_auc", score)
        client.set_terminated(run.info.run_id)
        client.create_model_version(
            MODEL_NAME,
            source=f"{run.info.artifact_uri}/model",
            run_id=run.info.run_id,
            tags={
                "mlci.commit": f"{i}{i}{i}abcdef",
                "mlci.author": author,
                "mlci.branch": "main",
                "mlci.primary_metric": "roc_auc",
                "mlci.metric.roc_auc": repr(score),
                "mlci.trained_at": f"2026-0{i}-01T12:00:00+00:00",
            },
        )
    client.set_registered_model_alias(MODEL_NAME, "production", "2")
    client.set_registered_model_alias(MODEL_NAME, "staging", "3")
    client.set_registered_model_alias(MODEL_NAME, "candidate", "3")
    return {"uri": uri, "name": MODEL_NAME, "scores": scores}


def _demo_csv(rows: int, *, extra_columns: bool = True) -> bytes:
    frame = pd.read_csv(ROOT / "data" / "breast_cancer.csv").head(rows)
    if not extra_columns:
        frame = frame.drop(columns=["diagnosis"])
    return frame.to_csv(index=False).encode()


@pytest.fixture(scope="session")
def demo_csv():
    """demo_csv(rows) -> CSV bytes of real demo rows, with the target column the dashboard must not send."""
    return _demo_csv


@pytest.fixture(autouse=True)
def _no_streamlit_caches():
    """AppTest runs in this process: drop cached schemas/clients so one test's API is not another's."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture()
def open_app(monkeypatch):
    """open_app(url, page=None, **env) -> the dashboard run once through AppTest against the API at `url`
    (on `pages/<page>.py` when given), with `env` set for the test; fails on any exception it shows."""
    from streamlit.testing.v1 import AppTest

    def run(url: str, page: str | None = None, **env: str) -> AppTest:
        monkeypatch.setenv("MLCI_API_URL", url)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=30)
        at.run()
        if page:
            at.switch_page(f"pages/{page}.py")
            at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run


def _texts(at) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption]
    parts += [e.value for kind in (at.error, at.warning, at.info, at.success) for e in kind]
    return "\n".join(str(p) for p in parts)


@pytest.fixture(scope="session")
def texts():
    """texts(at) -> every message an AppTest run shows (markdown, captions, error/warning/info/success)."""
    return _texts
