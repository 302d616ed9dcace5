"""A regression on the dashboard, decided without Streamlit or a browser: the target's facts, where a value
sits among them, the Batch table, the served-value histogram from /metrics, metric directions."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from mlci.dashboard import core, registry, regression, regression_charts, traffic
from mlci.dashboard.client import Prediction, prediction

EDGES = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
VERSION = {"task": "regression", "target": {"min": 0.0, "max": 100.0, "mean": 50.0, "std": 25.0, "edges": EDGES}}


def facts() -> regression.Target:
    found = regression.target(VERSION)
    assert found is not None
    return found


# -- the answer and the task --------------------------------------------------------------------------
def test_an_answer_is_a_value_or_a_label():
    assert prediction({"value": 3}) == Prediction(value=3.0)
    assert prediction({"value": 3}).is_value
    label = prediction({"label": "yes", "probabilities": {"no": 0.25, "yes": 0.75}})
    assert (label.label, label.probabilities, label.is_value) == ("yes", {"no": 0.25, "yes": 0.75}, False)


def test_the_task_comes_from_the_document():
    assert regression.is_regression({"task": "regression"})
    assert not regression.is_regression({"task": "classification"})
    assert not regression.is_regression({"classes": ["a", "b"]})  # an API from before regression models
    assert not regression.is_regression(None)


# -- the training target -----------------------------------------------------------------------------------
def test_target_facts_are_read_and_checked():
    found = facts()
    assert (found.min, found.max, found.mean, found.std, found.deciles) == (0.0, 100.0, 50.0, 25.0, True)
    assert found.bounds()[0] == (0.0, 10.0) and found.bounds()[-1] == (90.0, 100.0) and len(found.bounds()) == 10
    assert found.text() == "0 to 100, mean 50 ± 25 (standard deviation)"
    assert regression.target({"task": "classification", "classes": ["a", "b"]}) is None
    assert regression.target({"target": None}) is None
    bad = [
        {"min": 0, "max": 1, "mean": 0.5},  # no std
        {"min": 0, "max": 1, "mean": 0.5, "std": "x"},
        {"min": 2, "max": 1, "mean": 0.5, "std": 1},  # max below min
        {"min": 0, "max": 1, "mean": 0.5, "std": 1, "edges": [0.5, 0.4]},  # not increasing
        {"min": 0, "max": 1, "mean": 0.5, "std": 1, "edges": [2.0]},  # outside the range
        {"min": 0, "max": math.inf, "mean": 0.5, "std": 1},
    ]
    assert [regression.target({"target": b}) for b in bad] == [None] * len(bad)


def test_where_a_value_sits_in_the_training_target():
    found = facts()
    assert regression.percentile(35.0, found) == pytest.approx(35.0)
    assert regression.percentile(5.0, found) == pytest.approx(5.0)
    assert regression.percentile(95.0, found) == pytest.approx(95.0)
    assert regression.percentile(-1.0, found) == 0.0 and regression.percentile(101.0, found) == 100.0
    assert regression.position(63.0, found) == (
        "about the 63rd percentile of the training target, 0.5 standard deviations above the mean"
    )
    assert regression.position(25.0, found).endswith("1.0 standard deviations below the mean")
    assert regression.position(51.0, found).endswith("percentile of the training target, at the mean")
    assert "below every training target (min 0): the model extrapolates" in regression.position(-3.0, found)
    assert "above every training target (max 100)" in regression.position(140.0, found)
    collapsed = regression.target({"target": {**VERSION["target"], "edges": [20.0, 50.0]}})
    assert collapsed is not None and not collapsed.deciles
    assert regression.position(30.0, collapsed) == "within the training range, 0.8 standard deviations below the mean"


def test_numbers_and_ordinals_as_the_pages_print_them():
    assert [regression.number(v) for v in (0.0, 0.29495311, 152.345, 2.5e-5, 3.2e7)] == [
        "0",
        "0.295",
        "152.3",
        "2.500e-05",
        "3.200e+07",
    ]
    assert [regression.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 100)] == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "100th",
    ]


# -- Batch -------------------------------------------------------------------------------------------------
def test_batch_results_hold_the_values_and_no_class_column():
    source = pd.DataFrame({"a": ["1", "2", "3"], "debt_ratio": ["0.1", "0.2", "0.3"]})
    out = regression.results_frame(source, [0.5, 0.25], ["5", "5"])  # the third row was never answered
    assert list(out.columns) == ["a", "debt_ratio", "prediction", "model_version"]
    assert list(out["prediction"]) == [0.5, 0.25] and out["prediction"].dtype == float
    assert regression.summary(out["prediction"]) == {"mean": "0.375", "median": "0.375", "min": "0.25", "max": "0.5"}
    assert regression.summary(pd.Series([], dtype=float)) == {}


def test_the_batch_histogram_bins_the_values_and_marks_the_training_range():
    spec = json.dumps(regression_charts.values_histogram(pd.Series([1.0, 2.0, 2.5]), facts()).to_dict())
    assert '"maxbins": 30' in spec and '"extent": [0.0, 100.0]' in spec and '"field": "prediction"' in spec
    assert '"type": "rule"' in spec and '"training target"' in spec
    plain = json.dumps(regression_charts.values_histogram(pd.Series([1.0])).to_dict())
    assert '"type": "rule"' not in plain


def test_the_predict_chart_marks_the_value_on_the_deciles():
    spec = regression_charts.prediction_on_target(facts(), 120.0).to_dict()
    layers = [layer["mark"]["type"] for layer in spec["layer"]]
    assert layers == ["rect", "rule", "rule", "text"]
    text = json.dumps(spec)
    assert "prediction 120" in text
    assert '"domain": [-4.8, 124.8]' in text  # the axis widened to the value outside the range
    frame = regression_charts.target_frame(facts())
    assert len(frame) == 10 and set(frame["training targets"]) == {"10 %"}


# -- Live: the served values from /metrics -------------------------------------------------------------
def values_exposition(counts: list[float], version: str = "5", edges=EDGES) -> str:
    """The API's `mlci_prediction_value` buckets (cumulative) for counts per bin, plus the noise around them."""
    lines = ["# TYPE mlci_prediction_value histogram"]
    total = 0.0
    for le, count in zip([*map(str, edges), "+Inf"], counts):
        total += count
        lines.append(f'mlci_prediction_value_bucket{{le="{le}",model_version="{version}"}} {total}')
    lines += [
        f'mlci_prediction_value_count{{model_version="{version}"}} {total}',
        f'mlci_prediction_value_sum{{model_version="{version}"}} 123.0',
        f'mlci_prediction_value_bucket{{le="bad",model_version="{version}"}} 1',
        f'mlci_model_info{{name="m",model_version="{version}"}} 1',
    ]
    return "\n".join(lines) + "\n"


def test_parse_reads_the_predicted_value_buckets():
    sample = traffic.parse(values_exposition([1, 2, 0, 0, 0, 0, 0, 0, 0, 3]), at=1.0, model=("5", "blue"))
    assert sample.values[("5", 10.0)] == 1 and sample.values[("5", 20.0)] == 3 and sample.values[("5", math.inf)] == 6
    assert len(sample.values) == 10 and not sample.predictions


def test_served_values_add_up_since_the_last_switch_and_survive_a_reset():
    blue, green = ("5", "blue"), ("6", "green")
    samples = [
        traffic.parse(values_exposition([1] * 10), 0.0, blue),
        traffic.parse(values_exposition([2] * 10), 1.0, blue),  # +1 in every bin
        traffic.parse(values_exposition([0, 0, 1, 0, 0, 0, 0, 0, 0, 0]), 2.0, blue),  # a restart: counts anew
        traffic.parse(values_exposition([5] * 10, version="6"), 3.0, green),  # a switch
        traffic.parse(values_exposition([6] * 10 + [0], version="6"), 4.0, green),
    ]
    found = regression.bins(traffic.served_values(traffic.traffic(samples, now=5.0)))
    assert [b.count for b in found] == [1.0] * 10  # green's one interval only, not blue's
    before = regression.bins(traffic.served_values(traffic.traffic(samples[:3], now=5.0)))
    assert [b.count for b in before] == [1, 1, 2, 1, 1, 1, 1, 1, 1, 1]  # the reset's interval counts from zero
    assert [b.label for b in found][:2] == ["≤ 10", "10 – 20"] and found[-1].label == "> 90"


def test_bins_from_cumulative_buckets():
    assert regression.bins({1.0: 2.0, 2.0: 5.0}) == []  # no +Inf: not a whole histogram
    found = regression.bins({1.0: 2.0, 2.0: 1.0, math.inf: 4.0})  # a torn scrape's count going down
    assert [(b.low, b.high, b.count) for b in found] == [(-math.inf, 1.0, 2.0), (1.0, 2.0, 0.0), (2.0, math.inf, 2.0)]
    frame = regression.shares_frame(found)
    assert list(frame["share"]) == [0.5, 0.0, 0.5] and list(frame["bin"]) == ["≤ 1", "1 – 2", "> 2"]
    assert list(regression.shares_frame([regression.Bin(-math.inf, math.inf, 0.0)])["share"]) == [0.0]


def test_the_served_values_chart_has_the_training_share_with_deciles_only():
    found = regression.bins({**{e: i + 1.0 for i, e in enumerate(EDGES)}, math.inf: 10.0})
    with_ticks = json.dumps(regression_charts.served_values(found, deciles=True).to_dict())
    assert '"type": "tick"' in with_ticks and '"field": "share"' in with_ticks
    assert '"type": "tick"' not in json.dumps(regression_charts.served_values(found[:3], deciles=False).to_dict())


# -- metrics and their direction ---------------------------------------------------------------------------
def test_metric_directions_are_mlcis():
    assert [core.higher_is_better(m) for m in ("rmse", "mae", "mape", "r2", "roc_auc", "log_loss", "mystery")] == [
        False,
        False,
        False,
        True,
        True,
        False,
        None,
    ]
    assert core.direction_text("rmse") == "lower is better" and core.direction_text("r2") == "higher is better"
    assert core.direction_text("mystery") == ""
    assert core.metric_order(["zz", "r2", "mae", "rmse", "accuracy"]) == ["accuracy", "rmse", "mae", "r2", "zz"]


def test_the_best_version_follows_the_direction():
    rows = [{"version": 3, "metric": 0.135}, {"version": 2, "metric": 0.127}, {"version": 1, "metric": None}]
    assert registry.best_version(rows, higher_is_better=False) == 2
    assert registry.best_version(rows, higher_is_better=True) == 3
    assert registry.best_version(rows, higher_is_better=None) is None
    assert registry.best_version([{"version": 1, "metric": None}], higher_is_better=True) is None
    tied = [{"version": 4, "metric": 0.1}, {"version": 7, "metric": 0.1}]
    assert registry.best_version(tied, higher_is_better=False) == 7  # the newest of equals
