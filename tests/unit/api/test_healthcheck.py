"""The container entry point (`python -m api`) and its HEALTHCHECK (`python -m mlci.api.healthcheck`),
run for real: a slot serving on a unix socket, as it does behind an environment's router."""

import http.client
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from mlci.api import healthcheck


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=5)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def wait_ready(env, process, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if healthcheck.ready(env):
            return
        if process.poll() is not None:
            pytest.fail(f"python -m api exited with {process.returncode}: {process.stderr.read()}")
        time.sleep(0.2)
    pytest.fail("the API did not become ready")


@pytest.fixture
def slot(demo_bundle, tmp_path):
    sock = tmp_path / "blue.sock"
    sock.write_text("stale")  # a socket file left by the slot's previous container
    env = {
        **os.environ,
        "MLCI_BUNDLE": str(demo_bundle),
        "MLCI_UDS": str(sock),
        "MLCI_COLOUR": "blue",
        "MLCI_ENV": "staging",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "api"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_ready(env, process)
        yield env
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_slot_serves_on_its_unix_socket(slot):
    assert subprocess.run([sys.executable, "-m", "mlci.api.healthcheck"], env=slot).returncode == 0
    connection = UnixHTTP(slot["MLCI_UDS"])
    connection.request("GET", "/version")
    version = json.loads(connection.getresponse().read())
    assert (version["colour"], version["environment"], version["version"]) == ("blue", "staging", "7")
    assert oct(os.stat(slot["MLCI_UDS"]).st_mode & 0o777) == oct(0o666)  # the router's user may connect


def test_healthcheck_fails_when_nothing_listens(tmp_path):
    env = {**os.environ, "MLCI_UDS": str(tmp_path / "none.sock")}
    assert subprocess.run([sys.executable, "-m", "mlci.api.healthcheck"], env=env).returncode == 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert not healthcheck.ready({"MLCI_PORT": str(port)})


@pytest.mark.parametrize(
    "env, message",
    [
        ({"MLCI_PORT": "http"}, "MLCI_PORT must be an integer, got 'http'"),
        ({"MLCI_BUNDLE": "/nonexistent/bundle"}, "cannot start the API"),
    ],
)
def test_bad_container_settings_exit_with_a_message(env, message):
    done = subprocess.run(
        [sys.executable, "-m", "api"], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert message in done.stderr and "Traceback" not in done.stderr
