"""Each page with a regression model served, through Streamlit's AppTest against a real API process: numbers
and their distribution, no label or class probability anywhere; the Models page ranks rmse, lower first."""

from __future__ import annotations

import io
import json
import re
import time

import httpx
import pandas as pd
import pytest

from tests.helpers.regression import MODEL_NAME, VERSION, regression_csv


@pytest.fixture(scope="module")
def api(apis, regression_bundle):
    """The regression, in the green slot of staging; batches of at most 25 records."""
    return apis.start(regression_bundle, colour="green", environment="staging", extra_env={"MLCI_MAX_BATCH": "25"})


def charts(at) -> list[str]:
    return [c.proto.spec for c in at.get("vega_lite_chart")]


def served_count(shown: str) -> int:
    """How many predicted values the Live page's histogram holds (0 while it collects)."""
    found = re.search(r"(\d+) predicted values since the last switch", shown)
    return int(found[1]) if found else 0


def test_predict_shows_the_value_against_the_training_target(api, open_app, texts):
    schema = httpx.get(api.url + "/schema").json()
    target = httpx.get(api.url + "/version").json()["target"]
    at = open_app(api.url, "predict")
    assert {n.label for n in at.number_input} == {"income", "age"}
    at.button[0].click().run()
    assert not at.exception
    expected = httpx.post(api.url + "/predict", json={"records": [schema["example"]]}).json()["predictions"][0]
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Predicted value"]) == pytest.approx(expected["value"], rel=1e-3)
    assert metrics["Training percentile"].startswith("≈ ")
    assert "Label" not in metrics and "Confidence" not in metrics
    assert not at.dataframe  # no probability table
    shown = texts(at)
    assert f"Answered by **{MODEL_NAME} v{VERSION}**" in shown
    assert "percentile of the training target" in shown
    assert f"**{metrics['Predicted value']}** is about the " in shown
    assert f"Training target: {target['min']:.4g} to {target['max']:.4g}, mean" in shown
    (chart,) = charts(at)  # the target's deciles as bands, its mean, the prediction as a rule with its value
    assert [layer["mark"]["type"] for layer in json.loads(chart)["layer"]] == ["rect", "rule", "rule", "text"]


def test_batch_adds_a_value_column_and_a_histogram(api, open_app, texts):
    at = open_app(api.url, "batch")
    data = regression_csv(60)
    at.file_uploader[0].upload("loans.csv", data, "text/csv").run()
    assert not at.exception
    assert "60 rows ready, 3 request(s)" in texts(at)
    at.button(key="batch-send").click().run()
    assert not at.exception and not list(at.error)
    assert "60 of 60 rows predicted" in texts(at)
    result = at.session_state["batch_result"]["frame"]
    frame = pd.read_csv(io.BytesIO(data))
    records = frame.drop(columns=["debt_ratio", "approved"]).to_dict(orient="records")
    records = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in records[:25]]
    expected = httpx.post(api.url + "/predict", json={"records": records}).json()["predictions"]
    assert list(result["prediction"][:25]) == pytest.approx([p["value"] for p in expected])
    assert list(result.columns[-2:]) == ["prediction", "model_version"]
    assert not [c for c in result.columns if c.startswith("p_")]
    assert list(result["debt_ratio"]) == list(frame["debt_ratio"].astype(str))  # the true target, kept
    metrics = {m.label: m.value for m in at.metric}
    assert set(metrics) == {"mean prediction", "median prediction", "min prediction", "max prediction"}
    (histogram,) = charts(at)
    assert '"maxbins": 30' in histogram and '"field": "prediction"' in histogram
    assert "training target's min, mean and max" in texts(at)
    assert "**Labels**" not in texts(at)


def test_live_shows_the_target_and_the_served_values(api, open_app, texts):
    at = open_app(api.url, MLCI_DASHBOARD_REFRESH="1")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Version"] == VERSION and metrics["Colour"] == "green"
    assert metrics["Primary metric (rmse, lower is better)"] != "—"
    provenance = at.table[0].value["value"].to_dict()
    assert provenance["task"] == "regression (predicts a number)"
    assert provenance["training target"].startswith("0.01 to 0.824, mean ")
    assert "classes" not in provenance
    scores = at.table[1].value
    assert scores.loc["rmse", "better"] == "lower is better" and scores.loc["r2", "better"] == "higher is better"

    before = served_count(texts(at))  # the other tests' predictions, when the page sampled /metrics before them
    example = httpx.get(api.url + "/schema").json()["example"]
    with httpx.Client(base_url=api.url, timeout=10) as client:
        for _ in range(12):
            assert client.post("/predict", json={"records": [example]}).status_code == 200
    deadline = time.monotonic() + 10  # a refresh samples /metrics again at most every 0.5 s: a busy box may miss one
    while True:
        time.sleep(0.6)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if served_count(texts(at)) > before or time.monotonic() > deadline:
            break
    assert served_count(texts(at)) == before + 12, texts(at)
    served = [c for c in charts(at) if "share of predictions" in c]
    assert len(served) == 1 and '"type": "tick"' in served[0]  # the histogram, a tenth of the targets per bin
    assert not [c for c in charts(at) if "predictions/s by class" in c]


def test_models_ranks_the_regression_metrics_lower_first(api, regression_registry, open_app, texts):
    at = open_app(api.url, "models", MLFLOW_TRACKING_URI=str(regression_registry["uri"]))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Best rmse"] == "v2"  # the lowest rmse, not the highest
    assert metrics["@production"] == "v1" and metrics["API serves"] == f"v{VERSION}"
    assert "rmse over versions (lower is better)" in texts(at)
    table = at.dataframe[0].value
    assert list(table.columns[:5]) == ["version", "aliases", "rmse", "mae", "r2"]
    scores = list(reversed(regression_registry["metrics"]))
    assert list(table["rmse"]) == pytest.approx([s["rmse"] for s in scores])
    assert list(table["r2"]) == pytest.approx([s["r2"] for s in scores])
    assert "classes" not in table.columns
