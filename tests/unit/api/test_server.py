"""A real uvicorn process (mlci.api.server, uvloop + httptools) on a free 127.0.0.1 port, called over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest


@pytest.fixture(scope="module")
def server(loans_bundle, helpers, tmp_path_factory, free_port):
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {**os.environ, "MLCI_COLOUR": "green", "MLCI_ENV": "staging", "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlci.api.server", str(loans_bundle), str(port), "2"],
            cwd=helpers.root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}: {log.read_text()}")
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready within 60 s: {log.read_text()}")
            time.sleep(0.2)
        yield base, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def test_real_server_predicts_like_scikit_learn(server, loans_fitted):
    base, _log = server
    version = httpx.get(f"{base}/version").json()
    assert (version["colour"], version["environment"], version["version"]) == ("green", "staging", "3")
    example = httpx.get(f"{base}/schema").json()["example"]
    response = httpx.post(f"{base}/predict", json={"records": [example]})
    assert response.status_code == 200 and response.headers["x-request-id"]
    frame = loans_fitted.test_frame.head(1)
    assert response.json()["predictions"][0]["label"] == loans_fitted.pipeline.predict(frame)[0]
    assert httpx.post(f"{base}/predict", json={"records": [{**example, "age": "old"}]}).status_code == 422
    assert httpx.post(f"{base}/predict", content=b"{", headers={"content-type": "application/json"}).status_code == 400


def test_real_server_concurrent_single_records(server, loans_fitted, loans_bundle):
    base, _log = server
    from mlci.contract.bundle import load_bundle

    bundle = load_bundle(loans_bundle)
    records = []
    for _, row in loans_fitted.test_frame.iterrows():
        records.append({k: (None if (isinstance(v, float) and v != v) or v == "" else v) for k, v in row.items()})
    expected = [str(x) for x in loans_fitted.pipeline.predict(loans_fitted.test_frame)]

    with httpx.Client(base_url=base, timeout=10) as client:

        def call(i):
            r = client.post("/predict", json={"records": [records[i]]})
            return i, r.status_code, r.json()["predictions"][0]["label"]

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(call, range(len(records))))
    assert all(status == 200 for _, status, _ in results)
    assert [label for _, _, label in results] == expected
    assert bundle.classes == ["no", "yes"]


def test_real_server_logs_startup_and_access_lines_as_json(server):
    base, log = server
    httpx.get(f"{base}/health", headers={"X-Request-ID": "trace-me"})
    # The fixture waits for one worker to answer; on a busy box the second logs its start-up a moment later.
    deadline = time.monotonic() + 15
    while True:
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        startups = [line for line in lines if line.get("event") == "startup"]
        logged = any(line.get("request_id") == "trace-me" for line in lines)
        if (len(startups) >= 2 and logged) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(startups) == 2  # one per worker
    assert startups[0]["version"] == "3" and startups[0]["format"] == "onnx" and startups[0]["ready"] is True
    access = [line for line in lines if line.get("request_id") == "trace-me"]
    assert access and access[0]["route"] == "/health" and access[0]["status"] == 200
