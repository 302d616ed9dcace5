"""The training distribution `mlci package` writes into the bundle, and `monitoring.drift` in mlci.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlci.core import config as config_module
from mlci.core.errors import BadInput, ConfigError
from mlci.learn import data, evaluate, profile_distribution
from mlci.learn.model import build_pipeline
from mlci.ship.export import export_bundle

DEMO_CONFIG = Path(__file__).resolve().parents[3] / "mlci.yaml"


def test_numeric_bins_are_training_quantiles_with_open_ends():
    values = np.array([*range(1, 101), np.nan] * 1, dtype=np.float64)
    bins = profile_distribution.numeric_bins("x", values, 4)
    assert bins.edges == [25.75, 50.5, 75.25]
    assert bins.shares == pytest.approx([25 / 101] * 4)
    assert bins.missing == pytest.approx(1 / 101)


def test_tied_quantiles_merge_and_an_all_missing_feature_has_one_bin():
    zeros = np.array([0.0] * 80 + [1.0, 2.0] * 10)
    bins = profile_distribution.numeric_bins("x", zeros, 10)
    assert bins.edges == sorted(set(bins.edges)) and len(bins.edges) < 9
    assert sum(bins.shares) + bins.missing == pytest.approx(1)
    empty = profile_distribution.numeric_bins("x", np.array([np.nan, np.nan]), 10)
    assert (empty.edges, empty.shares, empty.missing) == ([], [0.0], 1.0)


def test_categorical_shares_keep_the_most_frequent_then_other_and_missing():
    values = np.array(["b"] * 4 + ["a"] * 4 + ["c"] * 2 + ["d"] + [""] * 1, dtype=object)
    bins = profile_distribution.categorical_bins("c", values, 2)
    assert bins.categories == ["a", "b"]  # tied counts: by name, so the file is the same every time
    assert bins.shares == [4 / 12, 4 / 12]
    assert (bins.other, bins.missing) == (3 / 12, 1 / 12)


def test_training_rows_are_used_only_when_their_sha256_is_the_versions():
    frame = pd.DataFrame({"x": [1.0]})
    assert profile_distribution.verified_training_rows(frame, "a" * 64, "a" * 64).frame is frame
    changed = profile_distribution.verified_training_rows(frame, "a" * 64, "b" * 64)
    assert changed.frame is None and "changed since training" in changed.reason
    unknown = profile_distribution.verified_training_rows(frame, "a" * 64, None)
    assert unknown.frame is None and "mlci.data.sha256" in unknown.reason


def test_drift_settings_default_and_are_strict(tmp_path):
    config = config_module.load(DEMO_CONFIG)
    drift = config.monitoring.drift
    assert (drift.psi_threshold, drift.bins, drift.min_records, drift.features) == (0.2, 10, 500, {})
    assert drift.window_minutes == 60
    raw = config_module.read_yaml(config.source)
    for bad, key in (
        ({"psi_threshold": 0}, "monitoring.drift.psi_threshold"),
        ({"bins": 1}, "monitoring.drift.bins"),
        ({"min_records": "many"}, "monitoring.drift.min_records"),
        ({"window": 5}, "monitoring.drift.window"),
        ({"window_minutes": 0}, "monitoring.drift.window_minutes"),
        ({"window_minutes": 10081}, "monitoring.drift.window_minutes"),
        ({"window_minutes": "an hour"}, "monitoring.drift.window_minutes"),
        ({"features": {"nope": {"psi_threshold": 0.3}}}, "nope is not a feature"),
    ):
        with pytest.raises(ConfigError) as refused:
            config_module.parse({**raw, "monitoring": {"drift": bad}})
        assert key in " ".join([refused.value.message, *refused.value.details])
    custom = config_module.parse(
        {**raw, "monitoring": {"drift": {"psi_threshold": 0.1, "features": {"mean_area": {"psi_threshold": 0.3}}}}}
    )
    assert profile_distribution.drift_settings(custom)["features"] == {"mean_area": 0.3}
    weekly = config_module.parse({**raw, "monitoring": {"drift": {"window_minutes": 10080}}})
    assert profile_distribution.drift_settings(weekly)["window_minutes"] == 10080  # what metadata.json carries


def test_export_refuses_a_training_frame_it_cannot_profile(tmp_path):
    config = config_module.load(DEMO_CONFIG)
    split = evaluate.holdout(data.load(config), config)
    pipeline = build_pipeline(config).set_params(model__n_estimators=3).fit(split.x_train, split.y_train)
    test, meta = split.x_test, {"name": "m", "version": "1"}
    with pytest.raises(BadInput, match="training frame is empty"):
        export_bundle(pipeline, config, meta, test, tmp_path / "a", test.head(0))
    with pytest.raises(BadInput, match="lacks mean_radius"):
        export_bundle(pipeline, config, meta, test, tmp_path / "b", test.drop(columns="mean_radius"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_package_writes_the_training_distribution_of_the_version(mixed_project):
    project = mixed_project
    project.edit(**{"monitoring.drift.psi_threshold": 0.15, "monitoring.drift.bins": 5})
    project.commit("drift settings")
    assert project.mlci("train").exit_code == 0
    bundle = project.root / "bundle"
    result = project.mlci("package", "--out", str(bundle))
    assert result.exit_code == 0, result.stderr
    distribution = json.loads((bundle / "distribution.json").read_text())
    config = config_module.load(project.config_file)
    assert distribution["rows"] == len(evaluate.holdout(data.load(config), config).x_train)  # the rows it learned
    by_name = {f["name"]: f for f in distribution["features"]}
    assert len(by_name["income"]["edges"]) <= 4 and by_name["income"]["missing"] > 0  # loans.csv has gaps
    assert set(by_name["region"]["categories"]) <= {"north", "south", "east", "west"}
    assert "distribution.json" in (bundle / "SHA256SUMS").read_text()  # covered by the bundle digest
    metadata = json.loads((bundle / "metadata.json").read_text())
    assert metadata["drift"]["psi_threshold"] == 0.15 and metadata["drift"]["bins"] == 5
    expected = {"distribution": True, "training_rows": distribution["rows"], "psi_threshold": 0.15}
    assert project.report("package")["drift"] == expected


def test_package_leaves_the_distribution_out_when_the_data_changed_since_training(mixed_project):
    project = mixed_project
    assert project.mlci("train").exit_code == 0
    data_file = project.root / "data" / "loans.csv"
    lines = data_file.read_text().splitlines(keepends=True)
    data_file.write_text("".join(lines + lines[1:3]))  # still valid data, but not what v1 learned from
    bundle = project.root / "bundle"
    result = project.mlci("package", "--out", str(bundle))
    assert result.exit_code == 0, result.stderr
    assert "no training distribution in the bundle" in result.stdout and "changed since training" in result.stdout
    assert not (bundle / "distribution.json").exists()
    drift = project.report("package")["drift"]
    assert drift["distribution"] is False and "changed since training" in drift["skipped"]
