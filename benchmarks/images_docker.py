"""Docker helpers for benchmarks/images.py: the CLI, build logs (which steps ran, which layers they
made), free ports, and removing exactly what the benchmark created."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
from pathlib import Path

STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
LAYER = re.compile(r"^ ---> ([0-9a-f]{12})$")


def docker(*args: str, check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout, env=env)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def image_size(ref: str) -> int:
    return int(json.loads(docker("image", "inspect", ref).stdout)[0]["Size"])


def write_shim(folder: Path, log: Path) -> Path:
    """A `docker` first on PATH for `mlci build`: appends what `docker build` prints to `log` (same
    output, merged as mlci already merges it), so the benchmark sees "Using cache" and the layer ids."""
    real = shutil.which("docker")
    if not real:
        raise SystemExit("docker is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "docker"
    shim.write_text(f"""#!/usr/bin/env bash
if [ "${{1:-}}" = build ]; then
  set -o pipefail
  {real!s} "$@" 2>&1 | tee -a {str(log)!r}
  exit $?
fi
exec {real!s} "$@"
""")
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def parse_steps(text: str) -> list[dict]:
    """The classic builder's steps: number, instruction, cached?, the layer (image id) it produced."""
    steps: list[dict] = []
    for line in text.splitlines():
        if m := STEP.match(line.rstrip()):
            steps.append({"number": int(m.group(1)), "instruction": m.group(3), "cached": False, "id": None})
        elif steps and line.strip() == "---> Using cache":
            steps[-1]["cached"] = True
        elif steps and (m := LAYER.match(line.rstrip())):
            steps[-1]["id"] = m.group(1)
    return steps


class BuildLog:
    """Everything the benchmark's builds printed, with marks to read one build's part."""

    def __init__(self, path: Path):
        self.path = path
        self.path.write_text("")
        self._mark = 0

    def mark(self) -> None:
        self._mark = self.path.stat().st_size

    def steps_since_mark(self) -> list[dict]:
        with self.path.open() as out:
            out.seek(self._mark)
            return parse_steps(out.read())

    def append(self, text: str) -> None:
        with self.path.open("a") as out:
            out.write(text)

    def created_ids(self) -> list[str]:
        """Layers this run's builds made (not cache hits, not FROM), newest first: safe to remove."""
        steps = parse_steps(self.path.read_text())
        ids = [s["id"] for s in steps if s["id"] and not s["cached"] and not s["instruction"].startswith("FROM")]
        return list(dict.fromkeys(reversed(ids)))


def remove_containers(names: list[str]) -> None:
    for name in names:
        docker("rm", "-f", name, check=False)


def remove_images(filters: list[str], tags: list[str], layer_ids: list[str]) -> int:
    """Remove the tags this run made (by name filter and explicitly), then the layers its builds made.
    `docker rmi` without force refuses layers that another image still builds on: shared ones stay."""
    found: list[str] = []
    for flt in filters:
        found += docker("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", flt, check=False).stdout.split()
    removed = 0
    for ref in dict.fromkeys(found + tags):
        if docker("rmi", ref, check=False).returncode == 0:
            removed += 1
    for layer in layer_ids:
        if docker("image", "inspect", layer, check=False).returncode != 0:
            continue  # already pruned with its child
        tags_of = json.loads(docker("image", "inspect", layer).stdout)[0].get("RepoTags") or []
        if not tags_of and docker("rmi", layer, check=False).returncode == 0:
            removed += 1
    return removed
