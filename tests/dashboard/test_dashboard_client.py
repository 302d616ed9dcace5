"""The API client (against a real API process), the plain logic, the launcher, the registry reader."""

from __future__ import annotations

import io
import sys

import pandas as pd
import pytest

from dashboard import core, launch, registry
from dashboard.client import ApiClient, ApiRejected, ApiUnavailable, api_url

SCHEMA = {
    "features": [
        {"name": "age", "type": "numeric", "min": 18, "max": 120, "categories": None, "nullable": False},
        {"name": "income", "type": "numeric", "min": 0, "max": None, "categories": None, "nullable": True},
        {
            "name": "region",
            "type": "categorical",
            "min": None,
            "max": None,
            "categories": ["north", "south"],
            "nullable": False,
        },
    ],
    "max_batch": 2,
    "example": {"age": 30.0, "income": 1000.0, "region": "north"},
}


# -- client ----------------------------------------------------------------------------------------
def test_client_reads_version_schema_and_predicts(api_v1):
    with ApiClient(api_v1.url) as client:
        version = client.version()
        assert (version["name"], version["version"], version["colour"]) == ("breast-cancer-classifier", "1", "blue")
        schema = client.schema()
        assert schema["max_batch"] == 10 and len(schema["features"]) == 30
        result = client.predict([schema["example"], schema["example"]])
        assert result.model_version == "1" and len(result.predictions) == 2 and result.request_id
        assert sum(result.predictions[0].probabilities.values()) == pytest.approx(1.0)
        assert client.health() == {"status": "ok"} and client.ready()["status"] == "ready"


def test_client_maps_a_422_to_field_problems(api_v1):
    with ApiClient(api_v1.url) as client:
        example = client.schema()["example"]
        bad = [example, {**example, "mean_area": -1.0, "surprise": 1}]
        with pytest.raises(ApiRejected) as caught:
            client.predict(bad)
    error = caught.value
    assert error.status == 422 and error.error == "invalid_input" and error.request_id
    problems = {(d.record, d.field): d.problem for d in error.details}
    assert "greater than or equal to 0" in problems[(1, "mean_area")]
    assert problems[(1, "surprise")] == "unknown field"
    assert error.by_field(1) == {"mean_area": [problems[(1, "mean_area")]], "surprise": ["unknown field"]}
    assert error.by_field(0) == {}


def test_client_refuses_an_over_large_batch_with_a_message(api_v1):
    with ApiClient(api_v1.url) as client:
        example = client.schema()["example"]
        with pytest.raises(ApiRejected) as caught:
            client.predict([example] * 11)
    assert caught.value.status == 422 and "records" in caught.value.message


def test_client_says_when_the_api_is_down(dead_url):
    with ApiClient(dead_url) as client, pytest.raises(ApiUnavailable) as caught:
        client.version()
    assert dead_url in caught.value.message and "cannot reach" in caught.value.message


def test_api_url_comes_from_the_environment():
    assert api_url({"MLCI_API_URL": " http://router:8080/ "}) == "http://router:8080"
    assert api_url({}) == "http://127.0.0.1:8000"


# -- plain logic -----------------------------------------------------------------------------------
def test_range_text_and_steps():
    age, income, region = SCHEMA["features"]
    assert core.range_text(age) == "18 ≤ x ≤ 120"
    assert core.range_text(income) == "≥ 0; may be empty"
    assert core.range_text(region) == "one of: north, south"
    assert core.numeric_step(age, 30) == 1.0
    assert core.numeric_step(income, 0.02) == pytest.approx(0.0001)


def test_record_from_form_types_the_values():
    record = core.record_from_form(SCHEMA, {"age": 40, "income": None, "region": "south"})
    assert record == {"age": 40.0, "income": None, "region": "south"}
    assert isinstance(record["age"], float)


def test_check_csv_accepts_good_rows_and_keeps_extra_columns():
    check = core.check_csv(b"id,age,income,region\n1,30,100,north\n2,40,,south\n", SCHEMA)
    assert check.ok and not check.errors
    assert check.records == [
        {"age": 30.0, "income": 100.0, "region": "north"},
        {"age": 40.0, "income": None, "region": "south"},
    ]
    assert check.warnings == ["columns the model does not use (kept in the results, not sent): id"]


@pytest.mark.parametrize(
    "text, problem",
    [
        (b"", "the file is empty"),
        (b"age,region\n30,north\n", "missing columns the model needs: income"),
        (b"age,income,region\n", "the file has a header but no rows"),
        (b"age,income,region\nold,1,north\n", "column 'age': not a number in rows 1"),
        (b"age,income,region\n30,1,north\n10,1,north\n", "column 'age': outside 18 ≤ x ≤ 120 in rows 2"),
        (b"age,income,region\n30,1,east\n", "column 'region': values east are not one of north, south"),
        (b"age,income,region\n,1,north\n", "column 'age': empty values in rows 1 (this feature is required)"),
    ],
)
def test_check_csv_names_what_is_wrong(text, problem):
    check = core.check_csv(text, SCHEMA)
    assert not check.ok
    assert problem in check.errors


def test_check_csv_reads_semicolons_too():
    assert core.check_csv("age;income;region\n30;1;north\n", SCHEMA).ok


def test_chunks_stay_within_the_limit():
    records = [{"i": i} for i in range(5)]
    assert [(offset, len(chunk)) for offset, chunk in core.chunks(records, 2)] == [(0, 2), (2, 2), (4, 1)]
    assert core.max_batch({"max_batch": -3}) == 1 and core.max_batch({}) == 100


def test_results_frame_adds_prediction_columns():
    source = pd.read_csv(io.StringIO("id,age\n1,30\n2,40\n"))
    out = core.results_frame(
        source, ["no", "yes"], [{"no": 0.9, "yes": 0.1}, {"no": 0.2, "yes": 0.8}], ["no", "yes"], ["1", "1"]
    )
    assert list(out.columns) == ["id", "age", "prediction", "p_no", "p_yes", "model_version"]
    assert list(out["p_yes"]) == [0.1, 0.8]


def test_model_key_and_primary_metric():
    version = {
        "name": "m",
        "version": "2",
        "run_id": "r",
        "colour": "green",
        "environment": "staging",
        "metrics": {"roc_auc": 0.9, "accuracy": 0.8},
        "primary_metric": "roc_auc",
    }
    assert core.model_key(version) == ("m", "2", "r", "green")
    assert core.describe(version) == "m v2 (green, staging)"
    assert core.primary_metric(version) == ("roc_auc", 0.9)
    assert core.primary_metric({"metrics": {}}) == (None, None)


# -- registry --------------------------------------------------------------------------------------
def test_registry_reads_versions_aliases_and_metric(registry_store):
    view = registry.load(registry_store["uri"], registry_store["name"])
    assert view.primary_metric == "roc_auc"
    assert view.aliases == {"production": "2", "staging": "3", "candidate": "3"}
    assert [(r["version"], r["metric"], r["author"]) for r in view.rows] == [
        (3, 0.962, "carol"),
        (2, 0.973, "bob"),
        (1, 0.951, "alice"),
    ]


def test_registry_settings_from_the_environment():
    assert registry.tracking_uri({}) is None and registry.tracking_uri({"MLFLOW_TRACKING_URI": " "}) is None
    assert registry.model_name("from-api", {}) == "from-api"
    assert registry.model_name("from-api", {"MLCI_MODEL_NAME": "set"}) == "set"
    assert registry.redact("http://u:secret@host:5000/x") == "http://u:***@host:5000/x"


# -- launcher --------------------------------------------------------------------------------------
def test_launch_command_runs_streamlit_headless_without_watcher_or_stats():
    argv = launch.command(8502, "0.0.0.0")
    assert argv[:4] == [sys.executable, "-m", "streamlit", "run"] and argv[4].endswith("dashboard/app.py")
    flags = dict(zip(argv[5::2], argv[6::2]))
    assert flags["--server.port"] == "8502" and flags["--server.address"] == "0.0.0.0"
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"
    assert flags["--server.fileWatcherType"] == "none" and flags["--client.showErrorDetails"] == "none"
    env = launch.environment("http://127.0.0.1:9000/", {"PATH": "/bin"})
    assert env["MLCI_API_URL"] == "http://127.0.0.1:9000" and env["PATH"] == "/bin"


@pytest.mark.parametrize("url, port", [("127.0.0.1:8000", 8501), ("http://x", 0), ("http://x", 70000)])
def test_launch_refuses_bad_arguments(url, port):
    with pytest.raises(ValueError):
        launch.run(url, port)
