"""The drift figures cover a rolling window, not everything since the API started.

Without servers: a DriftMonitor on a real bundle, fed records over a fake clock (hours run in no time).
After a day of training-like traffic, a shift moves the windowed PSI past the threshold within the window,
while the since-start PSI, diluted by the day before, stays under it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.model_selection import train_test_split

from mlci.api.drift import DriftMonitor
from mlci.api.drift_window import SNAPSHOTS_PER_WINDOW, CountHistory, windowed
from mlci.contract.bundle import BundleError, load_bundle
from mlci.core.config import Drift, Monitoring
from mlci.learn.model import model_frame
from mlci.ship.export import export_bundle

SHIFTED = "age"
THRESHOLD = 0.2
WINDOW_MINUTES = 30  # not the default (60): the setting reaches the API through the bundle
PER_MINUTE = 20  # records answered per simulated minute


class FakeClock:
    """time.monotonic as the monitor sees it, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def window_bundle(loans_fitted, helpers, tmp_path_factory):
    drift = Drift(psi_threshold=THRESHOLD, min_records=100, window_minutes=WINDOW_MINUTES)
    config = loans_fitted.config.model_copy(update={"monitoring": Monitoring(drift=drift)})
    frame = pd.read_csv(config.data_path, delimiter=config.data.delimiter)
    x, y = model_frame(frame, config), frame[config.data.target].astype(str)
    rows = train_test_split(x, y, test_size=config.split.test_size, random_state=config.split.seed, stratify=y)[0]
    out = tmp_path_factory.mktemp("drift-window") / "bundle"
    export_bundle(loans_fitted.pipeline, config, helpers.metadata(config), loans_fitted.test_frame, out, rows)
    return load_bundle(out), rows, out


@pytest.fixture()
def monitor(window_bundle, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)  # this process's own counter
    clock, registry = FakeClock(), CollectorRegistry()
    return DriftMonitor(window_bundle[0], registry, clock=clock), clock, registry


def answer_for(monitor: DriftMonitor, clock: FakeClock, bundle, rows: pd.DataFrame, minutes: int, shift: bool) -> None:
    """`minutes` of traffic, PER_MINUTE training rows a minute (SHIFTED drawn from its top fifth when
    `shift`), with the flush task's work (flush, then a snapshot when due) once a simulated second."""
    rng = np.random.default_rng(minutes + shift)
    top = rows[SHIFTED][rows[SHIFTED] >= rows[SHIFTED].quantile(0.8)].to_numpy()
    for _ in range(minutes):
        sample = rows.iloc[rng.integers(0, len(rows), PER_MINUTE)].reset_index(drop=True)
        if shift:
            sample[SHIFTED] = rng.choice(top, PER_MINUTE)
        monitor.observe(bundle.columns_from_records(sample.to_dict(orient="records")))
        clock.now += 60
        monitor.flush()
        monitor.sample()


def gauges(monitor: DriftMonitor) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(monitor.exposition().decode()):
        for sample in family.samples:
            found.setdefault(sample.name, {})[sample.labels.get("feature", "")] = sample.value
    return found


def test_a_shift_after_a_day_of_normal_traffic_drifts_within_the_window(monitor, window_bundle):
    drift, clock, registry = monitor
    bundle, rows, _ = window_bundle
    answer_for(drift, clock, bundle, rows, minutes=24 * 60, shift=False)
    calm = drift.report()
    assert calm.window_full and calm.drifted == [] and calm.records == WINDOW_MINUTES * PER_MINUTE
    assert calm.records_total == 24 * 60 * PER_MINUTE and calm.scope.startswith("the last 30 min")

    answer_for(drift, clock, bundle, rows, minutes=15, shift=True)
    report = drift.report()
    by_name = {f.name: f for f in report.features}
    assert report.drifted == [SHIFTED] and by_name[SHIFTED].psi > THRESHOLD  # half the window is shifted
    assert by_name[SHIFTED].psi_total < THRESHOLD  # since start: 15 shifted minutes in a day, the old figure
    assert report.records == WINDOW_MINUTES * PER_MINUTE and report.records_total == (24 * 60 + 15) * PER_MINUTE
    assert report.window_seconds == WINDOW_MINUTES * 60
    metrics = gauges(drift)  # the alert's figures are the windowed ones
    assert {f for f, v in metrics["mlci_feature_drifted"].items() if v == 1.0} == {SHIFTED}
    assert metrics["mlci_feature_drift_psi"][SHIFTED] == pytest.approx(by_name[SHIFTED].psi, abs=1e-5)
    assert metrics["mlci_drift_records"][""] == report.records
    assert metrics["mlci_drift_window_seconds"][""] == report.window_seconds
    raw = [
        s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
        if s.name == "mlci_drift_inputs_total" and s.labels["feature"] == SHIFTED
    ]
    assert sum(raw) == report.records_total  # the raw counter stays cumulative

    answer_for(drift, clock, bundle, rows, minutes=WINDOW_MINUTES, shift=False)
    assert drift.report().drifted == []  # the shift left the window: the alert clears


def test_before_a_whole_window_the_figures_are_since_start_and_say_so(monitor, window_bundle):
    drift, clock, _ = monitor
    bundle, rows, _ = window_bundle
    answer_for(drift, clock, bundle, rows, minutes=12, shift=True)
    report = drift.report()
    assert not report.window_full and report.scope.startswith("since start, 12 min ago (less than the 30 min")
    assert report.records == report.records_total == 12 * PER_MINUTE
    assert report.drifted == [SHIFTED]
    assert {f.name: f.psi for f in report.features} == {f.name: f.psi_total for f in report.features}
    assert gauges(drift)["mlci_drift_window_seconds"][""] == 12 * 60


def test_the_history_is_bounded_and_takes_the_oldest_snapshot_within_the_window():
    history = CountHistory(window_seconds=3600, started=0.0, baseline=[np.zeros(2)])
    assert history.step == 3600 / SNAPSHOTS_PER_WINDOW
    start = history.start(1800.0)
    assert not start.full and start.seconds == 1800 and start.counts[0].tolist() == [0, 0]
    for minute in range(1, 24 * 60):
        now = minute * 60.0
        assert history.due(now)
        history.add(now, [np.array([minute, 2.0 * minute])])
    assert len(history._snapshots) <= SNAPSHOTS_PER_WINDOW + 2  # a day of snapshots, one window kept
    now = 24 * 60 * 60.0
    start = history.start(now)
    assert start.full and start.seconds == 3600 and start.counts[0].tolist() == [23 * 60, 46 * 60]
    assert not history.due(now - 30)


def test_counts_that_went_down_are_clamped_to_zero():
    # A worker's counter file that disappeared takes its counts out of the sums: no negative bin.
    assert windowed([np.array([5.0, 3.0])], [np.array([2.0, 4.0])])[0].tolist() == [3.0, 0.0]


def _metadata_drift(bundle_dir, tmp_path, edit):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_dir, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    edit(metadata["drift"])
    (copy / "metadata.json").write_text(json.dumps(metadata))
    return copy


def test_the_window_reaches_the_api_through_the_bundle_and_older_bundles_get_the_default(window_bundle, tmp_path):
    bundle, _, out = window_bundle
    assert json.loads((out / "metadata.json").read_text())["drift"]["window_minutes"] == WINDOW_MINUTES
    assert DriftMonitor(bundle, CollectorRegistry()).window_minutes == WINDOW_MINUTES
    older = load_bundle(_metadata_drift(out, tmp_path, lambda drift: drift.pop("window_minutes")))
    assert (
        DriftMonitor(older, CollectorRegistry()).report().scope.startswith("since start, 0 min ago (less than the 60")
    )


def test_a_bundle_with_an_out_of_range_window_is_refused_naming_the_key(window_bundle, tmp_path):
    edited = _metadata_drift(window_bundle[2], tmp_path, lambda drift: drift.update(window_minutes=0))
    with pytest.raises(BundleError, match="window_minutes"):
        load_bundle(edited)


REPO = Path(__file__).resolve().parents[3]
# A uvicorn worker as far as drift counting goes: PROMETHEUS_MULTIPROC_DIR is set before prometheus_client is
# imported (as mlci.api.server does), so its counter is a file in the shared directory. argv: bundle, records (JSON).
# It counts the records, then on each line of stdin prints its report as JSON; "count" counts them again.
WORKER = """
import json, sys
from prometheus_client import CollectorRegistry
from mlci.contract.bundle import load_bundle
from mlci.api.drift import DriftMonitor
bundle = load_bundle(sys.argv[1])
records = json.loads(open(sys.argv[2]).read())
monitor = DriftMonitor(bundle, CollectorRegistry())
for line in sys.stdin:
    if line.strip() == "count":
        monitor.observe(bundle.columns_from_records(records))
        monitor.flush()
    report = monitor.report()
    print(json.dumps({"records": report.records, "records_total": report.records_total, "scope": report.scope}))
    sys.stdout.flush()
"""


class Worker:
    """A worker process sharing `metrics_dir`, alive until closed."""

    def __init__(self, bundle_dir: Path, records: Path, metrics_dir: Path):
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "MLFLOW_DISABLE_TELEMETRY": "true"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(bundle_dir), str(records)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
        )

    def ask(self, command: str) -> dict:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"worker {self.process.pid} exited with {self.process.wait(timeout=10)}"
        return json.loads(line)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def test_a_respawned_worker_counts_its_window_from_its_own_start(window_bundle, tmp_path):
    # uvicorn respawns a dead or hung worker while the others keep counting. The summed counts include
    # everything since the server started; the new worker's "since start" figures must begin at its start,
    # or for a whole window it reports the server's history as its own and mlci_feature_drifted flaps.
    _, rows, bundle_dir = window_bundle
    metrics_dir, records = tmp_path / "metrics", tmp_path / "records.json"
    metrics_dir.mkdir()
    records.write_text(rows.head(PER_MINUTE).to_json(orient="records"))
    earlier = Worker(bundle_dir, records, metrics_dir)
    try:
        for _ in range(3):
            assert earlier.ask("count")["records_total"] > 0
        assert len(list(metrics_dir.glob("counter_*.db"))) == 1  # its counts are in the shared directory
        respawned = Worker(bundle_dir, records, metrics_dir)
        try:
            fresh = respawned.ask("report")
            assert fresh["records_total"] == 3 * PER_MINUTE  # the server's counts, from the live worker
            assert fresh["records"] == 0 and fresh["scope"].startswith("since start, 0 min ago")
            earlier.ask("count")  # counted after the new worker started: within its window
            after = respawned.ask("count")
            assert after["records_total"] == 5 * PER_MINUTE
            assert after["records"] == 2 * PER_MINUTE  # only what arrived since it started, from either worker
            assert earlier.ask("report")["records"] == 5 * PER_MINUTE  # the first worker's window is all of it
        finally:
            respawned.close()
    finally:
        earlier.close()
