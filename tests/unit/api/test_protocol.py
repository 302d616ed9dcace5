"""Abuse against a real uvicorn process (mlci.api.server: uvloop, httptools, two workers), from raw sockets
and ordinary clients on 127.0.0.1: refused bodies answered with a readable 413, idle and slow
connections cut after their bounds, client aborts counted as 499, metrics summed across workers,
every /health answered during a flood of invalid records, bad settings refused with exit 2."""

from __future__ import annotations

import itertools
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import requests

BOUND = 1.5  # MLCI_HEADER_TIMEOUT, MLCI_BODY_TIMEOUT and MLCI_KEEPALIVE_TIMEOUT of the test server
REQUEST = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"  # headers to come


def measured(env: dict[str, str]) -> dict[str, str]:
    """`env`, with coverage (when it measures the tests) also saving its data on SIGTERM: uvicorn
    re-raises the SIGTERM it stopped on, which ends the process before coverage's atexit save."""
    serialized = env.get("COVERAGE_PROCESS_CONFIG")
    if serialized:
        from coverage.config import CoverageConfig

        config = CoverageConfig.deserialize(serialized)
        config.sigterm = True
        env = {**env, "COVERAGE_PROCESS_CONFIG": config.serialize()}
    return env


def start(bundle: Path, port: int, workers: int, log: Path, root: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlci.api.server", str(bundle), str(port), str(workers)],
            cwd=root,
            env=measured({**os.environ, "PYTHONUNBUFFERED": "1", **env}),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"server not ready within 60 s: {log.read_text()}")
        time.sleep(0.2)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture(scope="module")
def server(demo_bundle, helpers, tmp_path_factory, free_port):
    """(port, log, tmpdir): two workers, short connection bounds, its own TMPDIR (for the metrics files)."""
    port = free_port()
    folder = tmp_path_factory.mktemp("abuse-server")
    tmpdir = folder / "tmp"
    tmpdir.mkdir()
    log = folder / "server.log"
    bounds = {name: str(BOUND) for name in ("MLCI_HEADER_TIMEOUT", "MLCI_BODY_TIMEOUT", "MLCI_KEEPALIVE_TIMEOUT")}
    process = start(demo_bundle, port, 2, log, helpers.root, {**bounds, "TMPDIR": str(tmpdir)})
    try:
        yield port, log, tmpdir
    finally:
        stop(process)


def connect(port: int, timeout: float = 10) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset counts as a failure)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def log_lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


# --- refused bodies: a 413 every client can read ---------------------------------------------


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_client_that_writes_a_large_body_before_reading_gets_the_413(server, declared):
    port, _log, _tmp = server
    body = b" " * (4 << 20)
    with connect(port) as sock:
        if declared:
            sock.sendall(REQUEST + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        else:
            head = REQUEST + b"Transfer-Encoding: chunked\r\n\r\n"
            step = 64 << 10
            chunks = b"".join(b"%x\r\n%s\r\n" % (step, body[i : i + step]) for i in range(0, len(body), step))
            sock.sendall(head + chunks + b"0\r\n\r\n")
        answer = read_all(sock)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large", answer[:200]
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["error"] == "body_too_large"


def test_a_lying_content_length_still_gets_the_413(server):
    """It claims 8 MB and sends 4 MB: the answer is read at once; the drain waits a bounded time."""
    port, _log, _tmp = server
    with connect(port) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 8388608\r\n\r\n"
        )
        sock.sendall(b" " * (4 << 20))
        started = time.monotonic()
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 15  # the drain is bounded


def test_ordinary_clients_read_the_413(server):
    port, _log, _tmp = server
    body = b" " * (4 << 20)
    url = f"http://127.0.0.1:{port}/predict"
    headers = {"content-type": "application/json"}
    assert httpx.post(url, content=body, headers=headers, timeout=30).status_code == 413
    assert requests.post(url, data=body, headers=headers, timeout=30).status_code == 413
    curl = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "content-type: application/json",
         "--data-binary", "@-", url],
        input=body, capture_output=True, timeout=60,
    )  # fmt: skip
    assert curl.stdout == b"413", curl.stderr


# --- idle and slow connections ------------------------------------------------------------------


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closed the connection (fails if it is still open after `seconds`)."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        pytest.fail(f"the connection is still open after {seconds} s")
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_a_connection_that_sends_nothing_is_closed(server):
    port, _log, _tmp = server
    with connect(port) as sock:
        assert BOUND * 0.5 < closed_within(sock, BOUND * 4) < BOUND * 4


def test_an_idle_keep_alive_connection_is_closed(server):
    port, _log, _tmp = server
    with connect(port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        assert closed_within(sock, BOUND * 4) < BOUND * 4


def test_trickled_headers_are_cut(server):
    """Slowloris: a header line every 0.2 s, for ever; the server closes at the header bound."""
    port, _log, _tmp = server
    with connect(port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        cut = False
        while time.monotonic() - started < BOUND * 4:
            try:
                sock.sendall(b"X-Slow: y\r\n")
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            sock.settimeout(0.2)
            try:
                if sock.recv(65536) == b"":
                    cut = True
                    break
            except TimeoutError:
                pass
        assert cut, f"still open after {BOUND * 4} s of trickled headers"
        assert time.monotonic() - started < BOUND * 3


def test_a_trickled_body_is_cut_with_a_408(server):
    port, log, _tmp = server
    with connect(port) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
            b"X-Request-ID: slow-body-1\r\n\r\n{"
        )
        started = time.monotonic()
        answer = b""
        sock.settimeout(0.2)
        while time.monotonic() - started < BOUND * 4:
            try:
                sock.sendall(b" ")
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                # The server closed while this client was still writing: the kernel may then reset
                # the connection before the 408 is read. What matters against a trickler is the cut.
                break
            if not chunk:
                break
            answer += chunk
        elapsed = time.monotonic() - started
    if answer:
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "request_timeout"
    assert BOUND * 0.5 < elapsed < BOUND * 3
    time.sleep(0.3)
    access = [line for line in log_lines(log) if line.get("request_id") == "slow-body-1" and "status" in line]
    assert access and access[0]["status"] == 408


# --- client aborts ------------------------------------------------------------------------------


def test_a_client_that_disconnects_mid_body_is_a_499_not_a_500(server):
    port, log, _tmp = server
    with connect(port) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n"
            b"X-Request-ID: gone-mid-body\r\n\r\n" + b" " * 1000
        )
        time.sleep(0.2)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        access = [line for line in log_lines(log) if line.get("request_id") == "gone-mid-body" and "status" in line]
        if access:
            break
        time.sleep(0.1)
    assert access and access[0]["status"] == 499
    about = [line for line in log_lines(log) if line.get("request_id") == "gone-mid-body" and line["event"] != "access"]
    assert about and about[0]["event"] == "client_closed" and about[0]["level"] == "warning"
    assert "Traceback" not in log.read_text() and not [line for line in log_lines(log) if "exception" in line]


# --- metrics across workers ---------------------------------------------------------------------


def requests_total(text: str) -> float:
    return sum(float(m) for m in re.findall(r"^mlci_requests_total\{[^}]*\} (\S+)$", text, re.MULTILINE))


def test_metrics_are_summed_across_workers_and_never_go_backwards(server):
    port, log, tmpdir = server
    base = f"http://127.0.0.1:{port}"
    close = {"connection": "close"}  # a new connection each time: either worker may answer
    totals, infos = [], []
    for _ in range(20):
        for _ in range(3):
            assert httpx.get(f"{base}/version", headers=close, timeout=10).status_code == 200
        text = httpx.get(f"{base}/metrics", headers=close, timeout=10).text
        totals.append(requests_total(text))
        infos.extend(re.findall(r"^mlci_model_info\{[^}]*\} (\S+)$", text, re.MULTILINE))
    assert all(later >= earlier for earlier, later in itertools.pairwise(totals)), totals
    versions = re.findall(r'^mlci_requests_total\{[^}]*route="/version",status="200"\} (\S+)$', text, re.MULTILINE)
    assert versions == ["60.0"]  # every worker's count, not the one that answered the scrape
    time.sleep(0.3)
    pids = {line["pid"] for line in log_lines(log) if line.get("route") == "/version"}
    assert len(pids) == 2  # both workers did answer (else this test proves nothing)
    assert infos and {float(value) for value in infos} == {1.0}  # one model, not one per worker
    assert [p.name for p in tmpdir.iterdir() if p.name.startswith("mlci-metrics-")]  # the workers' files


def test_the_metrics_folder_is_removed_when_the_server_stops(demo_bundle, helpers, tmp_path, free_port):
    port = free_port()
    process = start(demo_bundle, port, 2, tmp_path / "server.log", helpers.root, {"TMPDIR": str(tmp_path)})
    try:
        assert "mlci_requests_total" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert [p for p in tmp_path.iterdir() if p.name.startswith("mlci-metrics-")]
    finally:
        stop(process)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("mlci-metrics-")]


# --- the event loop under a flood of invalid records ---------------------------------------------


def test_health_answers_while_clients_flood_invalid_records(server):
    """Four clients flood /predict with 1,000 empty records each while a fifth asks /health every 50 ms:
    every error answer stays small (the 422 body was 2.4 MB) and every /health is answered 200.
    How fast /health answers under this flood, against `mlflow models serve`, is measured in
    benchmarks/invalid_flood.py (docs/benchmarks.md): speed goes in benchmarks, not timed tests."""
    port, _log, _tmp = server
    base = f"http://127.0.0.1:{port}"
    body = json.dumps({"records": [{}] * 1000}).encode()
    stop_at = time.monotonic() + 4
    answers: list[tuple[int, int]] = []  # (status, body size) of each flood request

    def attack():
        with httpx.Client(base_url=base, timeout=30) as client:
            while time.monotonic() < stop_at:
                response = client.post("/predict", content=body, headers={"content-type": "application/json"})
                answers.append((response.status_code, len(response.content)))

    threads = [threading.Thread(target=attack) for _ in range(4)]
    for thread in threads:
        thread.start()
    health: list[int] = []
    with httpx.Client(base_url=base, timeout=30) as client:
        time.sleep(0.3)
        while time.monotonic() < stop_at:
            health.append(client.get("/health").status_code)
            time.sleep(0.05)
    for thread in threads:
        thread.join()
    assert answers, "the flooding clients got no answer"
    assert {status for status, _ in answers} == {422}, answers[:5]
    assert max(size for _, size in answers) < 16 * 1024  # was 2.4 MB
    assert health and set(health) == {200}, health


# --- bad settings: a message and exit 2, no traceback ---------------------------------------------


@pytest.mark.parametrize("name, value", [("MLCI_MAX_BATCH", "abc"), ("MLCI_MAX_BODY_BYTES", "1")])
def test_the_container_entry_refuses_bad_settings(demo_bundle, name, value):
    env = measured({**os.environ, "MLCI_BUNDLE": str(demo_bundle), "MLCI_PORT": "1", name: value})
    done = subprocess.run([sys.executable, "-m", "api"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert name in done.stderr and "cannot start the API" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("name, value", [("MLCI_MAX_BATCH", "abc"), ("MLCI_MAX_BODY_BYTES", "1")])
def test_mlci_serve_refuses_bad_settings(demo_bundle, name, value):
    mlci = Path(sys.executable).parent / "mlci"
    done = subprocess.run(
        [str(mlci), "serve", "--bundle", str(demo_bundle), "--port", "1"],
        env=measured({**os.environ, name: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert name in output and "Traceback" not in output


@pytest.mark.parametrize(
    "env, words", [({"MLCI_BUNDLE": ""}, "MLCI_BUNDLE is not set"), ({"MLCI_MAX_BATCH": "0"}, "MLCI_MAX_BATCH")]
)
def test_uvicorn_app_refuses_bad_settings(demo_bundle, env, words):
    """`uvicorn mlci.api.main:app` (what each worker imports), configured wrongly."""
    full = measured({**os.environ, "MLCI_BUNDLE": str(demo_bundle), **env})
    done = subprocess.run(
        [sys.executable, "-c", "import mlci.api.main"], env=full, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr
