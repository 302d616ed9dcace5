"""The dashboard as `mlci dashboard` runs it (mlci.dashboard.launch.run), in a process of its own: one
helper for every browser test, started on 127.0.0.1 and stopped (then checked for tracebacks) on exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
READY_SECONDS = 60


@contextmanager
def streamlit_app(
    api_url: str, port: int, log: Path, env: dict[str, str] | None = None, drop: tuple[str, ...] = ()
) -> Iterator[str]:
    """Yields the dashboard's URL once /_stcore/health says ok. `env` is added to ours, `drop` removed."""
    variables = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    for name in drop:
        variables.pop(name, None)
    code = f"from mlci.dashboard.launch import run; run({api_url!r}, {port})"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=variables,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, url, log)
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def _wait_healthy(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/_stcore/health", timeout=1).text.strip() == "ok":
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"streamlit did not answer on {url} within {READY_SECONDS} s: {log.read_text()[-3000:]}")
        time.sleep(0.2)
