"""Who may mark a request for the shadow comparison: a router, never a client (issue 15, review).

The API keeps an answer for the comparison only when a router marked the request (api/shadow.py):
X-Mlci-Sampled on production's sampled /predict, X-Mlci-Shadow on a copy arriving at staging's intake.
Here the host's real nginx runs the router config `ml/deploy/router.py` renders for each environment, in front
of an upstream that echoes the headers it receives: a client's own marks never get through a public
listener, the intake (not published) passes the copy's mark and production's request id on.

And how long the previous colour may still answer after a switch: the drain bound the deploy's
verification enforces (`drain_seconds`), for any spacing of requests on a pooled connection.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
import yaml

from mlci.core import config as config_module
from mlci.deploy import router, shadow

ROOT = Path(__file__).resolve().parents[3]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MARKS = {"x-mlci-shadow": "production", "x-mlci-sampled": "1", "x-request-id": "client-chosen-id-1"}


class JsonAnswer(BaseHTTPRequestHandler):
    """An upstream that answers JSON, quietly."""

    def answer(self, document: dict) -> None:
        body = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class Echo(JsonAnswer):
    """Answers with the headers nginx sent it, lower-cased."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.answer({k.lower(): v for k, v in self.headers.items()})


class UnixEcho(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):  # BaseHTTPRequestHandler wants a (host, port) client address
        request, _ = super().get_request()
        return request, ("local", 0)


class Named(JsonAnswer):
    """Answers GET with the name of its server (a colour), on kept-alive HTTP/1.1 connections."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.answer({"colour": self.server.name})  # type: ignore[attr-defined]


@contextmanager
def unix_server(path: Path, handler: type[BaseHTTPRequestHandler], name: str = "") -> Iterator[None]:
    server = UnixEcho(str(path), handler)
    server.name = name  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.chmod(path, 0o777)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def rendered(env_name: str, root: Path, ports: dict[int, int], drain: float | None = None) -> str:
    raw = yaml.safe_load((ROOT / "mlci.yaml").read_text())
    raw["environments"]["production"]["shadow"] = {"env": "staging", "share": 1}
    if drain is not None:
        raw["environments"][env_name]["drain_seconds"] = drain
        raw["environments"][env_name].setdefault("checks", {})["verify_seconds"] = drain + 1
    config = config_module.parse(raw)
    text = router.render(config, env_name, config.environments[env_name])
    text = text.replace("unix:/run/mlci/", f"unix:{root}/").replace("/run/mlci/shadow.on", f"{root}/shadow.on")
    text = text.replace("resolver 127.0.0.11 valid=5s ipv6=off;", "")
    for port, free in ports.items():
        text = text.replace(f"listen {port};", f"listen 127.0.0.1:{free};")
    return text


@contextmanager
def host_nginx(root: Path, ports: dict[int, int], env_name: str, drain: float | None = None) -> Iterator[str]:
    """The environment's rendered router in the host's nginx, in the image's frame; yields its public URL."""
    (root / "router.conf").write_text(rendered(env_name, root, ports, drain))
    frame = (ROOT / "docker" / "router" / "nginx.conf").read_text().replace("/tmp/", f"{root}/")
    frame = frame.replace("include /etc/mlci/router.conf;", f"include {root}/router.conf;")
    frame = frame.replace("access_log /dev/stdout mlci;", "access_log off;")
    (root / "nginx.conf").write_text(("user root;\n" if os.geteuid() == 0 else "") + frame)
    base = [NGINX, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "error.log")]
    checked = subprocess.run([*base, "-t", "-q"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    nginx = subprocess.Popen([*base, "-g", "daemon off;"], stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        public = f"http://127.0.0.1:{ports[8080]}"
        for _ in range(100):
            try:
                if httpx.get(f"{public}/router/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield public
    finally:
        os.killpg(nginx.pid, signal.SIGQUIT)
        nginx.wait(timeout=20)


@pytest.fixture()
def staging_router(tmp_path, free_port):
    """Staging's router (it receives production's copies) on the host, live slot = the echo upstream."""
    ports = {8080: free_port(), 8081: free_port(), router.SHADOW_INTAKE_PORT: free_port()}
    with unix_server(tmp_path / "live.sock", Echo), host_nginx(tmp_path, ports, "staging") as public:
        yield public, f"http://127.0.0.1:{ports[router.SHADOW_INTAKE_PORT]}"


def test_a_client_cannot_mark_its_own_request_on_a_public_listener(staging_router):
    public, _ = staging_router
    seen = httpx.post(f"{public}/predict", json={"records": []}, headers=MARKS, timeout=5).json()
    assert "x-mlci-shadow" not in seen and "x-mlci-sampled" not in seen
    seen = httpx.post(f"{public}/anything", json={}, headers=MARKS, timeout=5).json()
    assert "x-mlci-shadow" not in seen and "x-mlci-sampled" not in seen


def test_the_intake_passes_a_copys_mark_and_request_id_on_predict_only(staging_router):
    _, intake = staging_router
    seen = httpx.post(f"{intake}/predict", json={"records": []}, headers=MARKS, timeout=5).json()
    assert seen["x-mlci-shadow"] == "production" and seen["x-request-id"] == "client-chosen-id-1"
    assert "x-mlci-sampled" not in seen  # the sampled mark is production's own, never staging's
    assert httpx.post(f"{intake}/metrics", json={}, timeout=5).status_code == 404
    assert httpx.get(f"{intake}/shadow/answers", timeout=5).status_code == 404


def test_only_the_shadow_environment_has_an_intake_and_production_marks_its_sample():
    raw = yaml.safe_load((ROOT / "mlci.yaml").read_text())
    plain = config_module.parse(raw)
    assert f"listen {router.SHADOW_INTAKE_PORT};" not in router.render(plain, "staging", plain.environments["staging"])
    raw["environments"]["production"]["shadow"] = {"env": "staging", "share": 0.1}
    config = config_module.parse(raw)
    production = router.render(config, "production", config.environments["production"])
    assert f"listen {router.SHADOW_INTAKE_PORT};" not in production
    assert "proxy_set_header X-Mlci-Sampled $mlci_shadow_sampled;" in production
    assert f"$mlci_shadow_host:{router.SHADOW_INTAKE_PORT}$request_uri" in production
    staging = router.render(config, "staging", config.environments["staging"])
    assert f"listen {router.SHADOW_INTAKE_PORT};" in staging


def test_a_router_rendered_before_the_shadow_setup_keeps_the_mirror_off():
    """A router is re-rendered only when its own environment deploys: a mirror between a current router
    and one rendered before `shadow` was set (or before the intake existed) would lose every copy."""
    raw = yaml.safe_load((ROOT / "mlci.yaml").read_text())
    before = config_module.parse(raw)
    raw["environments"]["production"]["shadow"] = {"env": "staging", "share": 0.1}
    after = config_module.parse(raw)

    def text(config, env_name: str) -> str:
        return router.render(config, env_name, config.environments[env_name])

    assert shadow.stale_router("production", text(after, "production"), "staging", text(after, "staging")) is None
    env_name, why = shadow.stale_router("production", text(after, "production"), "staging", text(before, "staging"))
    assert env_name == "staging" and "no shadow intake" in why
    env_name, why = shadow.stale_router("production", text(before, "production"), "staging", text(after, "staging"))
    assert env_name == "production" and "before this shadow setup" in why


DRAIN = 1.0


@pytest.mark.parametrize("gap", [0.2, 0.6, 0.9])
def test_the_previous_colour_answers_no_request_sent_after_the_drain(tmp_path, free_port, gap):
    """After the switch (an atomic rename of live.sock), a connection nginx pooled to the previous colour
    serves requests until it is closed. nginx checks keepalive_time only when a request ends and
    keepalive_timeout only while the connection is idle: one request just inside keepalive_time, then an
    idle gap just inside keepalive_timeout, reaches the previous colour after their sum. A request spaced
    `gap` x drain after the last one probes that: none sent after drain_seconds may reach blue."""
    ports = {8080: free_port(), 8081: free_port()}
    with (
        unix_server(tmp_path / "blue.sock", Named, "blue"),
        unix_server(tmp_path / "green.sock", Named, "green"),
        host_nginx(tmp_path, ports, "production", drain=DRAIN) as public,
        httpx.Client(timeout=5) as client,
    ):
        (tmp_path / "live.sock").symlink_to(tmp_path / "blue.sock")
        assert client.get(f"{public}/version").json()["colour"] == "blue"  # pools a connection to blue
        (tmp_path / "switch").symlink_to(tmp_path / "green.sock")
        (tmp_path / "switch").rename(tmp_path / "live.sock")
        switched = time.monotonic()
        late = []
        while (sent := time.monotonic() - switched) < 2.5 * DRAIN:
            colour = client.get(f"{public}/version").json()["colour"]
            if sent > DRAIN and colour == "blue":
                late.append(round(sent, 2))
            time.sleep(gap * DRAIN)
        assert late == [], f"blue answered requests sent {late} s after the switch (drain {DRAIN} s)"
