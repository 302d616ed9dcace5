"""The answer ring behind shadow traffic (api/shadow.py): the /predict answers a router marked (sampled
by production's, or mirrored into staging's) are kept by request id (label, probabilities, latency,
status — never the request), across uvicorn workers, paged by time; only the slot's token reads them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from mlci.api.app import create_app
from mlci.api.settings import Settings
from mlci.api.shadow import FLUSH_SECONDS, MAX_ROWS, RING_SIZE, AnswerRing
from mlci.core.env import EnvError

SAMPLED = {"x-mlci-sampled": "1"}

ROOT = Path(__file__).resolve().parents[3]
KEYS = {"id", "t", "status", "ms", "shadow", "labels", "probabilities", "truncated"}


def example(client) -> dict:
    return client.get("/schema").json()["example"]


def test_answers_are_kept_by_request_id_without_the_request(demo_client):
    record = example(demo_client)
    ids = [uuid.uuid4().hex for _ in range(5)]
    answers = {}
    for i, request_id in enumerate(ids):
        headers = {"x-request-id": request_id} | ({"x-mlci-shadow": "production"} if i % 2 else SAMPLED)
        response = demo_client.post("/predict", json={"records": [record, record]}, headers=headers)
        assert response.status_code == 200
        answers[request_id] = response.json()["predictions"]
    bad = demo_client.post("/predict", json={"records": [{}]}, headers={"x-request-id": "bad-1", **SAMPLED})
    assert bad.status_code == 422
    page = demo_client.get("/shadow/answers", params={"limit": 2000}).json()
    kept = {a["id"]: a for a in page["answers"]}
    for i, request_id in enumerate(ids):
        entry = kept[request_id]
        assert set(entry) <= KEYS  # the ring holds answers only: no feature value anywhere
        assert entry["status"] == 200 and entry["shadow"] == bool(i % 2) and entry["ms"] > 0
        assert entry["labels"] == [p["label"] for p in answers[request_id]]
        assert entry["probabilities"] == [p["probabilities"] for p in answers[request_id]]
    assert kept["bad-1"]["status"] == 422 and "labels" not in kept["bad-1"]
    assert page["classes"] and page["model"]["version"]


def test_pages_follow_since_and_stop(demo_client):
    record = example(demo_client)
    start = demo_client.get("/shadow/answers", params={"limit": 2000}).json()["next"]
    for _ in range(7):
        demo_client.post("/predict", json={"records": [record]}, headers=SAMPLED)
    seen, since = [], start
    for _ in range(10):
        page = demo_client.get("/shadow/answers", params={"since": since, "limit": 3}).json()
        seen += page["answers"]
        since = page["next"]
        if not page["more"]:
            break
    assert len(seen) == 7 and len({a["id"] for a in seen}) == 7
    assert [a["t"] for a in seen] == sorted(a["t"] for a in seen)
    assert demo_client.get("/shadow/answers", params={"limit": 100000}).status_code == 422  # pages are bounded


def test_the_ring_is_bounded():
    ring = AnswerRing(size=10)
    for i in range(25):
        ring.add(str(i), 200, 1.0, b'{"predictions":[{"label":"a","probabilities":{"a":1.0}}]}', False)
    page = ring.page(0, 100)
    assert [a["id"] for a in page.answers] == [str(i) for i in range(15, 25)]
    assert RING_SIZE >= 1000


def test_a_regressions_answer_keeps_its_values():
    from mlci.api.shadow import _predictions

    kept = _predictions(b'{"predictions": [{"value": 1.5}, {"value": 2}]}')
    assert kept == {"values": [1.5, 2.0], "truncated": False}


def test_a_foreign_body_is_kept_without_predictions():
    ring = AnswerRing(size=10)
    ring.add("x", 200, 1.0, b"not json", False)
    assert ring.page(0, 10).answers[0].keys() == {"id", "t", "status", "ms", "shadow"}


def test_requests_no_router_marked_are_not_kept(demo_client):
    """Only what a comparison needs: a client's own /predict (not sampled, not mirrored) leaves nothing."""
    record = example(demo_client)
    before = demo_client.get("/shadow/answers", params={"limit": 2000}).json()["next"]
    plain = demo_client.post("/predict", json={"records": [record]}, headers={"x-request-id": "plain-1"})
    assert plain.status_code == 200
    page = demo_client.get("/shadow/answers", params={"since": before, "limit": 2000}).json()
    assert "plain-1" not in {a["id"] for a in page["answers"]}


def test_a_batch_answer_keeps_its_first_rows_only(demo_client):
    record = example(demo_client)
    response = demo_client.post(
        "/predict", json={"records": [record] * 50}, headers={"x-request-id": "batch-1", **SAMPLED}
    )
    assert response.status_code == 200
    kept = {a["id"]: a for a in demo_client.get("/shadow/answers", params={"limit": 2000}).json()["answers"]}
    assert len(kept["batch-1"]["labels"]) == MAX_ROWS <= 10 and kept["batch-1"]["truncated"] is True


def test_only_the_slots_token_reads_the_answers(demo_bundle):
    token = "t0k3n-" + uuid.uuid4().hex
    with TestClient(create_app(demo_bundle, Settings(shadow_token=token))) as client:
        record = example(client)
        assert client.post("/predict", json={"records": [record]}, headers=SAMPLED).status_code == 200
        for headers in ({}, {"authorization": "Bearer wrong-token-000000"}, {"authorization": token}):
            refused = client.get("/shadow/answers", headers=headers)
            assert refused.status_code == 401, headers
            assert "answers" not in refused.json() and "labels" not in refused.text
        allowed = client.get("/shadow/answers", headers={"authorization": f"Bearer {token}"})
        assert allowed.status_code == 200 and len(allowed.json()["answers"]) == 1


def test_a_bad_shadow_token_setting_is_refused():
    with pytest.raises(EnvError, match="MLCI_SHADOW_TOKEN"):
        Settings.from_env({"MLCI_SHADOW_TOKEN": "short"})
    assert Settings.from_env({"MLCI_SHADOW_TOKEN": "a" * 32}).shadow_token == "a" * 32
    assert "a" * 32 not in repr(Settings.from_env({"MLCI_SHADOW_TOKEN": "a" * 32}))


def test_a_dead_workers_ring_file_is_not_merged(tmp_path):
    """A worker killed without its lifespan's end leaves its file: it must not be listed for ever."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{dead.pid}.json"
    stale.write_bytes(json.dumps([{"id": "ghost", "t": 1, "status": 200, "ms": 1.0, "shadow": True}]).encode())
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / f"{alive.pid}.json").write_bytes(
            json.dumps([{"id": "sibling", "t": 2, "status": 200, "ms": 1.0, "shadow": True}]).encode()
        )
        ids = [a["id"] for a in AnswerRing(directory=str(tmp_path)).page(0, 100).answers]
    finally:
        alive.kill()
        alive.wait()
    assert ids == ["sibling"]
    assert not stale.exists()


@pytest.fixture()
def two_workers(demo_bundle, free_port, tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLCI_LOG_LEVEL": "INFO"}
    with (tmp_path / "api.log").open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlci.api.server", str(demo_bundle), str(port), "2"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "api.log").read_text()[-3000:]
            try:
                if httpx.get(url + "/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield url, tmp_path / "api.log"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_every_worker_answer_is_listed_once(two_workers):
    url, log = two_workers
    record = httpx.get(url + "/schema", timeout=5).json()["example"]
    ids = [uuid.uuid4().hex for _ in range(40)]
    for request_id in ids:
        # A fresh connection per request, so the kernel spreads them over both workers.
        response = httpx.post(
            url + "/predict",
            json={"records": [record]},
            headers={"x-request-id": request_id, "connection": "close", **SAMPLED},
            timeout=30,
        )
        assert response.status_code == 200
    time.sleep(FLUSH_SECONDS * 2.5)  # each worker shares its ring at most FLUSH_SECONDS late
    listed: list[str] = []
    since = 0
    for _ in range(50):
        page = httpx.get(url + "/shadow/answers", params={"since": since, "limit": 7}, timeout=5).json()
        listed += [a["id"] for a in page["answers"]]
        since = page["next"]
        if not page["more"]:
            break
    assert sorted(i for i in listed if i in set(ids)) == sorted(ids)
    assert len(listed) == len(set(listed))
    answered_by = {json.loads(line)["pid"] for line in log.read_text().splitlines() if '"route":"/predict"' in line}
    assert len(answered_by) == 2  # both workers answered: the listing merged their rings
