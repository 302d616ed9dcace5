"""Input drift on a real uvicorn server with two workers, serving a real bundle with its training distribution.

Requests drawn from the training rows leave every feature under its threshold; the same requests with ONE
feature shifted push that feature, and only it, past the threshold, on GET /drift and on /metrics alike;
the counts are those of every worker (the access log shows both workers answered).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.model_selection import train_test_split

from mlci.api.drift import FLUSH_SECONDS
from mlci.core.config import Drift, Monitoring
from mlci.learn.model import model_frame
from mlci.ship.export import export_bundle

ROOT = Path(__file__).resolve().parents[3]
SHIFTED = "mean_radius"
MIN_RECORDS = 300
BATCH = 50
MAX_BATCHES = 60  # bound on the load a test sends


def training_rows(config) -> pd.DataFrame:
    frame = pd.read_csv(config.data_path, delimiter=config.data.delimiter)
    x = model_frame(frame, config)
    y = frame[config.data.target].astype(str)
    x_train, *_ = train_test_split(x, y, test_size=config.split.test_size, random_state=config.split.seed, stratify=y)
    return x_train


@pytest.fixture(scope="module")
def drift_bundle(demo_fitted, helpers, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    monitoring = Monitoring(drift=Drift(psi_threshold=0.2, min_records=MIN_RECORDS))
    config = demo_fitted.config.model_copy(update={"monitoring": monitoring})
    rows = training_rows(config)
    out = tmp_path_factory.mktemp("drift") / "bundle"
    export_bundle(demo_fitted.pipeline, config, helpers.metadata(config), demo_fitted.test_frame, out, rows)
    return out, rows


class Server:
    """`python -m mlci.api.server BUNDLE PORT 2`: the same entry point as the container, two workers."""

    def __init__(self, bundle: Path, port: int, log: Path):
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MLCI_LOG_LEVEL": "INFO"}
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mlci.api.server", str(bundle), str(port), "2"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"the API was not ready within 60 s: {log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def predict_pids(self) -> set[int]:
        pids = set()
        for line in self.log.read_text().splitlines():
            if line.startswith("{") and '"route":"/predict"' in line:
                pids.add(json.loads(line)["pid"])
        return pids


@pytest.fixture()
def server(drift_bundle, free_port, tmp_path):
    started = Server(drift_bundle[0], free_port(), tmp_path / "api.log")
    yield started
    started.stop()


def records(rows: pd.DataFrame, count: int, seed: int, shift: str | None = None) -> list[dict]:
    """`count` training rows drawn with replacement; `shift`'s values drawn from its top fifth instead."""
    rng = np.random.default_rng(seed)
    sample = rows.iloc[rng.integers(0, len(rows), count)].reset_index(drop=True)
    if shift is not None:
        top = rows[shift][rows[shift] >= rows[shift].quantile(0.8)].to_numpy()
        sample[shift] = rng.choice(top, count)
    return sample.to_dict(orient="records")


def post(url: str, batch: list[dict]) -> None:
    # A fresh connection per request, so the kernel spreads them over both workers.
    response = httpx.post(url + "/predict", json={"records": batch}, timeout=30, headers={"connection": "close"})
    assert response.status_code == 200, response.text


def drive(server: Server, rows: pd.DataFrame, seed: int, shift: str | None = None) -> int:
    """Send batches (4 at a time) until at least MIN_RECORDS records went and both workers answered."""
    sent, batches = 0, 0
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        while batches < MAX_BATCHES and (sent < MIN_RECORDS * 2 or len(server.predict_pids()) < 2):
            wave = [records(rows, BATCH, seed + batches + i, shift) for i in range(4)]
            list(pool.map(lambda batch: post(server.url, batch), wave))
            sent, batches = sent + BATCH * len(wave), batches + len(wave)
    assert len(server.predict_pids()) >= 2, "one worker answered every request: the test proves nothing"
    return sent


def gauges(url: str) -> dict[str, dict[str, float]]:
    """name -> {feature (or ''): value} for the drift gauges on /metrics."""
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(httpx.get(url + "/metrics", timeout=10).text):
        if family.name.startswith(("mlci_feature_drift", "mlci_drift")):
            for sample in family.samples:
                found.setdefault(sample.name, {})[sample.labels.get("feature", "")] = sample.value
    return found


def drift_of(url: str) -> dict:
    return httpx.get(url + "/drift", timeout=10, headers={"connection": "close"}).json()


def same_from_every_worker(url: str, sent: int) -> dict:
    """Once every worker moved its counts into the shared counter (within FLUSH_SECONDS), GET /drift on
    fresh connections gives one answer, whichever worker reads the summed counts (but for the clock: how
    long ago each worker started)."""
    deadline = time.monotonic() + 10 * FLUSH_SECONDS
    while drift_of(url)["records"] < sent and time.monotonic() < deadline:
        time.sleep(0.1)
    answers = [drift_of(url) for _ in range(6)]
    for answer in answers:
        # Younger than the (default) 60-minute window: the figures are since start, and say so.
        assert not answer.pop("window_full") and answer.pop("window_seconds") < 600
        assert answer.pop("scope").startswith("since start, ") and answer["window_minutes"] == 60
        assert answer["records_total"] == answer["records"]
    assert all(a == answers[0] for a in answers)
    return answers[0]


def test_training_like_requests_drift_nowhere(server, drift_bundle):
    sent = drive(server, drift_bundle[1], seed=1)
    report = same_from_every_worker(server.url, sent)
    assert report["available"] and report["records"] == sent  # every worker's records, each counted once
    assert report["enough_records"] and report["drifted"] == []
    assert all(f["psi"] < f["threshold"] for f in report["features"]), [
        (f["name"], f["psi"]) for f in report["features"]
    ]
    metrics = gauges(server.url)
    assert metrics["mlci_drift_records"][""] == sent
    assert set(metrics["mlci_feature_drifted"].values()) == {0.0}
    assert len(metrics["mlci_feature_drift_psi"]) == 30


def test_one_shifted_feature_drifts_alone(server, drift_bundle):
    sent = drive(server, drift_bundle[1], seed=2, shift=SHIFTED)
    report = same_from_every_worker(server.url, sent)
    assert report["records"] == sent and report["drifted"] == [SHIFTED]
    by_name = {f["name"]: f for f in report["features"]}
    assert by_name[SHIFTED]["psi"] > 0.2 == by_name[SHIFTED]["threshold"]
    assert max(f["psi"] for name, f in by_name.items() if name != SHIFTED) < 0.2
    live = {b["label"]: b["live"] for b in by_name[SHIFTED]["bins"]}
    assert live["missing"] == 0 and sum(live.values()) == pytest.approx(1)
    # An alert needs /metrics alone: the gauge says which feature, the PSI says how far.
    metrics = gauges(server.url)
    assert {f for f, v in metrics["mlci_feature_drifted"].items() if v == 1.0} == {SHIFTED}
    assert metrics["mlci_feature_drift_psi"][SHIFTED] == pytest.approx(by_name[SHIFTED]["psi"], abs=1e-5)
    assert metrics["mlci_feature_drift_threshold"][SHIFTED] == 0.2
    assert metrics["mlci_drift_min_records"][""] == MIN_RECORDS
    assert 0 < metrics["mlci_drift_window_seconds"][""] < 600  # since start: the server is younger than the window
    # Only counts were kept: the raw counter is per bin, summed over the workers.
    counter = [
        s
        for family in text_string_to_metric_families(httpx.get(server.url + "/metrics", timeout=10).text)
        if family.name == "mlci_drift_inputs"
        for s in family.samples
        if s.name == "mlci_drift_inputs_total" and s.labels["feature"] == SHIFTED
    ]
    assert sum(s.value for s in counter) == sent
