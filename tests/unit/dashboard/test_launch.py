"""The container's entry point (`python -m dashboard`) and the image boundary (dashboard/ without ml/)."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mlci.dashboard import launch

pytestmark = pytest.mark.usefixtures("no_streamlit_caches")  # AppTest runs in this process

ROOT = Path(__file__).resolve().parents[3]


def entry_env(**values: str) -> dict[str, str]:
    """The environment a container gets: no MLCI_* variable unless the test sets it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCI_")}
    env.update(PYTHONPATH=str(ROOT), MLFLOW_DISABLE_TELEMETRY="true", **values)
    return env


def run_entry(timeout: float = 60, **values: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dashboard"],
        cwd=ROOT,
        env=entry_env(**values),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "values, says",
    [
        ({}, "MLCI_API_URL is not set"),
        ({"MLCI_API_URL": "   "}, "MLCI_API_URL is not set"),
        ({"MLCI_API_URL": "router:8080"}, "MLCI_API_URL must be an http(s) URL, got 'router:8080'"),
        ({"MLCI_API_URL": "http://router:8080", "MLCI_DASHBOARD_PORT": "eighty"}, "got 'eighty'"),
        ({"MLCI_API_URL": "http://router:8080", "MLCI_DASHBOARD_PORT": "70000"}, "got 70000"),
    ],
)
def test_the_entry_point_refuses_a_bad_environment_with_a_clear_message(values, says):
    done = run_entry(**values)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stderr.startswith("cannot start the dashboard: ")
    assert says in done.stderr
    assert "Traceback" not in done.stderr and not done.stdout


class Served:
    """`python -m dashboard` running on 127.0.0.1 (as the container runs it), until stop()."""

    def __init__(self, api_url: str, port: int):
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dashboard"],
            cwd=ROOT,
            env=entry_env(MLCI_API_URL=api_url, MLCI_DASHBOARD_HOST="127.0.0.1", MLCI_DASHBOARD_PORT=str(port)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = ""

    def wait_healthy(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                return httpx.get(self.url + "/_stcore/health", timeout=1).text.strip()
            except httpx.HTTPError:
                time.sleep(0.2)
        return f"not healthy (exit {self.process.poll()})"

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.output, _ = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.output, _ = self.process.communicate(timeout=5)
        return self.process.returncode


def test_the_entry_point_serves_the_dashboard_until_stopped(api_v1, free_port):
    served = Served(api_v1.url + "/", free_port())
    try:
        assert served.wait_healthy() == "ok"
        page = httpx.get(served.url + "/", timeout=5)
        assert page.status_code == 200 and "<title>" in page.text  # Streamlit's page, served
    finally:
        code = served.stop()
    assert code == 0, served.output[-3000:]  # SIGTERM is a clean stop, not a crash
    assert "Traceback" not in served.output


def test_a_dashboard_pointed_at_a_server_that_is_not_the_api_says_what_to_check(monkeypatch, dead_url, free_port):
    """The 8501/8080 mix-up: MLCI_API_URL names a dashboard, which answers every path with its HTML page."""
    from streamlit.testing.v1 import AppTest

    served = Served(dead_url, free_port())
    try:
        assert served.wait_healthy() == "ok"
        monkeypatch.setenv("MLCI_API_URL", served.url)
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=30)
        at.run()
        at.switch_page("pages/predict.py").run()
        assert not at.exception
        shown = "\n".join(e.value for e in at.error)
        assert f"**The API failed**: the API at {served.url} answered 200 with a body that is not JSON" in shown
        assert "is MLCI_API_URL the prediction API's URL?" in shown
        at.button(key="retry-predict").click().run()
        assert not at.exception and "**The API failed**" in "\n".join(e.value for e in at.error)
    finally:
        served.stop()


# What the dashboard image may import of mlci: itself, the contract and core (docker/dashboard.Dockerfile
# copies exactly these), never the training tooling.
IMAGE_PACKAGES = ("mlci.dashboard", "mlci.contract", "mlci.core")
TRAINING = ("mlci.cli", "mlci.flow", "mlci.deploy", "mlci.ship", "mlci.learn", "mlci.track", "mlci.api")


def _dashboard_modules() -> list[str]:
    return sorted(
        "mlci.dashboard." + ".".join(p.with_suffix("").relative_to(ROOT / "dashboard").parts)
        for p in (ROOT / "dashboard").rglob("*.py")
        if p.name not in ("__init__.py", "app.py") and "pages" not in p.parts
    )


def test_the_dashboard_does_not_import_the_training_tooling(registry_store):
    """The dashboard image holds mlci.dashboard, mlci.contract and mlci.core: importing every dashboard
    module and reading the Models page's registry imports nothing else of mlci."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {_dashboard_modules()!r}: importlib.import_module(name)\n"
        "from mlci.dashboard import registry\n"
        f"view = registry.load({registry_store['uri']!r}, {registry_store['name']!r})\n"
        "print(json.dumps({'rows': len(view.rows), 'mlci': sorted(m for m in sys.modules if m.startswith('mlci.'))}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=entry_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["rows"] == 3
    assert found["mlci"] and not [m for m in found["mlci"] if not m.startswith(IMAGE_PACKAGES)], found["mlci"]


def test_no_dashboard_file_names_the_training_tooling():
    """The pages and app.py run only under Streamlit: read their imports instead of running them."""
    offenders = []
    for path in sorted((ROOT / "dashboard").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith(TRAINING)]
    assert offenders == []


# -- launcher --------------------------------------------------------------------------------------
def test_launch_command_runs_streamlit_headless_without_watcher_or_stats():
    argv = launch.command(8502, "0.0.0.0")
    assert argv[:4] == [sys.executable, "-m", "streamlit", "run"] and argv[4].endswith("dashboard/app.py")
    flags = dict(zip(argv[5::2], argv[6::2]))
    assert flags["--server.port"] == "8502" and flags["--server.address"] == "0.0.0.0"
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"
    assert flags["--server.fileWatcherType"] == "none" and flags["--client.showErrorDetails"] == "none"
    env = launch.environment("http://127.0.0.1:9000/", {"PATH": "/bin"})
    assert env["MLCI_API_URL"] == "http://127.0.0.1:9000" and env["PATH"] == "/bin"


@pytest.mark.parametrize("url, port", [("127.0.0.1:8000", 8501), ("http://x", 0), ("http://x", 70000)])
def test_launch_refuses_bad_arguments(url, port):
    with pytest.raises(ValueError):
        launch.run(url, port)
