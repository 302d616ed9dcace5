"""mlci.ship.docker and its helpers without a Docker engine: every engine failure mapped to an MlciError
with what to do (exit 3 Unreachable, exit 2 DockerError), a fake engine on a unix socket for the calls
themselves (no answer in time, no such object, a refusal), and the stream parsing of builds and pushes."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import docker.errors
import paramiko
import pytest
import requests

from mlci.core.errors import BadInput, Unreachable
from mlci.ship import docker as docker_module
from mlci.ship.docker import Docker, DockerError, close_clients, engine_error

SSH = "ssh://deploy@prod-1.example.com"


LOCAL = "unix:///var/run/docker.sock"


def mapped(error: BaseException, url: str = LOCAL, what: str = "inspect", timeout: float = 15):
    return engine_error(error, url, url, what, timeout)


def wrapped(inner: BaseException) -> BaseException:
    """As docker-py raises a failure while it connects: DockerException raised from the real one."""
    try:
        try:
            raise inner
        except BaseException as error:
            raise docker.errors.DockerException(f"Error while fetching server API version: {error}") from error
    except docker.errors.DockerException as outer:
        return outer


def test_no_local_engine_is_unreachable_and_says_how_to_start_one():
    error = requests.exceptions.ConnectionError(FileNotFoundError(2, "No such file or directory"))
    result = mapped(wrapped(error))
    assert isinstance(result, Unreachable) and result.exit_code == 3
    assert result.message == f"no Docker engine answers at {LOCAL}"
    assert "systemctl start docker" in result.hint


def test_an_ssh_host_whose_engine_is_down_names_the_host_not_this_machine():
    error = requests.exceptions.ConnectionError("Connection aborted.", ConnectionResetError())
    result = mapped(wrapped(error), SSH)
    assert isinstance(result, Unreachable) and result.message == f"no Docker engine answers at {SSH}"
    assert "prod-1.example.com" in result.hint and "nothing was changed there" in result.hint


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (paramiko.AuthenticationException("Authentication failed."), "refused mlci's key"),
        (paramiko.SSHException("No authentication methods available"), "no SSH key to log in to"),
        (paramiko.SSHException("Server 'prod-1.example.com' not found in known_hosts"), "is not known to this agent"),
        (paramiko.SSHException("Error reading SSH protocol banner"), "cannot reach the Docker host"),
    ],
)
def test_ssh_failures_are_unreachable_and_tell_key_from_host(error, said):
    result = mapped(error, SSH)
    assert isinstance(result, Unreachable) and said in result.message and SSH in result.message
    assert result.hint and "Traceback" not in result.message


def test_a_host_key_that_changed_is_said_so():
    key = paramiko.ECDSAKey.generate()
    result = mapped(paramiko.BadHostKeyException("prod-1.example.com", key, key), SSH)
    assert isinstance(result, Unreachable) and "changed" in result.message


def test_a_call_that_does_not_finish_is_unreachable_naming_the_bound():
    result = mapped(requests.exceptions.ReadTimeout("Read timed out. (read timeout=15)"), LOCAL, "exec", 15)
    assert isinstance(result, Unreachable) and result.message.startswith("docker exec did not finish within 15 s")
    assert isinstance(mapped(TimeoutError("no end of output"), SSH), Unreachable)


def test_the_engines_refusal_is_docker_error_with_its_words():
    response = requests.Response()
    response.status_code = 404
    error = docker.errors.ImageNotFound("404 Client Error", response=response, explanation="No such image: x:1")
    result = mapped(error, what="create")
    assert isinstance(result, DockerError) and result.exit_code == 2
    assert result.message == "docker create failed: No such image: x:1"


def test_other_setup_failures():
    denied = mapped(requests.exceptions.ConnectionError(PermissionError(13, "Permission denied")))
    assert isinstance(denied, Unreachable) and "docker group" in denied.hint
    missing = mapped(docker.errors.DockerException("Install paramiko package to enable ssh:// support"), SSH)
    assert isinstance(missing, Unreachable) and "paramiko" in missing.message
    bad = mapped(docker.errors.DockerException("Invalid bind address format: ftp://x"), "ftp://x")
    assert isinstance(bad, BadInput) and not isinstance(bad, Unreachable)


def test_a_bug_is_not_mapped():
    assert mapped(KeyError("Id")) is None
    assert mapped(TypeError("unexpected keyword")) is None


def test_credentials_are_never_shown():
    assert "s3cret" not in repr(Docker(SSH, auth={"username": "ci", "password": "s3cret"}))


class FakeEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    hang = False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # client_address is '' on a unix socket
        pass

    def do_GET(self):
        if self.server.hang and "/version" not in self.path:
            time.sleep(5)
            return
        if self.path.endswith("/version"):
            self.answer(200, {"Version": "99.0-fake", "ApiVersion": "1.41"})
        elif "/containers/gone/json" in self.path:
            self.answer(404, {"message": "No such container: gone"})
        elif "/containers/refused/json" in self.path:
            self.answer(500, {"message": "something inside the engine broke"})
        else:
            self.answer(404, {"message": "page not found"})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def engine(tmp_path: Path):
    path = tmp_path / "docker.sock"
    server = FakeEngine(str(path), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, Docker(f"unix://{path}")
    close_clients()
    server.shutdown()
    server.server_close()


def test_calls_on_a_fake_engine(engine):
    _, fake = engine
    assert fake.check() == "99.0-fake"
    assert fake.inspect("container", "gone") is None  # no such object: None, as before
    with pytest.raises(DockerError, match="docker container inspect failed: something inside the engine broke"):
        fake.inspect("container", "refused")


def test_an_engine_that_does_not_answer_in_time_is_unreachable(engine, monkeypatch):
    server, fake = engine
    fake.check()
    server.hang = True
    monkeypatch.setattr(docker_module, "DEFAULT_TIMEOUT", 1.0)
    started = time.monotonic()
    with pytest.raises(Unreachable, match="did not finish within 1 s"):
        fake.inspect("container", "anything")
    assert time.monotonic() - started < 4


def test_no_engine_at_all_names_the_address_and_how_to_start_one():
    with pytest.raises(Unreachable) as caught:
        Docker("unix:///nonexistent/docker.sock").check()
    assert "unix:///nonexistent/docker.sock" in caught.value.message
    assert "dockerd" in caught.value.hint


def test_an_ssh_port_that_is_closed_fails_at_once():
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]  # bound, never listening: connections are refused
        started = time.monotonic()
        with pytest.raises(Unreachable, match=f"no SSH connection to 127.0.0.1:{port}"):
            Docker(f"ssh://deploy@127.0.0.1:{port}").check()
    assert time.monotonic() - started < docker_module.SSH_CONNECT_TIMEOUT + 1
