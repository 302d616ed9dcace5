"""Issue 15: the deployed dashboard, on a real engine, reads the demo's MLflow and follows real deploys.

The demo's store is a sqlite file the dashboard image cannot open; `make mlflow-ui` serves it on the
Docker bridge's gateway address (reachable from this machine and its containers only), and the demo's
deploy hands the dashboard container http://host.docker.internal:PORT. The first test does the same:
two trained versions, a deploy with a dashboard and no MLflow address (the page explains), then a
deploy with one: the dashboard container is recreated with it, and a real browser shows the metric
chart over versions and the @production alias on the Models page.

The second test keeps the Live model page open in chromium while load goes through production's
router: the requests/s figure and the charts move by themselves, then `mlci deploy --env production
--version 2` (the CLI, in its own process) switches blue/green under that load, and the page marks the
switch without a reload; no request of the load fails.
Screenshots: reports/screenshots/models_after_demo.png, live_deploy_before_switch.png,
live_deploy_after_switch.png.
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
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers.browser import Load, red_pixels, shot
from tests.helpers.project import Project
from tests.helpers.waiting import wait_until_answers

REPO = Path(__file__).resolve().parents[3]
MLFLOW = Path(sys.executable).parent / "mlflow"
MLCI = Path(sys.executable).parent / "mlci"
DEADLINE_MS = 60_000
SWITCH_SHOWN_MS = 30_000  # from the deploy's end: the switch is already verify_seconds + drain old by then
LOAD_SECONDS = 400.0  # the load's bound whatever happens: page start, a deploy on a busy box, the marker


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=300)


def bridge_gateway() -> str:
    """The address host-gateway resolves to, found as `make mlflow-ui` finds it (docker/host-gateway.sh):
    Debian's engine records no IPAM gateway, so it is the bridge interface's address there."""
    done = subprocess.run(
        ["bash", str(REPO / "docker" / "host-gateway.sh")], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and done.stdout.strip(), done.stderr
    return done.stdout.strip()


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
        try:
            wait_until_answers(f"http://{gateway}:{port}/health", 90, poll=0.5, process=process)
        except TimeoutError as error:
            pytest.fail(f"{error}\n{log.read_text()[-3000:]}")
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def wait_healthy(url: str, seconds: float = 60) -> None:
    try:
        wait_until_answers(url, seconds, poll=1, request_timeout=5)
    except TimeoutError as error:
        pytest.fail(str(error))


def models_page(browser, url: str, expect: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url + "/models")
    page.get_by_text(expect).first.wait_for(timeout=DEADLINE_MS)
    return page


@dataclass(frozen=True)
class Production:
    """The demo project with versions 1 and 2 built, and a production environment with a dashboard."""

    project: Project
    name: str
    router: str  # production's router, where users send /predict
    dashboard: str


@pytest.fixture(scope="module")
def production(tmp_path_factory, base_images, project_factory, build_sources, free_ports) -> Iterator[Production]:
    """Trained and built once for the module's tests; production is taken down and the images removed."""
    copy_sources, remove_images = build_sources
    root = tmp_path_factory.mktemp("dashboard-demo")
    project = project_factory(root, REPO / "mlci.yaml", [REPO / "data" / "breast_cancer.csv"])
    copy_sources(project.root)
    name = f"it-{uuid.uuid4().hex[:8]}"  # unique image and container names: cleaned up by name, never clash
    port, preview, dashboard = free_ports(3)
    checks = {"ready_timeout": 60, "verify_seconds": 2.5}
    env = {"port": port, "preview_port": preview, "dashboard_port": dashboard, "drain_seconds": 1}
    project.edit(project=name, environments={"production": {**env, "checks": checks, "requires": []}})
    project.commit("build sources; a production environment with a dashboard")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # an earlier module's store is not this project's
    for key, value in base_images.items():
        monkeypatch.setenv(key, value)
    try:
        for version, depth in (("1", 8), ("2", 5)):
            project.edit(**{"model.params.max_depth": depth})
            project.commit(f"depth {depth}")
            assert project.mlci("train").exit_code == 0
            roles = ("--only", "api") + (("--only", "router", "--only", "dashboard") if version == "1" else ())
            built = project.mlci("build", *roles)
            assert built.exit_code == 0, built.output
        yield Production(project, name, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{dashboard}")
    finally:
        project.mlci("down", "--env", "production")
        docker("volume", "rm", f"{name}-production-state", check=False)  # the history outlives down
        monkeypatch.undo()
        remove_images(name)


def test_deployed_dashboard_reads_the_demo_mlflow(production, browser):
    project, name, url = production.project, production.name, production.dashboard
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
        assert str(project.client().get_registered_model("breast-cancer-classifier").aliases.get("production")) == "2"

        wait_healthy(f"{url}/_stcore/health")
        page = models_page(browser, url, "over versions")
        try:
            # The heading comes first; the versions and their aliases render after it (a CI run read
            # the page in between): wait for what is asserted, not only for the heading.
            page.get_by_text("@production").first.wait_for(timeout=DEADLINE_MS)
            text = page.inner_text("body")
            assert "no tracking server is configured" not in text and "deployed without a model registry" not in text
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


def mlci(project: Project, *args: str) -> subprocess.CompletedProcess:
    """The installed `mlci` in its own process, from the project's folder, as a user runs it."""
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}  # the project's store
    return subprocess.run(
        [str(MLCI), *args],
        cwd=project.root,
        stdin=subprocess.DEVNULL,  # nobody at the keyboard: a prompt would be a failure
        env={**env, "MLFLOW_DISABLE_TELEMETRY": "true"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def served(router: str) -> tuple[str, str]:
    """(version, colour) that production's router answers /version with: what the page names a switch by."""
    answer = httpx.get(f"{router}/version", timeout=10).json()
    return str(answer["version"]), str(answer["colour"])


def test_live_charts_follow_a_real_deploy_under_load(production, browser):
    from playwright.sync_api import expect

    project, router = production.project, production.router
    first = mlci(project, "deploy", "--env", "production", "--version", "1")
    assert first.returncode == 0, first.stdout + first.stderr
    before = served(router)
    assert before[0] == "1", before
    model = httpx.get(f"{router}/version", timeout=10).json()["name"]
    wait_healthy(f"{production.dashboard}/_stcore/health")  # recreated if the last deploy's settings differed

    load = Load(router, httpx.get(f"{router}/schema", timeout=10).json()["example"], seconds=LOAD_SECONDS)
    load.rate = 5.0
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(DEADLINE_MS)  # for the page's own calls; each expect below names its bound
    main = page.locator('[data-testid="stMain"]')
    rps = page.locator('[data-testid="stMetric"]', has_text="Requests/s").locator('[data-testid="stMetricValue"]')
    charts = page.locator('[data-testid="stVegaLiteChart"]')  # requests/s first, then latency, errors, classes
    switches = page.locator('[data-testid="stCaptionContainer"]', has_text="Blue/green switches")
    load.thread.start()
    try:
        page.goto(production.dashboard + "/")
        expect(main).to_contain_text(f"Serving {model} version 1", timeout=DEADLINE_MS)
        expect(rps).to_be_visible(timeout=DEADLINE_MS)
        # The four traffic charts, drawn.
        expect(charts.nth(3).locator("canvas, svg").first).to_be_visible(timeout=DEADLINE_MS)
        page.evaluate("window.__mlciNoReload = 7")  # gone if the page reloads
        first_rps = rps.inner_text()
        assert float(first_rps) > 0, first_rps
        assert switches.count() == 0  # this dashboard has seen no switch yet
        chart_before = charts.first.screenshot()
        assert red_pixels(chart_before) == 0  # and draws no marker
        shot(page, "live_deploy_before_switch")

        load.rate = 20.0  # more load: the figure on screen follows by itself
        expect(rps).not_to_have_text(first_rps, timeout=DEADLINE_MS)
        assert charts.first.screenshot() != chart_before  # the chart itself was redrawn with new points

        # The real deploy of version 2 to production, under load: idle slot, checks, router switch.
        sent, started = load.sent, time.monotonic()
        deployed = mlci(project, "deploy", "--env", "production", "--version", "2")
        took, returned = time.monotonic() - started, time.monotonic()
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        after = served(router)
        assert after[0] == "2" and after[1] != before[1], (before, after)
        assert load.thread.is_alive() and load.sent > sent, "the load did not run through the switch"

        marker = f"v{before[0]} ({before[1]}) → v{after[0]} ({after[1]})"
        expect(switches).to_contain_text(marker, timeout=SWITCH_SHOWN_MS)
        expect(main).to_contain_text(f"Serving {model} version 2", timeout=SWITCH_SHOWN_MS)
        seen = time.monotonic() - returned
        assert switches.inner_text().count("→") == 1, switches.inner_text()  # one deploy, one marker
        assert page.evaluate("window.__mlciNoReload") == 7, "the page was reloaded"
        assert page.locator('[data-testid="stException"]').count() == 0
        page.wait_for_timeout(1000)  # let the chart redraw with the marker
        assert red_pixels(charts.first.screenshot()) >= 20, "no switch marker drawn on the requests/s chart"
        shot(page, "live_deploy_after_switch")
    finally:
        load.stop.set()
        load.thread.join(timeout=15)
        context.close()
    assert load.sent > 0 and load.failures == [], f"{len(load.failures)} of {load.sent} failed: {load.failures[:5]}"
    print(
        f"deploy {took:.1f} s, marker {marker!r} on screen {seen:.1f} s after it returned; "
        f"{load.sent} requests, 0 failed"
    )
