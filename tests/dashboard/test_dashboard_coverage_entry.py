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

ROOT = Path(__file__).resolve().parents[2]


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
        ({"MLCI_API_URL": "router:8080"}, "must start with http:// or https://, got 'router:8080'"),
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


def test_the_entry_point_serves_the_dashboard_until_stopped(api_v1, free_port):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dashboard"],
        cwd=ROOT,
        env=entry_env(MLCI_API_URL=api_v1.url + "/", MLCI_DASHBOARD_HOST="127.0.0.1", MLCI_DASHBOARD_PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = httpx.get(url + "/_stcore/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health is not None and health.text.strip() == "ok", f"exit {process.poll()}"
        page = httpx.get(url + "/", timeout=5)
        assert page.status_code == 200 and "<title>" in page.text  # Streamlit's page, served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate(timeout=5)
    assert process.returncode == 0, output[-3000:]  # SIGTERM is a clean stop, not a crash
    assert "Traceback" not in output


DASHBOARD_MODULES = [
    "dashboard",
    "dashboard.__main__",
    "dashboard.client",
    "dashboard.core",
    "dashboard.launch",
    "dashboard.registry",
    "dashboard.ui",
]


def test_the_dashboard_does_not_import_the_training_tooling(registry_store):
    """The dashboard image holds dashboard/ only: no module of it, and no Models page read, may import `ml`."""
    listed = sorted(
        "dashboard." + ".".join(p.with_suffix("").relative_to(ROOT / "dashboard").parts)
        for p in (ROOT / "dashboard").rglob("*.py")
        if p.name not in ("__init__.py", "app.py") and "pages" not in p.parts
    )
    assert set(listed) <= set(DASHBOARD_MODULES), f"new dashboard module(s) to list here: {listed}"
    code = (
        "import importlib, json, sys\n"
        f"for name in {DASHBOARD_MODULES!r}: importlib.import_module(name)\n"
        "from dashboard import registry\n"
        f"view = registry.load({registry_store['uri']!r}, {registry_store['name']!r})\n"
        "print(json.dumps({'rows': len(view.rows), 'ml': sorted(m for m in sys.modules if m == 'ml' or "
        "m.startswith('ml.'))}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=entry_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"rows": 3, "ml": []}  # `ml` was importable (cwd is the repo) and was not imported


def test_no_dashboard_file_names_the_training_tooling():
    """The pages and app.py run only under Streamlit: read their imports instead of running them."""
    offenders = []
    for path in sorted((ROOT / "dashboard").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n == "ml" or n.startswith("ml.")]
    assert offenders == []
