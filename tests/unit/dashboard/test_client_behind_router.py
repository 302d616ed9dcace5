"""The dashboard behind an environment's real router: Nginx with the router image's own frame and the
config `mlci deploy` renders, in front of a real API on the slot's unix socket — as in a deployment,
where MLCI_API_URL is the router. Only the paths move (sockets, temp files, ports) so it runs here."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from mlci.core import config as config_module
from mlci.deploy import router

pytestmark = pytest.mark.usefixtures("no_streamlit_caches")  # AppTest runs in this process

ROOT = Path(__file__).resolve().parents[3]
APP = str(ROOT / "dashboard" / "app.py")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def wait_for(url: str, process: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {timeout} s")


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


class Slot:
    """The blue slot: the API process on blue.sock, which the router's live.sock points at."""

    def __init__(self, bundle: Path, sockets: Path):
        self.bundle, self.sock, self.process = bundle, sockets / "blue.sock", None

    def start(self) -> None:
        code = (
            "import pathlib, mlci.api.server\n"
            f"mlci.api.server.serve(pathlib.Path({str(self.bundle)!r}), uds={str(self.sock)!r})"
        )
        env = {**os.environ, "MLCI_COLOUR": "blue", "MLCI_ENV": "staging", "MLCI_LOG_LEVEL": "WARNING"}
        env["PYTHONPATH"] = str(ROOT)
        self.process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.sock)), timeout=1) as direct:
                    if direct.get("http://slot/ready").status_code == 200:
                        return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the blue slot was not ready within 30 s")

    def stop(self) -> None:
        stop(self.process)


@pytest.fixture(scope="module")
def environment(tmp_path_factory, free_ports, bundles):
    """A staging router on 127.0.0.1 (live listener, preview listener), with the blue slot running."""
    root = tmp_path_factory.mktemp("dashboard-router")
    sockets = root / "run-mlci"
    sockets.mkdir()
    (sockets / "live.sock").symlink_to("blue.sock")  # the switch `mlci deploy` makes
    (sockets / "preview.sock").symlink_to("green.sock")
    live, preview, empty = free_ports(3)
    config = config_module.load(ROOT / "mlci.yaml")
    rendered = router.render(config, "staging", config.environments["staging"])
    rendered = rendered.replace("/run/mlci/", f"{sockets}/")
    rendered = rendered.replace("listen 8080;", f"listen 127.0.0.1:{live};")
    rendered = rendered.replace("listen 8081;", f"listen 127.0.0.1:{preview};")
    # Beside it, the placeholder the router image starts with, before any deploy (another environment).
    placeholder = (ROOT / "docker" / "router" / "router.conf").read_text()
    placeholder = placeholder.replace("listen 8080;", f"listen 127.0.0.1:{empty};")
    (root / "router.conf").write_text(rendered + "\n" + placeholder)
    frame = (ROOT / "docker" / "router" / "nginx.conf").read_text().replace("/tmp/", f"{root}/")
    frame = frame.replace("/etc/mlci/router.conf", str(root / "router.conf"))
    frame = frame.replace("access_log /dev/stdout mlci;", "access_log off;")
    # The image runs Nginx as an unprivileged user; here the master may be root, so its workers
    # must be allowed into the test's private temp directory.
    (root / "nginx.conf").write_text(("user root;\n" if os.geteuid() == 0 else "") + frame)
    slot = Slot(bundles["v1"], sockets)
    slot.start()
    nginx = subprocess.Popen(
        [NGINX, "-p", str(root), "-c", str(root / "nginx.conf"), "-g", "daemon off;"], stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{live}"
    try:
        wait_for(url + "/router/health", nginx, "nginx")
        yield {"url": url, "slot": slot, "empty": f"http://127.0.0.1:{empty}"}
    finally:
        stop(nginx)
        slot.stop()


def test_the_dashboard_follows_the_router_and_says_when_its_slot_is_down(monkeypatch, environment):
    monkeypatch.setenv("MLCI_API_URL", environment["url"])
    slot: Slot = environment["slot"]
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert "**Serving** `breast-cancer-classifier` **v1**" in [m.value for m in at.markdown]
    assert {m.label: m.value for m in at.metric}["Environment"] == "staging"  # the slot behind the router
    at.switch_page("pages/predict.py").run()
    assert not at.exception
    assert at.number_input  # the form, from GET /schema through the router

    slot.stop()  # the slot is gone; the router is still there and answers 502 for it
    assert httpx.get(environment["url"] + "/version").status_code == 502
    at.button[0].click().run()  # the form (from the cached schema) is submitted
    assert not at.exception
    shown = "\n".join(e.value for e in at.error)
    assert "The prediction API is unavailable" in shown  # down, as without a router: not "the API failed"
    assert "cannot reach the API behind it (502 Bad Gateway)" in shown and environment["url"] in shown
    at.button(key="retry-predict").click().run()  # asks again: no traceback whatever the answer
    assert not at.exception

    slot.start()  # back: a submit is answered again
    at.run()
    at.button[0].click().run()
    assert not at.exception and not list(at.error)
    assert any("Answered by **breast-cancer-classifier v1**" in m.value for m in at.markdown)


def test_an_environment_with_nothing_deployed_says_so(monkeypatch, environment):
    """The router's placeholder answers 503 with its reason: the dashboard passes the reason on."""
    monkeypatch.setenv("MLCI_API_URL", environment["empty"])
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception
    shown = "\n".join(e.value for e in at.error)
    assert "The prediction API is unavailable" in shown
    assert "is not ready: no model deployed to this environment yet" in shown
