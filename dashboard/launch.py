"""`mlci dashboard`: run the Streamlit app locally against an API (what the CLI command calls)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlci.dashboard.client import API_URL_ENV

APP = Path(__file__).resolve().parent / "app.py"

# The production settings, as flags so they hold whatever the working directory
# (dashboard/.streamlit/config.toml says the same for `streamlit run` from dashboard/).
FLAGS = {
    "server.headless": "true",
    "browser.gatherUsageStats": "false",
    "server.fileWatcherType": "none",
    "server.runOnSave": "false",
    "client.showErrorDetails": "none",
    "client.toolbarMode": "minimal",
}


def command(port: int, host: str = "127.0.0.1", python: str | None = None) -> list[str]:
    """The argv that runs the dashboard on host:port."""
    argv = [
        python or sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(int(port)),
        "--server.address",
        host,
    ]
    for key, value in FLAGS.items():
        argv += [f"--{key}", value]
    return argv


def environment(api_url: str, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env[API_URL_ENV] = api_url.rstrip("/")
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return env


def run(api_url: str, port: int, host: str = "127.0.0.1") -> None:
    """Replace this process with `python -m streamlit run dashboard/app.py …` (returns only on error)."""
    if not api_url.startswith(("http://", "https://")):
        raise ValueError(f"the API URL must start with http:// or https://, got {api_url!r}")
    if not 0 < int(port) < 65536:
        raise ValueError(f"port must be between 1 and 65535, got {port}")
    argv = command(port, host)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, environment(api_url))
