"""Each page's logic through Streamlit's AppTest, against a real API process (no mocks)."""

from __future__ import annotations

import io

import httpx
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest


def column_of(at: AppTest, label: str):
    """The form column holding the input labelled `label`."""
    for column in at.columns:
        if any(w.label == label for w in list(column.number_input) + list(column.selectbox)):
            return column
    raise AssertionError(f"no column holds an input labelled {label!r}")


# -- Live model ------------------------------------------------------------------------------------
def test_live_page_shows_the_served_model(api_v1, open_app, texts):
    at = open_app(api_v1.url)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Version"] == "1"
    assert metrics["Colour"] == "blue"
    assert metrics["Environment"] == "staging"
    assert metrics["Primary metric (roc_auc)"] == "0.9700"
    provenance = at.table[0].value["value"].to_dict()
    assert provenance["trained by"] == "alice"
    assert provenance["commit"] == "1111111aaaa"
    assert provenance["data fingerprint (sha256)"] == "1" * 64
    assert provenance["trained at"].startswith("2026-01-01")
    assert "**Serving** `breast-cancer-classifier` **v1**" in texts(at)  # the sidebar badge, on every page


def test_live_page_announces_a_version_change(apis, bundles, open_app):
    first = apis.start(bundles["v1"], colour="blue", environment="production")
    at = open_app(first.url)
    assert {m.label: m.value for m in at.metric}["Version"] == "1"
    first.stop()
    apis.start(bundles["v2"], port=first.port, colour="green", environment="production")
    at.run()  # what the fragment's timer does
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Version"], metrics["Colour"]) == ("2", "green")
    banner = [w.value for w in at.warning if "served model changed" in w.value]
    assert banner and "v1 (blue, production)" in banner[0] and "v2 (green, production)" in banner[0]
    at.button(key="dismiss-live").click().run()
    assert not [w for w in at.warning if "served model changed" in w.value]


def test_live_page_with_the_api_down_shows_a_banner(dead_url, open_app):
    at = open_app(dead_url)
    errors = "\n".join(e.value for e in at.error)
    assert "The prediction API is unavailable" in errors and dead_url in errors
    assert "API unavailable" in errors  # the sidebar badge says so too
    assert at.button(key="retry-live").label == "Retry now"
    at.button(key="retry-live").click().run()
    assert not at.exception


def test_a_slow_api_is_reported_as_slow(monkeypatch, open_app):
    """A server that accepts connections and never answers: the read timeout turns into the banner."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        monkeypatch.setattr("mlci.dashboard.client.READ_TIMEOUT", 0.5)
        at = open_app(f"http://127.0.0.1:{server.getsockname()[1]}")
        assert "too slow" in "\n".join(e.value for e in at.error)
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in accepted:
            conn.close()
        server.close()


# -- Predict -----------------------------------------------------------------------------------------
def test_predict_form_is_generated_from_the_schema_and_answers(api_v1, open_app, texts):
    schema = httpx.get(api_v1.url + "/schema").json()
    at = open_app(api_v1.url, "predict")
    inputs = {w.label: w.value for w in at.number_input}
    assert sorted(inputs) == sorted(f["name"] for f in schema["features"])
    assert inputs == pytest.approx(schema["example"])  # prefilled with the bundle's example record
    assert "≥ 0" in at.number_input[0].help
    at.button[0].click().run()  # the form's submit button
    assert not at.exception
    expected = httpx.post(api_v1.url + "/predict", json={"records": [schema["example"]]}).json()["predictions"][0]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Label"] == expected["label"]
    assert "Answered by **breast-cancer-classifier v1**" in texts(at)
    shown = at.dataframe[0].value["probability"].to_dict()
    assert shown == pytest.approx(expected["probabilities"])


def test_predict_shows_the_api_message_next_to_the_field_it_names(api_v1, open_app):
    at = open_app(api_v1.url, "predict")
    at.number_input[0].set_value(-5.0)  # mean_radius must be >= 0: the API says so, the form does not clamp
    at.button[0].click().run()
    assert not at.exception
    column = column_of(at, "mean_radius")
    assert any("greater than or equal to 0" in e.value for e in column.error)
    assert any("refused this record" in e.value for e in at.error)
    assert not [m for m in at.metric if m.label == "Label"]  # no stale prediction under an error
    # fixed: the error goes away and the prediction shows
    at.number_input[0].set_value(12.0)
    at.button[0].click().run()
    assert not list(at.error)
    assert [m for m in at.metric if m.label == "Label"]


def test_predict_form_uses_selects_for_categoricals(apis, dashboard_loans_bundle, open_app, texts):
    api = apis.start(dashboard_loans_bundle, colour="green", environment="staging")
    schema = httpx.get(api.url + "/schema").json()
    at = open_app(api.url, "predict")
    selects = {s.label: s for s in at.selectbox}
    assert set(selects) == {"region", "employment"}
    nullable = {f["name"]: f["nullable"] for f in schema["features"]}
    missing = ["(missing)"] if nullable["region"] else []
    assert selects["region"].options == ["north", "south", "east", "west", *missing]
    assert selects["region"].value == schema["example"]["region"]
    assert {n.label for n in at.number_input} == {"income", "age", "debt_ratio"}
    selects["employment"].set_value("self-employed")
    age = next(n for n in at.number_input if n.label == "age")
    age.set_value(200.0)  # over the max of 120
    at.button[0].click().run()
    assert any("less than or equal to 120" in e.value for e in column_of(at, "age").error)
    age = next(n for n in at.number_input if n.label == "age")
    age.set_value(40.0)
    at.button[0].click().run()
    assert not at.exception and not list(at.error)
    assert {m.label: m.value for m in at.metric}["Label"] in ("yes", "no")
    assert "v3" in texts(at)


def test_predict_with_the_api_down_shows_the_banner(dead_url, open_app):
    at = open_app(dead_url, "predict")
    assert any("The prediction API is unavailable" in e.value for e in at.error)
    assert at.button(key="retry-predict").label == "Retry now"
    assert not at.number_input


# -- Batch ---------------------------------------------------------------------------------------------
def test_batch_checks_then_sends_in_chunks_and_offers_the_results(api_v1, demo_csv, open_app, texts):
    at = open_app(api_v1.url, "batch")
    assert "chunks of at most 10 rows" in texts(at)
    data = demo_csv(25)
    at.file_uploader[0].upload("rows.csv", data, "text/csv").run()
    assert not at.exception
    assert any("diagnosis" in w.value for w in at.warning)  # the target column is kept but not sent
    assert "25 rows ready, 3 request(s)" in texts(at)
    at.button(key="batch-send").click().run()
    assert not at.exception
    assert "25 of 25 rows predicted" in texts(at) and "v1" in texts(at)
    result = at.session_state["batch_result"]["frame"]
    frame = pd.read_csv(io.BytesIO(data))
    records = frame.drop(columns=["diagnosis"]).to_dict(orient="records")
    expected = httpx.post(api_v1.url + "/predict", json={"records": records[:10]}).json()["predictions"]
    assert list(result["prediction"][:10]) == [p["label"] for p in expected]
    assert list(result.columns[-4:]) == ["prediction", "p_benign", "p_malignant", "model_version"]
    assert list(result["diagnosis"]) == list(frame["diagnosis"])  # the extra column stays in the results
    assert len(at.get("download_button")) == 1
    assert at.get("progress")[0].value == 100  # the progress bar reached the end


def test_batch_refuses_a_csv_that_does_not_fit_the_schema(api_v1, demo_csv, open_app):
    at = open_app(api_v1.url, "batch")
    frame = pd.read_csv(io.BytesIO(demo_csv(5))).drop(columns=["mean_radius", "worst_area"])
    at.file_uploader[0].upload("bad.csv", frame.to_csv(index=False).encode(), "text/csv").run()
    errors = "\n".join(e.value for e in at.error)
    assert "missing columns the model needs: mean_radius, worst_area" in errors
    assert not [b for b in at.button if b.key == "batch-send"]


def test_batch_refuses_bad_values_before_sending(api_v1, demo_csv, open_app):
    at = open_app(api_v1.url, "batch")
    frame = pd.read_csv(io.BytesIO(demo_csv(5)))
    frame["mean_texture"] = frame["mean_texture"].astype(object)
    frame.loc[2, "mean_texture"] = "abc"
    frame.loc[4, "mean_area"] = -3
    at.text_area(key="batch-paste").input(frame.to_csv(index=False)).run()  # the paste path
    errors = "\n".join(e.value for e in at.error)
    assert "column 'mean_texture': not a number in rows 3" in errors
    assert "column 'mean_area': outside ≥ 0 in rows 5" in errors


def test_batch_with_the_api_down_shows_the_banner(dead_url, open_app):
    at = open_app(dead_url, "batch")
    assert any("The prediction API is unavailable" in e.value for e in at.error)
    assert not at.file_uploader


# -- Models --------------------------------------------------------------------------------------------
def test_models_page_without_mlflow_says_how_to_configure_it(api_v1, open_app):
    at = open_app(api_v1.url, "models")
    info = "\n".join(i.value for i in at.info)
    assert "MLFLOW_TRACKING_URI" in info and "mlci dashboard" in info


def test_models_page_lists_registry_versions(api_v1, registry_store, open_app, texts):
    at = open_app(api_v1.url, "models", MLFLOW_TRACKING_URI=registry_store["uri"])
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["@production"] == "v2" and metrics["@staging"] == "v3" and metrics["API serves"] == "v1"
    table = at.dataframe[0].value
    assert list(table["version"]) == [3, 2, 1]
    assert list(table["roc_auc"]) == pytest.approx(list(reversed(registry_store["scores"])))
    assert list(table["author"]) == ["carol", "bob", "alice"]
    assert list(table["aliases"]) == ["@candidate, @staging", "@production", ""]
    assert table["commit"][0] == "333abcdef"
    assert "roc_auc over versions" in texts(at)
    assert len(at.get("vega_lite_chart")) == 1  # the metric over versions


def test_models_page_takes_the_name_from_the_environment(dead_url, registry_store, open_app):
    at = open_app(dead_url, "models", MLFLOW_TRACKING_URI=registry_store["uri"], MLCI_MODEL_NAME="no-such-model")
    assert any("no-such-model" in i.value and "no registered version" in i.value for i in at.info)


def test_models_page_with_mlflow_unreachable_shows_a_banner(api_v1, dead_url, open_app):
    at = open_app(api_v1.url, "models", MLFLOW_TRACKING_URI=dead_url)
    errors = "\n".join(e.value for e in at.error)
    assert "The model registry is unavailable" in errors and "unreachable" in errors
    assert at.button(key="retry-models").label == "Retry now"


def test_batch_shrinks_its_chunks_when_the_body_limit_bites(apis, bundles, demo_csv, open_app, texts):
    """10 records fit the record limit but not a 4 KiB body limit: the page halves the chunk and goes on."""
    api = apis.start(bundles["v1"], extra_env={"MLCI_MAX_BATCH": "10", "MLCI_MAX_BODY_BYTES": "4096"})
    at = open_app(api.url, "batch")
    at.file_uploader[0].upload("rows.csv", demo_csv(12), "text/csv").run()
    at.button(key="batch-send").click().run()
    assert not at.exception and not list(at.error)
    assert "12 of 12 rows predicted" in texts(at)
