"""Each endpoint and each bad input, through FastAPI's TestClient on real bundles."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from fastapi.testclient import TestClient

from mlci.api.app import create_app
from mlci.api.logs import ACCESS_LOGGER
from mlci.api.settings import Settings


def first_record(client) -> dict:
    return dict(client.app.state.mlci.bundle.reference["records"][0])


def test_predict_answers_with_model_version_and_request_id(demo_client, demo_fitted):
    record = first_record(demo_client)
    response = demo_client.post("/predict", json={"records": [record]}, headers={"X-Request-ID": "req-42"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {"name": demo_fitted.config.model_name, "version": "7"}
    assert body["request_id"] == "req-42" == response.headers["x-request-id"]
    assert response.headers["x-model-version"] == "7"
    row = demo_fitted.test_frame.head(1)
    expected = demo_fitted.pipeline.predict_proba(row)[0]
    prediction = body["predictions"][0]
    assert prediction["label"] == demo_fitted.pipeline.predict(row)[0]
    assert [prediction["probabilities"][c] for c in demo_fitted.pipeline.classes_] == expected.tolist()


def test_request_ids_are_generated_and_unique(demo_client):
    record = first_record(demo_client)
    ids = {demo_client.post("/predict", json={"records": [record]}).headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize(
    "name, client_fixture, fitted_fixture",
    [("demo", "demo_client", "demo_fitted"), ("loans", "loans_client", "loans_fitted")],
)
def test_api_equals_scikit_learn_on_the_whole_test_set(request, name, client_fixture, fitted_fixture):
    client, fitted = request.getfixturevalue(client_fixture), request.getfixturevalue(fitted_fixture)
    frame = fitted.test_frame
    limit = client.app.state.mlci.settings.max_batch
    records = []
    for _, row in frame.iterrows():
        record = {}
        for feature, spec in fitted.config.data.features.items():
            value = row[feature]
            if spec.type == "numeric":
                record[feature] = None if math.isnan(value) else float(value)
            else:
                record[feature] = None if value == "" else value
        records.append(record)
    labels, probabilities = [], []
    for start in range(0, len(records), limit):
        response = client.post("/predict", json={"records": records[start : start + limit]})
        assert response.status_code == 200, response.text
        for p in response.json()["predictions"]:
            labels.append(p["label"])
            probabilities.append([p["probabilities"][str(c)] for c in fitted.pipeline.classes_])
    assert labels == [str(x) for x in fitted.pipeline.predict(frame)]
    assert np.max(np.abs(np.array(probabilities) - fitted.pipeline.predict_proba(frame))) <= 1e-5


def test_null_for_a_nullable_feature_means_missing(loans_client, loans_fitted):
    record = {**first_record(loans_client), "income": None, "region": None}
    response = loans_client.post("/predict", json={"records": [record]})
    assert response.status_code == 200, response.text
    frame = loans_fitted.test_frame.head(1).copy()
    frame["income"], frame["region"] = np.nan, ""
    got = response.json()["predictions"][0]
    assert got["label"] == loans_fitted.pipeline.predict(frame)[0]
    want = loans_fitted.pipeline.predict_proba(frame)[0]
    assert [got["probabilities"][c] for c in loans_fitted.pipeline.classes_] == pytest.approx(want, abs=1e-9)


BAD_RECORDS = [
    # (change to the record, field named, words in the problem)
    ({"zip_code": "75001"}, "zip_code", "unknown field"),
    ({"age": "42"}, "age", "valid number"),
    ({"age": True}, "age", "valid number"),
    ({"age": [42]}, "age", "valid number"),
    ({"age": 12}, "age", "greater than or equal to 18"),
    ({"age": 130.5}, "age", "less than or equal to 120"),
    ({"debt_ratio": None}, "debt_ratio", "not nullable"),
    ({"debt_ratio": -0.1}, "debt_ratio", "greater than or equal to 0"),
    ({"region": "mars"}, "region", "'north', 'south', 'east' or 'west'"),
    ({"region": 3}, "region", "'north'"),
    ({"employment": ""}, "employment", "'salaried'"),
]


@pytest.mark.parametrize("change, field, words", BAD_RECORDS)
def test_bad_field_is_a_422_naming_field_and_record(loans_client, change, field, words):
    good = first_record(loans_client)
    response = loans_client.post("/predict", json={"records": [good, good, {**good, **change}]})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_input" and body["request_id"] == response.headers["x-request-id"]
    assert {"record": 2, "field": field} == {k: body["details"][0][k] for k in ("record", "field")}
    assert words in body["details"][0]["problem"]
    assert f"record 2, field '{field}'" in body["message"]


def test_missing_field_is_named(loans_client):
    record = first_record(loans_client)
    del record["income"]
    body = loans_client.post("/predict", json={"records": [record]}).json()
    assert body["details"] == [{"record": 0, "field": "income", "problem": "required field is missing"}]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_nan_and_inf_are_refused(loans_client, literal):
    record = first_record(loans_client)
    record["income"] = 123.0
    raw = loans_client.app.state.mlci.request_model.model_validate({"records": [record]}).model_dump_json()
    raw = raw.replace('"income":123.0', '"income":' + literal.decode()).encode()
    assert literal in raw
    response = loans_client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text
    if response.status_code == 422:
        assert response.json()["details"][0]["field"] == "income"


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"records": []}, 422, "records"),
        ({"records": "all"}, 422, "records"),
        ({}, 422, "records"),
        ({"records": [{}], "extra": 1}, 422, "extra"),
        ([1, 2], 422, None),
    ],
)
def test_bad_envelopes(loans_client, body, status, field):
    response = loans_client.post("/predict", json=body)
    assert response.status_code == status, response.text
    assert field is None or field in [d["field"] for d in response.json()["details"]]


def test_batch_over_the_maximum(loans_client):
    record = first_record(loans_client)
    response = loans_client.post("/predict", json={"records": [record] * 6})  # max_batch=5 for this client
    assert response.status_code == 422
    assert "at most 5" in response.json()["message"]
    assert loans_client.post("/predict", json={"records": [record] * 5}).status_code == 200


def test_body_over_the_size_limit(loans_client):
    big = b'{"records": [' + b" " * 5000 + b"]}"  # max_body_bytes=4096 for this client
    response = loans_client.post("/predict", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "body_too_large"

    def chunks():  # no content-length: the limit is enforced while the body streams
        for _ in range(10):
            yield b" " * 1000

    response = loans_client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_wrong_content_type(loans_client, content_type):
    response = loans_client.post("/predict", content=b'{"records": []}', headers={"content-type": content_type})
    assert response.status_code == 415
    assert "application/json" in response.json()["message"]


@pytest.mark.parametrize("raw", [b'{"records": [', b"", b"{'records': []}", b"\xff\xfe"])
def test_malformed_json(loans_client, raw):
    response = loans_client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "malformed_json"


def test_unknown_route_and_method_are_json(loans_client):
    response = loans_client.get("/nope")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    response = loans_client.get("/predict")
    assert response.status_code == 405 and response.json()["request_id"]


def test_server_error_carries_request_id_and_no_trace(loans_bundle):
    app = create_app(loans_bundle, Settings())
    with TestClient(app, raise_server_exceptions=False) as client:
        record = first_record(client)

        def broken(feeds):
            raise RuntimeError("secret internal detail")

        app.state.mlci.bundle.runner = broken
        for records in ([record], [record, record]):  # micro-batched and direct paths
            response = client.post("/predict", json={"records": records})
            assert response.status_code == 500
            body = response.json()
            assert body["error"] == "internal_error" and body["request_id"] == response.headers["x-request-id"]
            assert "secret" not in response.text and "Traceback" not in response.text


def test_health_ready_version_schema(demo_client, demo_fitted):
    assert demo_client.get("/health").json() == {"status": "ok"}
    ready = demo_client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    version = demo_client.get("/version").json()
    assert (version["colour"], version["environment"]) == ("blue", "staging")
    assert version["version"] == "7" and version["run_id"] == "0123456789abcdef" and version["commit"] == "abc1234"
    assert version["classes"] == list(demo_fitted.pipeline.classes_)
    schema = demo_client.get("/schema").json()
    assert [f["name"] for f in schema["features"]] == list(demo_fitted.config.data.features)
    assert schema["features"][0]["type"] == "numeric" and schema["features"][0]["min"] == 0
    # the example is a valid record
    assert demo_client.post("/predict", json={"records": [schema["example"]]}).status_code == 200


def test_schema_lists_categories(loans_client):
    features = {f["name"]: f for f in loans_client.get("/schema").json()["features"]}
    assert features["employment"]["categories"] == ["salaried", "self-employed", "unemployed"]
    assert features["income"]["nullable"] is True and features["debt_ratio"]["nullable"] is False


def test_not_ready_until_warmed(loans_bundle):
    app = create_app(loans_bundle, Settings())
    client = TestClient(app)  # no `with`: the lifespan (warm-up) has not run
    assert client.get("/ready").status_code == 503
    assert client.get("/health").status_code == 200
    response = client.post("/predict", json={"records": [first_record(client)]})
    assert response.status_code == 503 and response.json()["error"] == "not_ready"
    with client:
        assert client.get("/ready").status_code == 200


def test_warm_up_that_does_not_reproduce_the_reference_stays_unready(loans_bundle, tmp_path):
    import json
    import shutil

    target = tmp_path / "b"
    shutil.copytree(loans_bundle, target)
    reference = json.loads((target / "reference.json").read_text())
    first = reference["expected"][0]
    first["label"] = "no" if first["label"] == "yes" else "yes"
    (target / "reference.json").write_text(json.dumps(reference))
    with TestClient(create_app(target, Settings())) as client:
        response = client.get("/ready")
        assert response.status_code == 503
        assert "reference record 0" in response.json()["reason"]


def test_metrics(loans_client):
    record = first_record(loans_client)
    loans_client.post("/predict", json={"records": [record, record]})
    loans_client.post("/predict", json={"records": [{**record, "age": 1}]})
    text = loans_client.get("/metrics").text
    assert 'mlci_requests_total{method="POST",model_version="3",route="/predict",status="200"}' in text
    assert 'mlci_requests_total{method="POST",model_version="3",route="/predict",status="422"}' in text
    assert 'mlci_request_duration_seconds_bucket{le="0.5",model_version="3",route="/predict",status="200"}' in text
    assert "mlci_predictions_total{label=" in text and 'mlci_model_info{model_version="3"' in text


def test_one_json_access_line_per_request(loans_client):
    lines: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = lines.append
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(handler)
    try:
        record = first_record(loans_client)
        response = loans_client.post("/predict", json={"records": [record, record, record]})
        loans_client.get("/health")
    finally:
        logger.removeHandler(handler)
    fields = [r.fields for r in lines]
    assert len(fields) == 2
    assert fields[0]["request_id"] == response.headers["x-request-id"]
    assert (fields[0]["route"], fields[0]["status"], fields[0]["records"], fields[0]["model_version"]) == (
        "/predict",
        200,
        3,
        "3",
    )
    assert fields[0]["latency_ms"] > 0 and fields[1]["route"] == "/health"


def test_openapi_request_schema_comes_from_the_bundle(loans_client):
    document = loans_client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    record = schemas["Record"]
    assert record["additionalProperties"] is False
    assert set(record["required"]) == {"region", "employment", "income", "age", "debt_ratio"}
    assert record["properties"]["debt_ratio"] == {**record["properties"]["debt_ratio"], "minimum": 0, "maximum": 1}
    assert {"enum": ["north", "south", "east", "west"], "type": "string"} in record["properties"]["region"]["anyOf"]
    body = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/PredictRequest"}
    assert schemas["PredictRequest"]["properties"]["records"]["maxItems"] == 5
    assert loans_client.get("/docs").status_code == 200
