"""distribution.json is data: read through a strict, bounded schema; a malformed one stops the API with exit 2.

Also: the figures themselves (bins, PSI, minimum records) in-process, and a bundle without a distribution.
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
from fastapi.testclient import TestClient
from sklearn.model_selection import train_test_split

from mlci.api.app import create_app
from mlci.api.drift import EPSILON, FeatureBins, psi
from mlci.contract import bundle_schema
from mlci.contract.bundle import BundleError, load_bundle
from mlci.contract.bundle_schema import CategoricalBins, NumericBins
from mlci.core.config import Drift, DriftFeature, Monitoring
from mlci.learn.model import model_frame
from mlci.ship.export import export_bundle

ROOT = Path(__file__).resolve().parents[3]


def training_rows(config) -> pd.DataFrame:
    frame = pd.read_csv(config.data_path, delimiter=config.data.delimiter)
    x, y = model_frame(frame, config), frame[config.data.target].astype(str)
    return train_test_split(x, y, test_size=config.split.test_size, random_state=config.split.seed, stratify=y)[0]


def with_drift(config, **settings):
    return config.model_copy(update={"monitoring": Monitoring(drift=Drift(**settings))})


@pytest.fixture(scope="module")
def loans_drift_bundle(loans_fitted, helpers, tmp_path_factory) -> Path:
    config = with_drift(
        loans_fitted.config, min_records=40, psi_threshold=0.25, features={"age": DriftFeature(psi_threshold=0.5)}
    )
    out = tmp_path_factory.mktemp("drift-loans") / "bundle"
    export_bundle(
        loans_fitted.pipeline, config, helpers.metadata(config), loans_fitted.test_frame, out, training_rows(config)
    )
    return out


def broken_copy(bundle: Path, target: Path, edit) -> Path:
    shutil.copytree(bundle, target)
    path = target / "distribution.json"
    document = json.loads(path.read_text())
    result = edit(document)
    path.write_text(result if isinstance(result, str) else json.dumps(document))
    return target


def _first(document: dict) -> dict:
    return document["features"][0]


def _numeric(document: dict) -> dict:
    return next(f for f in document["features"] if f["type"] == "numeric")


def _categorical(document: dict) -> dict:
    return next(f for f in document["features"] if f["type"] == "categorical")


MALFORMED = {
    "not JSON": (lambda d: "{not json", "is not valid JSON"),
    "unknown key": (lambda d: d.update(code="__import__('os')"), "key code: Extra inputs are not permitted"),
    "wrong type": (lambda d: _numeric(d).update(edges="1,2,3"), "edges"),
    "share over 1": (lambda d: _numeric(d).update(missing=1.5), "missing"),
    "infinite edge": (lambda d: "{" + json.dumps(d)[1:].replace('"edges": [', '"edges": [Infinity, ', 1), "edges"),
    "unsorted edges": (lambda d: _numeric(d)["edges"].reverse(), "edges are not strictly increasing"),
    "shares per bin": (lambda d: _numeric(d)["shares"].pop(), "shares for"),
    "shares sum": (lambda d: _numeric(d).update(missing=0.5), "not 1"),
    "repeated category": (
        lambda d: _categorical(d)["categories"].__setitem__(1, _categorical(d)["categories"][0]),
        "repeat",
    ),
    "category shares": (lambda d: _categorical(d)["shares"].pop(), "shares for"),
    "feature order": (lambda d: d["features"].reverse(), "where metadata.json has"),
    "missing feature": (lambda d: d["features"].pop(), "no feature"),
    "unknown type": (lambda d: _first(d).update(type="text"), "type"),
    "too many edges": (lambda d: _numeric(d).update(edges=list(range(101))), "edges"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_distribution_is_refused_naming_the_key(case, loans_drift_bundle, tmp_path):
    edit, expected = MALFORMED[case]
    bundle = broken_copy(loans_drift_bundle, tmp_path / "bundle", edit)
    with pytest.raises(BundleError) as refused:
        load_bundle(bundle)
    assert "distribution.json" in refused.value.message and expected in refused.value.message


def test_an_oversized_distribution_is_refused_before_it_is_parsed(loans_drift_bundle, tmp_path):
    bundle = broken_copy(loans_drift_bundle, tmp_path / "bundle", lambda d: " " * (bundle_schema.MAX_JSON_BYTES + 1))
    with pytest.raises(BundleError, match="bytes"):
        load_bundle(bundle)


def test_a_distribution_that_is_a_link_is_refused(loans_drift_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(loans_drift_bundle, bundle)
    (tmp_path / "elsewhere.json").write_text((bundle / "distribution.json").read_text())
    (bundle / "distribution.json").unlink()
    (bundle / "distribution.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(BundleError, match="missing"):
        load_bundle(bundle)


def test_per_feature_thresholds_must_name_features(loans_drift_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(loans_drift_bundle, bundle)
    metadata = json.loads((bundle / "metadata.json").read_text())
    metadata["drift"]["features"]["salary"] = 0.3
    (bundle / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(BundleError, match=r"drift\.features: salary is not a feature"):
        load_bundle(bundle)


@pytest.mark.parametrize("entry", ["mlci.api.server", "api"])
def test_the_api_exits_2_on_a_malformed_distribution(entry, loans_drift_bundle, tmp_path, free_port):
    bundle = broken_copy(loans_drift_bundle, tmp_path / "bundle", lambda d: _numeric(d)["edges"].reverse())
    port = str(free_port())
    args = [sys.executable, "-m", entry] + ([str(bundle), port] if entry == "mlci.api.server" else [])
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MLCI_BUNDLE": str(bundle),
        "MLCI_PORT": port,
        "MLCI_HOST": "127.0.0.1",
    }
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "distribution.json" in done.stderr and "edges are not strictly increasing" in done.stderr
    assert "Traceback" not in done.stderr


def test_mlci_serve_exits_2_on_a_malformed_distribution(loans_drift_bundle, tmp_path, free_port):
    bundle = broken_copy(loans_drift_bundle, tmp_path / "bundle", lambda d: d.update(rows=0))
    mlci = Path(sys.executable).parent / "mlci"
    done = subprocess.run(
        [str(mlci), "serve", "--bundle", str(bundle), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "distribution.json" in done.stderr and "Traceback" not in done.stderr


def test_the_bundle_digest_covers_the_distribution(loans_drift_bundle, tmp_path):
    from mlci.contract.bundle_digest import bundle_digest

    digest = bundle_digest(loans_drift_bundle)
    assert "distribution.json" in (loans_drift_bundle / "SHA256SUMS").read_text()
    bundle = broken_copy(loans_drift_bundle, tmp_path / "bundle", lambda d: _numeric(d).update(missing=0.0))
    with pytest.raises(BundleError, match=r"distribution\.json differs"):
        load_bundle(bundle, expected_sha256=digest)


# -- the figures, in-process -------------------------------------------------------------------------
def test_numeric_bins_are_open_ended_and_missing_has_its_own():
    entry = NumericBins(name="x", type="numeric", edges=[1.0, 2.0], shares=[0.2, 0.3, 0.4], missing=0.1)
    bins = FeatureBins.from_entry(entry, 0.2)
    values = np.array([-1e9, 0.99, 1.0, 1.5, 2.0, 1e9, np.nan])
    assert bins.bin_of(values).tolist() == [0, 0, 1, 1, 2, 2, 3]
    assert bins.labels == ("[-inf, 1)", "[1, 2)", "[2, +inf)", "missing")


def test_categorical_bins_put_unseen_values_in_other():
    entry = CategoricalBins(
        name="c", type="categorical", categories=["b", "a"], shares=[0.5, 0.3], other=0.1, missing=0.1
    )
    bins = FeatureBins.from_entry(entry, 0.2)
    values = np.array(["a", "b", "zzz", "", "0"], dtype=object)
    assert bins.bin_of(values).tolist() == [1, 0, 2, 3, 2]
    none_kept = CategoricalBins(name="c", type="categorical", categories=[], shares=[], other=0.9, missing=0.1)
    assert FeatureBins.from_entry(none_kept, 0.2).bin_of(values).tolist() == [0, 0, 0, 1, 0]


def test_psi_is_zero_on_the_training_shares_and_finite_on_empty_bins():
    train = np.array([0.25, 0.25, 0.5, 0.0])
    assert psi(train * 1000, train) == pytest.approx(0, abs=1e-12)
    everything_in_one = psi(np.array([0, 0, 0, 10]), train)
    expected = sum((a - e) * np.log(a / e) for a, e in [(EPSILON, 0.25), (EPSILON, 0.25), (EPSILON, 0.5), (1, EPSILON)])
    assert everything_in_one == pytest.approx(expected)


def test_below_the_minimum_records_nothing_is_drifted(loans_drift_bundle):
    app = create_app(loans_drift_bundle)
    with TestClient(app) as client:
        before = client.get("/drift").json()
        assert before["records"] == 0 and all(f["psi"] is None for f in before["features"])
        old = {"region": "north", "employment": "salaried", "income": 50000.0, "age": 119.0, "debt_ratio": 0.2}
        assert client.post("/predict", json={"records": [old] * 39}).status_code == 200
        report = client.get("/drift").json()
        by_name = {f["name"]: f for f in report["features"]}
        assert report["records"] == 39 and not report["enough_records"] and report["drifted"] == []
        assert by_name["age"]["psi"] > by_name["age"]["threshold"] == 0.5  # the per-feature threshold
        assert by_name["region"]["threshold"] == 0.25
        assert client.post("/predict", json={"records": [old]}).status_code == 200
        report = client.get("/drift").json()
        assert report["enough_records"] and "age" in report["drifted"]
        text = client.get("/metrics").text  # one worker: the counter is this process's own
        assert 'mlci_feature_drifted{feature="age",model_version="7"} 1.0' in text
        assert "mlci_drift_inputs_total" in text


def test_a_bundle_without_a_distribution_serves_and_says_drift_is_unavailable(demo_client):
    report = demo_client.get("/drift").json()
    assert report["available"] is False and "distribution.json" in report["reason"]
    predict = demo_client.post("/predict", json={"records": [demo_client.get("/schema").json()["example"]]})
    assert predict.status_code == 200
    assert "mlci_feature_drift" not in demo_client.get("/metrics").text
    assert demo_client.head("/drift").status_code == 200
