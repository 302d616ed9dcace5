"""Shared by benchmarks/bluegreen_load.py and benchmarks/reload_vs_symlink.py: a throw-away copy of
the demo project driven through the real `mlci` CLI, wrk runs parsed from bluegreen_wrk.lua, the
benchmark lock, and small process helpers. benchmarks/images.py takes its build sources, defaults and
copy_sources from here too, so every benchmark builds from the same project files. Not a test; not
imported by mlci.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MLCI = ROOT / ".venv" / "bin" / "mlci"
PYTHON = ROOT / ".venv" / "bin" / "python"
LUA = Path(__file__).resolve().parent / "bluegreen_wrk.lua"
BENCH_LOCK = "/tmp/mlci-bench.lock"
# What an image build reads from a project (the context allow-listed by .dockerignore).
BUILD_SOURCES = (
    "api",
    "dashboard",
    "docker",
    "requirements",
    ".dockerignore",
    "ml/__init__.py",
    "ml/core/errors.py",
    "ml/track/registry.py",
)
DEFAULTS = {
    "MLCI_BASE_IMAGE": "mlci-base/python:3.11-bookworm",
    "MLCI_ROUTER_BASE_IMAGE": "mlci-base/nginx:bookworm",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DOCKER_BUILDKIT": "0",
}
# Operator overrides that must not leak from the caller's shell into the temp project.
LEAKY = re.compile(
    r"^(MLFLOW_TRACKING_URI|MLFLOW_TRACKING_USERNAME|MLFLOW_TRACKING_PASSWORD|MLCI_CONFIG|"
    r"MLCI_\w+_PORT|MLCI_\w+_DOCKER_HOST|MLCI_(ROUTER|DASHBOARD)_IMAGE|BUILD_URL)$"
)


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def copy_sources(root: Path, items: tuple[str, ...]) -> None:
    """Copy these files and folders of the repository into `root`, without caches or local secrets."""
    for item in items:
        source, target = ROOT / item, root / item
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".streamlit"))
        else:
            shutil.copy2(source, target)


def environ() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not LEAKY.match(k)}
    for key, value in DEFAULTS.items():
        env.setdefault(key, value)
    return env


class Project:
    """The demo project (mlci.yaml, data/, build sources) in a temp folder with its own git history
    and embedded MLflow store, driven through the real CLI."""

    def __init__(self, root: Path, name: str, with_build_sources: bool = True):
        self.root, self.name = root, name
        self.config_file = root / "mlci.yaml"
        root.mkdir(parents=True)
        shutil.copytree(ROOT / "data", root / "data")
        shutil.copy2(ROOT / "mlci.yaml", self.config_file)
        if with_build_sources:
            copy_sources(root, BUILD_SOURCES)
            wheelhouse = ROOT / "build" / "wheelhouse"
            if wheelhouse.is_dir():  # hard links: no copy, no network
                shutil.copytree(wheelhouse, root / "build" / "wheelhouse", copy_function=os.link)
        self.edit(project=name)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.name", "mlci benchmark")
        self.git("config", "user.email", "bench@example.invalid")
        self.commit("benchmark project")

    @property
    def config(self) -> dict:
        return yaml.safe_load(self.config_file.read_text())

    def edit(self, **changes) -> None:
        """Set dotted keys, e.g. edit(**{"model.params.max_depth": 5})."""
        config = self.config
        for dotted, value in changes.items():
            node = config
            *parents, last = dotted.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True, text=True).stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def mlci(
        self, *args: str, check: bool = True, timeout: float = 1200, quiet: bool = False
    ) -> subprocess.CompletedProcess:
        command = [str(MLCI), "--config", str(self.config_file), *args]
        done = subprocess.run(command, cwd=self.root, env=environ(), capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            raise SystemExit(f"mlci {' '.join(args)} exited with {done.returncode}")
        if not quiet:
            for line in (done.stdout + done.stderr).strip().splitlines()[-3:]:
                print(f"    | {line}", flush=True)
        return done

    def report(self, name: str) -> dict:
        return json.loads((self.root / "reports" / f"{name}.json").read_text())

    def remove_images(self) -> list[str]:
        tags = subprocess.run(
            ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={self.name}-*"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if tags:  # --no-prune keeps the shared parent layers for everyone else's builds
            subprocess.run(["docker", "rmi", "--no-prune", *tags], capture_output=True)
        return tags


@contextlib.contextmanager
def bench_lock(path: str | None):
    """Hold the machine-wide benchmark lock (the same flock(2) lock `flock /tmp/mlci-bench.lock ...`
    takes) while measuring, so two benchmarks never share the CPUs."""
    if not path:
        yield
        return
    with open(path, "a") as handle:
        started = time.monotonic()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for the benchmark lock {path} (another benchmark is measuring)")
            fcntl.flock(handle, fcntl.LOCK_EX)
            say(f"got {path} after {time.monotonic() - started:.0f} s")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- wrk ----------------------------------------------------------------------------------------


class Wrk:
    """wrk with bluegreen_wrk.lua: POSTs one body, counts statuses and x-model-version per thread,
    and prints one JSON line in done(). stop() ends it early with SIGINT (wrk still reports)."""

    def __init__(
        self,
        url: str,
        body_file: Path,
        threads: int,
        connections: int,
        seconds: float,
        path: str = "/predict",
        timeout: str = "10s",
    ):
        env = {**os.environ, "WRK_BODY": str(body_file), "WRK_PATH": path}
        self.command = [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{math.ceil(seconds)}s",
            "--timeout",
            timeout,
            "-s",
            str(LUA),
            url,
        ]
        self.process = subprocess.Popen(
            self.command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        self.started = time.monotonic()
        self.seconds = seconds

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)

    def result(self) -> dict:
        try:
            out, err = self.process.communicate(timeout=self.seconds + 60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            out, err = self.process.communicate()
        for line in out.splitlines():
            if line.startswith("WRKJSON "):
                data = json.loads(line[len("WRKJSON ") :])
                data["wall_seconds"] = round(time.monotonic() - self.started, 2)
                return data
        raise SystemExit(f"wrk gave no result (exit {self.process.returncode}): {out[-2000:]} {err[-2000:]}")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def failed(result: dict) -> int:
    errors = result["errors"]
    return errors["connect"] + errors["read"] + errors["write"] + errors["timeout"] + result["non2xx"]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]
