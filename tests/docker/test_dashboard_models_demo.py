"""Issue 15 item 2: the deployed dashboard's Models page reads the demo's MLflow.

The demo's store is a sqlite file the dashboard image cannot open; `make mlflow-ui` serves it on the
Docker bridge's gateway address (reachable from this machine and its containers only), and the demo's
deploy hands the dashboard container http://host.docker.internal:PORT. This test does the same on a
real engine: two trained versions, a deploy with a dashboard and no MLflow address (the page explains),
then a deploy with one: the dashboard container is recreated with it, and a real browser shows the
metric chart over versions and the @production alias on the Models page.
Screenshot: reports/screenshots/models_after_demo.png.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dashboard.test_dashboard_browser import browser, shot  # noqa: F401 - browser is a fixture

MLFLOW = Path(sys.executable).parent / "mlflow"
DEADLINE_MS = 60_000


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=300)


def bridge_gateway() -> str:
    return docker("network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}").stdout.strip()


def free_port_on(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def container(name: str) -> dict:
    return json.loads(docker("inspect", name).stdout)[0]


def tracking_env(state: dict) -> list[str]:
    return [item for item in state["Config"]["Env"] if item.startswith("MLFLOW_TRACKING_URI=")]


@contextlib.contextmanager
def gateway_mlflow(root: Path) -> Iterator[int]:
    """`make mlflow-ui`'s second server: the project's sqlite store on the bridge gateway address only."""
    gateway = bridge_gateway()
    port = free_port_on(gateway)
    store = f"sqlite:///{root / '.mlci' / 'mlflow.db'}"
    log = root / "mlflow-gateway.log"
    hosts = f"host.docker.internal,host.docker.internal:{port},{gateway},{gateway}:{port}"
    args = [str(MLFLOW), "server", "--host", gateway, "--port", str(port), "--workers", "1"]
    args += ["--allowed-hosts", hosts, "--backend-store-uri", store]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    with log.open("w") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://{gateway}:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def wait_healthy(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} not healthy after {seconds:.0f} s"
        time.sleep(1)


def models_page(browser, url: str, expect: str):  # noqa: F811 - the fixture
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url + "/models")
    page.get_by_text(expect).first.wait_for(timeout=DEADLINE_MS)
    return page


def test_deployed_dashboard_reads_the_demo_mlflow(image_project, free_ports, monkeypatch, browser):  # noqa: F811
    project = image_project
    name = project.config["project"]
    port, preview, dashboard = free_ports(3)
    checks = {"ready_timeout": 60, "verify_seconds": 2.5}
    production = {"port": port, "preview_port": preview, "dashboard_port": dashboard, "drain_seconds": 1}
    project.edit(environments={"production": {**production, "checks": checks, "requires": []}})
    project.commit("a production environment with a dashboard")
    url = f"http://127.0.0.1:{dashboard}"
    try:
        for version, depth in (("1", 8), ("2", 5)):
            project.edit(**{"model.params.max_depth": depth})
            project.commit(f"depth {depth}")
            assert project.mlci("train").exit_code == 0
            roles = ("--only", "api") + (("--only", "router", "--only", "dashboard") if version == "1" else ())
            built = project.mlci("build", *roles)
            assert built.exit_code == 0, built.output
        # The demo's store is sqlite: without a dashboard setting the container gets no MLflow address.
        first = project.mlci("deploy", "--env", "production", "--version", "1")
        assert first.exit_code == 0, first.output
        before = container(f"{name}-production-dashboard")
        assert tracking_env(before) == []

        with contextlib.ExitStack() as stack:
            mlflow_port = stack.enter_context(gateway_mlflow(project.root))
            patch = stack.enter_context(pytest.MonkeyPatch.context())
            uri = f"http://host.docker.internal:{mlflow_port}"
            patch.setenv("MLCI_PRODUCTION_DASHBOARD_TRACKING_URI", uri)
            second = project.mlci("deploy", "--env", "production", "--version", "2")
            assert second.exit_code == 0, second.output
            after = container(f"{name}-production-dashboard")
            assert after["Id"] != before["Id"], "the dashboard was not recreated with its new settings"
            assert tracking_env(after) == [f"MLFLOW_TRACKING_URI={uri}"]
            assert "host.docker.internal:host-gateway" in (after["HostConfig"].get("ExtraHosts") or [])
            assert (
                str(project.client().get_registered_model("breast-cancer-classifier").aliases.get("production")) == "2"
            )

            wait_healthy(f"{url}/_stcore/health")
            page = models_page(browser, url, "over versions")
            try:
                # The heading comes first; the versions and their aliases render after it (a CI run read
                # the page in between): wait for what is asserted, not only for the heading.
                page.get_by_text("@production").first.wait_for(timeout=DEADLINE_MS)
                text = page.inner_text("body")
                assert (
                    "no tracking server is configured" not in text and "deployed without a model registry" not in text
                )
                assert "@production" in text and "v2" in text, text[:2000]
                assert "registry is unavailable" not in text, text[:2000]
                chart = page.locator('[data-testid="stVegaLiteChart"], [data-testid="stArrowVegaLiteChart"]')
                chart.first.wait_for(timeout=DEADLINE_MS)  # drawn after the heading above it
                assert page.locator('[data-testid="stException"]').count() == 0
                shot(page, "models_after_demo")
            finally:
                page.close()
        # The deploy said why the first dashboard had no Models page.
        assert "no MLflow server for its Models page" in first.output, first.output
    finally:
        project.mlci("down", "--env", "production")
        docker("volume", "rm", f"{name}-production-state", check=False)
