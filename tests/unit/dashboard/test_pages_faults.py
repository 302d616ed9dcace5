"""What the pages show when things go wrong: the API refusing a chunk, a model not ready, a registry
missing, odd or not MLflow at all, an unexpected error in a page (Streamlit's AppTest, real API processes)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[3]


LOANS_CSV = ROOT / "tests" / "data" / "loans.csv"


def errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


# -- real parts this file adds ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def freetext_api(apis, freetext_bundle):
    return apis.start(freetext_bundle, colour="green", environment="staging", extra_env={"MLCI_MAX_BATCH": "10"})


@pytest.fixture(scope="module")
def odd_store(tmp_path_factory) -> dict[str, str]:
    """A real MLflow store with what `mlci train` would not leave: versions without aliases or usable
    metric tags, and a registered model with no version at all."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("dashboard-odd-mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("odd", artifact_location=(root / "artifacts").as_uri())
    client.create_registered_model("odd-model")
    client.create_registered_model("empty-model")
    for tags in ({"mlci.primary_metric": "roc_auc", "mlci.metric.roc_auc": "n/a", "mlci.author": "eve"}, {}):
        run = client.create_run(experiment)
        client.create_model_version(
            "odd-model", source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags=tags
        )
    return {"uri": uri, "root": str(root)}


# -- Batch: what only the API can refuse ---------------------------------------------------------------
def loans_rows(rows: int) -> pd.DataFrame:
    frame = pd.read_csv(LOANS_CSV).head(rows).drop(columns=["approved"])
    return frame.dropna()


def test_batch_shows_the_rows_the_api_refused_and_keeps_what_it_predicted(freetext_api, open_app, texts):
    frame = loans_rows(40).head(25).reset_index(drop=True)
    frame["region"] = frame["region"].astype(object)
    frame.loc[12, "region"] = "x" * 300  # row 13: over the API's length bound for free text
    at = open_app(freetext_api.url, "batch")
    at.file_uploader[0].upload("loans.csv", frame.to_csv(index=False).encode(), "text/csv").run()
    assert "25 rows ready, 3 request(s)" in texts(at)  # the dashboard's own check lets it through
    at.button(key="batch-send").click().run()
    assert not at.exception
    assert "The API refused the chunk starting at row 11 (422 invalid_input)" in errors(at)
    refused = next(d.value for d in at.dataframe if "problem" in d.value.columns)
    assert list(refused["row"]) == [13] and list(refused["field"]) == ["region"]
    assert "200" in refused["problem"][0]
    assert "10 of 25 rows predicted" in texts(at) and "v4" in texts(at)
    assert len(at.session_state["batch_result"]["frame"]) == 10


def test_batch_says_so_when_one_record_is_over_the_body_limit(apis, bundles, demo_csv, open_app):
    api = apis.start(bundles["v1"], extra_env={"MLCI_MAX_BATCH": "10", "MLCI_MAX_BODY_BYTES": "256"})
    at = open_app(api.url, "batch")
    at.file_uploader[0].upload("rows.csv", demo_csv(3), "text/csv").run()
    at.button(key="batch-send").click().run()
    assert not at.exception
    assert "The API refused the chunk starting at row 1 (413" in errors(at)  # halved down to 1, then said
    assert not list(at.success) and not at.get("download_button")


def test_batch_refuses_infinite_numbers_before_sending(api_v1, demo_csv, open_app):
    frame = pd.read_csv(io.BytesIO(demo_csv(4)))
    frame["mean_area"] = frame["mean_area"].astype(object)
    frame.loc[1, "mean_area"] = "inf"
    at = open_app(api_v1.url, "batch")
    at.file_uploader[0].upload("rows.csv", frame.to_csv(index=False).encode(), "text/csv").run()
    assert not at.exception
    assert "column 'mean_area': not a finite number in rows 2" in errors(at)
    assert not [b for b in at.button if b.key == "batch-send"]


def test_batch_says_when_the_api_is_up_but_not_ready(apis, unready_bundle, demo_csv, open_app):
    api = apis.start(unready_bundle, ready=False)
    at = open_app(api.url, "batch")
    at.file_uploader[0].upload("rows.csv", demo_csv(3), "text/csv").run()
    at.button(key="batch-send").click().run()
    assert not at.exception
    shown = errors(at)
    assert "The API became unavailable after 0 rows" in shown and "not ready" in shown
    assert "reference record 0" in shown  # the API's own reason, passed on


# -- Predict -------------------------------------------------------------------------------------------
def test_predict_with_a_model_that_is_not_ready(apis, unready_bundle, open_app):
    api = apis.start(unready_bundle, ready=False)
    at = open_app(api.url, "predict")
    at.button[0].click().run()  # the form's submit button
    assert not at.exception
    shown = errors(at)
    assert "The prediction API is unavailable" in shown and "not ready" in shown
    assert at.button(key="retry-predict").label == "Retry now"


def test_predict_free_text_field_shows_the_api_limit(freetext_api, open_app):
    at = open_app(freetext_api.url, "predict")
    region = at.text_input[0]
    assert region.label == "region" and "any text" in region.help
    region.input("y" * 300)
    at.button[0].click().run()
    assert not at.exception
    assert any("200" in e.value for e in at.error) and "refused this record" in errors(at)


def test_a_wrong_api_path_is_reported_as_a_refusal(api_v1, open_app):
    """MLCI_API_URL with a path the API does not have: its 404 is shown, not a traceback."""
    at = open_app(api_v1.url + "/v1", "predict")
    assert "**The API refused the request** (404 not_found): Not Found" in errors(at)


# -- Models --------------------------------------------------------------------------------------------
def test_models_page_asks_which_model_when_neither_the_api_nor_the_environment_says(dead_url, registry_store, open_app):
    at = open_app(dead_url, "models", MLFLOW_TRACKING_URI=str(registry_store["uri"]))
    assert any("Which model?" in w.value and "MLCI_MODEL_NAME" in w.value for w in at.warning)


def test_models_page_with_a_file_that_is_not_an_mlflow_store(api_v1, tmp_path, open_app):
    wrong = tmp_path / "notes.db"
    wrong.write_text("not a database\n")
    at = open_app(api_v1.url, "models", MLFLOW_TRACKING_URI=f"sqlite:///{wrong}")
    assert "The model registry is unavailable" in errors(at) and "cannot read the MLflow registry" in errors(at)
    assert any("MLFLOW_TRACKING_URI" in c.value for c in at.caption)  # the hint: what to check
    at.button(key="retry-models").click().run()  # asks again (nothing cached), and still says so
    assert not at.exception and "The model registry is unavailable" in errors(at)


def test_models_page_does_not_create_a_store_where_the_uri_names_none(api_v1, tmp_path, open_app):
    """A misspelt sqlite path must not give a new, empty store (and a page saying "no version yet")."""
    missing = tmp_path / "typo" / "mlflow.db"
    at = open_app(api_v1.url, "models", MLFLOW_TRACKING_URI=f"sqlite:///{missing}")
    assert "The model registry is unavailable" in errors(at) and f"no MLflow database at {missing}" in errors(at)
    assert not missing.exists() and not missing.parent.exists()


def test_models_page_lists_versions_without_aliases_or_metrics(api_v1, odd_store, open_app, texts):
    at = open_app(api_v1.url, "models", MLFLOW_TRACKING_URI=odd_store["uri"], MLCI_MODEL_NAME="odd-model")
    table = next(d.value for d in at.dataframe if "version" in d.value.columns)
    assert list(table["version"]) == [2, 1]
    assert table["roc_auc"].isna().all()  # "n/a" is no score: shown empty, not a crash
    assert list(table["author"]) == ["", "eve"] and list(table["commit"]) == ["unknown", "unknown"]
    assert not at.metric  # no alias, and the API serves another model
    assert "over versions" not in texts(at) and not at.get("vega_lite_chart")


def test_models_page_for_a_model_registered_without_versions(api_v1, odd_store, open_app):
    at = open_app(api_v1.url, "models", MLFLOW_TRACKING_URI=odd_store["uri"], MLCI_MODEL_NAME="empty-model")
    assert any("`empty-model` has no registered version yet" in i.value for i in at.info)


def test_models_page_never_shows_the_tracking_password(api_v1, dead_url, open_app, texts):
    uri = dead_url.replace("http://", "http://ops:hunter2@")
    at = open_app(api_v1.url, "models", MLFLOW_TRACKING_URI=uri)
    shown = texts(at)
    assert "ops:***@127.0.0.1" in shown and "unreachable" in shown
    assert "hunter2" not in shown


def test_models_page_pointed_at_a_server_that_is_not_mlflow(api_v1, open_app):
    """MLFLOW_TRACKING_URI set to the prediction API by mistake: it answers /health, and refuses the rest."""
    at = open_app(api_v1.url, "models", MLFLOW_TRACKING_URI=api_v1.url)
    assert "The model registry is unavailable" in errors(at) and f"MLflow at {api_v1.url}" in errors(at)


# -- the shared parts: refresh setting and the guard ----------------------------------------------------
def test_a_bad_refresh_setting_falls_back_to_three_seconds(api_v1, open_app, texts):
    at = open_app(api_v1.url, MLCI_DASHBOARD_REFRESH="soon")
    assert "refreshes by itself every 3 s" in texts(at)


def _broken_page():
    from mlci.dashboard import ui

    def body():
        raise RuntimeError("the page's own bug")

    ui.guard(body, key="broken")


def test_an_unexpected_error_in_a_page_is_a_banner_not_a_traceback():
    at = AppTest.from_function(_broken_page, default_timeout=30)
    at.run()
    assert not at.exception
    shown = errors(at)
    assert "**Something went wrong on this page** (RuntimeError: the page's own bug)" in shown
    assert "dashboard's log" in shown


# -- a real tracking server ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory, free_port):
    """`mlflow server` (SQLite backend) as a team runs it, with two versions of a model and an alias."""
    import time

    import httpx
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("dashboard-mlflow-server")
    port = free_port()
    log = (root / "server.log").open("wb")
    argv = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
    argv += ["--artifacts-destination", str(root / "artifacts")]
    process = subprocess.Popen(
        argv,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (root / "server.log").read_text()[-2000:]
            try:
                if httpx.get(uri + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mlflow server did not answer /health within 90 s"
            time.sleep(0.5)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment = client.create_experiment("served")
        client.create_registered_model("served-model")
        for score in ("0.91", "0.93"):
            run = client.create_run(experiment)
            tags = {"mlci.primary_metric": "roc_auc", "mlci.metric.roc_auc": score, "mlci.commit": "abc" + score}
            client.create_model_version(
                "served-model", source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags=tags
            )
        client.set_registered_model_alias("served-model", "production", "1")
        yield uri
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.mark.server
def test_models_page_reads_a_tracking_server(api_v1, mlflow_server, open_app):
    at = open_app(api_v1.url, "models", MLFLOW_TRACKING_URI=mlflow_server, MLCI_MODEL_NAME="served-model")
    table = next(d.value for d in at.dataframe if "version" in d.value.columns)
    assert list(table["version"]) == [2, 1] and list(table["roc_auc"]) == [0.93, 0.91]
    assert list(table["aliases"]) == ["", "@production"] and table["commit"][1] == "abc0.91"
    assert {m.label: m.value for m in at.metric}["@production"] == "v1"
    at = open_app(api_v1.url, "models", MLFLOW_TRACKING_URI=mlflow_server, MLCI_MODEL_NAME="it's")
    assert "The model registry is unavailable" in errors(at)  # a name MLflow's filter cannot take: said, not raised
