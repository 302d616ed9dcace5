"""Abuse, in-process (FastAPI's TestClient and the ASGI app called directly): bounded error answers,
HEAD wherever GET works, client aborts counted as 499, bad MLCI_* settings refused with a message.
The same attacks against a real uvicorn process are in test_api_abuse_server.py."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from mlci.api.logs import ACCESS_LOGGER, APP_LOGGER
from mlci.api.responses import MAX_DETAILS
from mlci.api.schema import ErrorResponse
from mlci.api.settings import Settings
from mlci.api.validation import INLINE_BODY_BYTES
from mlci.core.env import EnvError


def first_record(client) -> dict:
    return dict(client.app.state.mlci.bundle.reference["records"][0])


class Captured(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def captured():
    handler = Captured()
    loggers = [logging.getLogger(ACCESS_LOGGER), logging.getLogger(APP_LOGGER)]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


def test_a_thousand_empty_records_get_a_small_422(demo_client):
    body = json.dumps({"records": [{}] * 1000})  # 4 KB: 30,000 problems (30 features each)
    response = demo_client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert len(response.content) < 16 * 1024  # was 2.4 MB
    answer = response.json()
    ErrorResponse.model_validate(answer)  # still the documented shape
    features = len(demo_client.app.state.mlci.bundle.features)
    assert len(answer["details"]) == MAX_DETAILS
    # The check stops at 50 problems (it counted all 30,000 before, ~12 ms of GIL-held work per body):
    # details_truncated is the number of records it did not finish, from the one where it stopped.
    stopped_in = (MAX_DETAILS - 1) // features
    assert answer["details_truncated"] == 1000 - stopped_in
    assert [d["record"] for d in answer["details"]] == [i // features for i in range(MAX_DETAILS)]
    assert answer["details"][0] == {
        "record": 0,
        "field": answer["details"][0]["field"],
        "problem": "required field is missing",
    }
    assert f"and {MAX_DETAILS - 1} more problem(s) listed" in answer["message"]
    assert f"{1000 - stopped_in} record(s) or key(s) not checked" in answer["message"]


def test_few_problems_are_all_listed_without_a_truncation_count(loans_client):
    record = first_record(loans_client)
    response = loans_client.post(
        "/predict", json={"records": [record, {**record, "age": "x"}, {**record, "debt_ratio": None}]}
    )
    answer = response.json()
    assert response.status_code == 422 and "details_truncated" not in answer
    assert [(d["record"], d["field"]) for d in answer["details"]] == [(1, "age"), (2, "debt_ratio")]
    assert answer["details"][1]["problem"] == "null is not allowed: this feature is not nullable"


def test_a_large_body_is_validated_and_answered_the_same(demo_client):
    record = first_record(demo_client)
    records = [record] * 200
    body = json.dumps({"records": records}).encode()
    assert len(body) > INLINE_BODY_BYTES  # validated in the thread pool
    assert demo_client.post("/predict", content=body, headers={"content-type": "application/json"}).status_code == 200
    feature = next(iter(record))
    bad = json.dumps({"records": [*records[:150], {**record, feature: "x"}, *records[:49]]})
    response = demo_client.post("/predict", content=bad, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["details"] == [
        {"record": 150, "field": feature, "problem": "Input should be a valid number"}
    ]


def test_many_unknown_fields_are_bounded_too(loans_client):
    record = {**first_record(loans_client), **{f"x{i}": i for i in range(300)}}
    response = loans_client.post("/predict", json={"records": [record]})
    answer = response.json()
    assert response.status_code == 422 and len(answer["details"]) == MAX_DETAILS
    assert answer["details_truncated"] == 1  # the one record, not finished (250 of its unknown keys not listed)
    assert {d["problem"] for d in answer["details"]} == {"unknown field"}


@pytest.mark.parametrize("path", ["/health", "/ready", "/version", "/schema", "/metrics", "/docs", "/openapi.json"])
def test_head_answers_wherever_get_does(demo_client, path):
    get = demo_client.get(path)
    head = demo_client.head(path)
    assert get.status_code == 200 and head.status_code == 200, head.text
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["x-request-id"]


def test_head_is_not_an_extra_openapi_operation(demo_client):
    paths = demo_client.get("/openapi.json").json()["paths"]
    assert set(paths["/health"]) == {"get"} and set(paths["/predict"]) == {"post"}


def test_head_where_get_is_not_allowed_stays_405(demo_client):
    assert demo_client.head("/predict").status_code == 405


def _call(app, scope_extra: dict, messages: list[dict]):
    """Run the ASGI app on one request whose client sends `messages`, then nothing (it has gone)."""
    sent: list[dict] = []
    queue = list(messages)

    async def receive():
        if queue:
            return queue.pop(0)
        await asyncio.sleep(0)
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
        "root_path": "",
        "query_string": b"",
        **scope_extra,
    }
    scope["raw_path"] = scope["path"].encode()
    asyncio.run(app(scope, receive, send))
    return sent


def test_a_client_that_leaves_mid_body_is_a_499_without_traceback(demo_client, captured):
    app = demo_client.app
    headers = [(b"content-type", b"application/json"), (b"content-length", b"5000"), (b"x-request-id", b"gone-1")]
    partial = {"type": "http.request", "body": b'{"records": [', "more_body": True}
    sent = _call(app, {"method": "POST", "path": "/predict", "headers": headers}, [partial])
    assert not [m for m in sent if m["type"] == "http.response.start"]  # nobody to answer
    access = [r.fields for r in captured.records if r.name == ACCESS_LOGGER and r.fields["request_id"] == "gone-1"]
    assert access and access[0]["status"] == 499
    app_lines = [r for r in captured.records if r.name == APP_LOGGER]
    assert app_lines and all(r.exc_info is None and r.levelno <= logging.WARNING for r in app_lines)
    assert app_lines[0].fields["event"] == "client_closed"
    metrics = demo_client.get("/metrics").text
    assert 'route="/predict",status="499"' in metrics and 'status="500"' not in metrics


def test_a_refused_body_is_drained_before_the_connection_closes(demo_client):
    """The 413 goes out at once; the connection ends (final empty chunk) only after the body was read."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(3 << 20).encode())]
    chunk = b" " * (1 << 20)
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for _ in range(2)]
    messages.append({"type": "http.request", "body": chunk, "more_body": False})
    sent = _call(demo_client.app, {"method": "POST", "path": "/predict", "headers": headers}, messages)
    assert sent[0]["status"] == 413 and (b"connection", b"close") in sent[0]["headers"]
    assert sent[1]["more_body"] is True and json.loads(sent[1]["body"])["error"] == "body_too_large"
    assert sent[2] == {"type": "http.response.body", "body": b""}


def test_a_client_waiting_for_100_continue_is_refused_without_draining(demo_client):
    headers = [(b"content-length", str(3 << 20).encode()), (b"expect", b"100-continue")]
    sent = _call(demo_client.app, {"method": "POST", "path": "/predict", "headers": headers}, [])
    assert sent[0]["status"] == 413 and sent[-1] == {"type": "http.response.body", "body": b""}


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("MLCI_MAX_BATCH", "abc", "must be an integer"),
        ("MLCI_MAX_BODY_BYTES", "1", "must be >= 64"),
        ("MLCI_BATCH_WAIT_MS", "soon", "must be a number"),
        ("MLCI_BODY_TIMEOUT", "0", "must be between 0.1 and 3600"),
        ("MLCI_HEADER_TIMEOUT", "nan", "must be between"),
        ("MLCI_LOG_LEVEL", "loud", "must be one of"),
    ],
)
def test_bad_settings_name_the_variable(name, value, words):
    with pytest.raises(EnvError, match=words) as raised:
        Settings.from_env({name: value})
    assert name in str(raised.value) and raised.value.hint


def test_connection_bounds_come_from_the_environment():
    settings = Settings.from_env(
        {"MLCI_KEEPALIVE_TIMEOUT": "5", "MLCI_HEADER_TIMEOUT": "2.5", "MLCI_BODY_TIMEOUT": "9"}
    )
    assert (settings.keepalive_timeout, settings.header_timeout, settings.body_timeout) == (5.0, 2.5, 9.0)


# --- the envelope's edges, on small ASGI apps of its own ---------------------------------------


def envelope(inner, limit: int = 100, body_timeout: float = 5.0):
    from mlci.api.envelope import RequestEnvelope
    from mlci.api.metrics import Metrics

    metrics = Metrics("probe", "1")
    return RequestEnvelope(
        inner, metrics=metrics, max_body_bytes=limit, model_version="1", body_timeout=body_timeout
    ), metrics


def statuses(metrics) -> dict[str, float]:
    return {
        sample.labels["status"]: sample.value
        for metric in metrics.requests.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


async def read_body(receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def answer(send, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_an_app_that_returns_silently_after_the_client_left_is_a_499():
    async def inner(scope, receive, send):
        await read_body(receive)  # gets http.disconnect, answers nothing

    app, metrics = envelope(inner)
    _call(
        app,
        {"method": "POST", "path": "/x", "headers": []},
        [{"type": "http.request", "body": b"a", "more_body": True}],
    )
    assert statuses(metrics) == {"499": 1.0}


@pytest.mark.parametrize("limit, timeout, want", [(4, 5.0, "200"), (100, 0.05, "200")])
def test_limits_hit_after_the_answer_started_keep_its_status(limit, timeout, want):
    """A body limit or deadline reached after the app answered cannot change the answer."""

    async def inner(scope, receive, send):
        await answer(send)
        await read_body(receive)

    async def slow_then_big():
        await asyncio.sleep(0.2)
        return {"type": "http.request", "body": b"0123456789", "more_body": False}

    app, metrics = envelope(inner, limit=limit, body_timeout=timeout)
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/x", "headers": []}
    asyncio.run(app(scope, slow_then_big, send))
    assert sent[0]["status"] == 200 and statuses(metrics) == {want: 1.0}


def test_a_crash_after_the_answer_started_is_logged_and_keeps_its_status(captured):
    async def inner(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("half-way")

    app, metrics = envelope(inner)
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    asyncio.run(app({"type": "http", "method": "GET", "path": "/x", "headers": []}, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start"] and statuses(metrics) == {"200": 1.0}
    assert any(r.exc_info for r in captured.records)  # a real bug: its traceback goes to the log


def test_the_body_reader_bounds_time_and_passes_the_end_through():
    from mlci.api.request_body import BodyReader, BodyTimeout

    async def scenario():
        async def never():
            await asyncio.sleep(10)

        reader = BodyReader(never, limit=10, timeout=0.05)
        with pytest.raises(BodyTimeout):
            await reader.receive()

        messages = [{"type": "http.request", "body": b"ab", "more_body": False}, {"type": "http.disconnect"}]

        async def scripted():
            return messages.pop(0)

        reader = BodyReader(scripted, limit=10, timeout=5)
        assert (await reader.receive())["body"] == b"ab" and reader.done and not reader.disconnected
        assert (await reader.receive())["type"] == "http.disconnect"  # after the body: no deadline
        await reader.drain(100, 1)  # nothing left to drain

    asyncio.run(scenario())


def test_a_malformed_content_length_is_left_to_the_server(demo_client):
    headers = [(b"content-length", b"abc"), (b"x-request-id", b"bad id with spaces")]
    sent = _call(demo_client.app, {"method": "GET", "path": "/health", "headers": headers}, [])
    assert sent[0]["status"] == 200
    request_id = dict(sent[0]["headers"])[b"x-request-id"]
    assert request_id != b"bad id with spaces" and len(request_id) == 32  # a fresh id, not the odd one


def test_fastapi_validation_errors_are_bounded_too(loans_bundle):
    from fastapi.testclient import TestClient

    from mlci.api.app import create_app

    app = create_app(loans_bundle, Settings())

    @app.post("/probe")
    async def probe(numbers: list[int]) -> int:  # a route with a FastAPI-validated body
        return len(numbers)

    with TestClient(app) as client:
        answer_ = client.post("/probe", json=["x"] * 80).json()
        single = client.post("/probe", json=["x"]).json()
    assert answer_["error"] == "invalid_input" and len(answer_["details"]) == MAX_DETAILS
    assert answer_["details_truncated"] == 80 - MAX_DETAILS
    assert "details_truncated" not in single and len(single["details"]) == 1


def test_head_twins_only_for_get_routes():
    from fastapi import APIRouter

    from mlci.api.routes import answer_head

    router = APIRouter()
    router.add_api_route("/a", lambda: 1, methods=["GET"])
    router.add_api_route("/b", lambda: 1, methods=["POST"])
    answer_head(router)
    assert sorted((r.path, sorted(r.methods)) for r in router.routes) == [
        ("/a", ["GET"]),
        ("/a", ["HEAD"]),
        ("/b", ["POST"]),
    ]


def _full_model_details(model, body: bytes) -> tuple[bool, list[dict]]:
    """What the request model itself says about a body, checked whole (the reference for the bounded check)."""
    from pydantic import ValidationError

    from mlci.api.validation import validation_details

    try:
        model.model_validate_json(body)
    except ValidationError as error:
        return validation_details([dict(item) for item in error.errors(include_url=False)][:MAX_DETAILS])
    return False, []


def _odd_bodies(record: dict, features: list[str]) -> list:
    first, second = features[0], features[1]
    bad = {**record, first: "x", second: None, "zz": 1}
    return [
        b"",
        b"{",
        b'{"records": [',
        b"[1]",
        b"null",
        b"{}",
        b'{"records": 1, "z": 2}',
        b'{"records": {}}',
        b'{"records": null}',
        b'{"records": []}',
        {"records": [{}] * 1001},
        {"records": [{}] * 1001, "extra": 1},
        {"records": [record], "extra": 1, "more": 2},
        {"records": [1, "s", None, [], True, 1.5, {}]},
        {"records": [record, bad, {first: [1], second: {"a": 1}}, record]},
        {"records": [bad] * 40, "top": 1},
        {"records": [record] * 3 + [{}] * 2, "a": 1},
        {"records": [{**record, **{f"k{i}": i for i in range(60)}}], "z": 0},
        {"records": [{**record, first: 1e308 * 10}]},
        {"records": [{**record, first: 10**30, second: True}]},
        {"records": [{**record, first: "1"} for _ in range(3)]},
    ]


def test_the_bounded_check_lists_what_the_request_model_lists(demo_client, loans_client):
    """Record by record, stopping at 50: the same problems, words and order as the whole request model."""
    import asyncio

    from mlci.api.validation import Invalid, validate

    for client in (demo_client, loans_client):
        state = client.app.state.mlci
        record = first_record(client)
        for raw in _odd_bodies(record, list(record)):
            body = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
            answer = asyncio.run(validate(state.request_model, state.quick_model, body))
            assert isinstance(answer, Invalid), body[:80]
            assert (answer.malformed, answer.details) == _full_model_details(state.request_model, body), body[:80]


def test_truncation_counts_unfinished_records_and_unlisted_top_level_keys(demo_client):
    import asyncio

    from mlci.api.validation import validate

    state = demo_client.app.state.mlci
    record = first_record(demo_client)
    features = len(state.bundle.features)

    def check(payload: dict):
        answer = asyncio.run(validate(state.request_model, state.quick_model, json.dumps(payload).encode()))
        return len(answer.details), answer.truncated

    # exactly 50 problems listed and nothing left: no truncation
    assert check({"records": [{**record, **{f"k{i}": i for i in range(MAX_DETAILS)}}]}) == (MAX_DETAILS, 0)
    # 50 listed in record 0, records 1..4 not checked (valid or not)
    assert check({"records": [{**record, **{f"k{i}": i for i in range(MAX_DETAILS)}}] + [record] * 4}) == (50, 4)
    # every record listed, 3 unknown top-level keys left over
    empty = (MAX_DETAILS - 1) // features  # records whose problems all fit, with room for one more
    payload = {"records": [{}] * empty + [{**record, "k": 0}], **{f"t{i}": i for i in range(50)}}
    listed = empty * features + 1
    assert check(payload) == (MAX_DETAILS, 50 - (MAX_DETAILS - listed))
