"""mlci.dashboard.client: the prediction API as the dashboard sees it, against a real API process."""

from __future__ import annotations

import pytest

from mlci.dashboard.client import ApiClient, ApiRejected, ApiUnavailable, api_url


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
