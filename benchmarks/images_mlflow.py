"""MLflow's image for benchmarks/images.py: `mlflow models generate-dockerfile`, adapted to build here.

What MLflow generates (mlflow 3.x, `--env-manager local`) and what is changed — nothing it installs:

* `FROM python:3.11.7-slim` -> `FROM <MLCI_BASE_IMAGE>` (the same Debian bookworm base the API image
  uses; no registry is reachable). The slim image has python, pip, setuptools and wheel in /usr/local,
  first on PATH; the Debian base has python3 + python3-venv, so the adapted file adds
  `RUN python3 -m venv /opt/venv` and `ENV PATH=/opt/venv/bin:$PATH` right after FROM: `pip` and
  `python` in MLflow's own commands then mean what they mean on the slim image.
* Python packages: pip inside a container cannot verify TLS to PyPI here, so MLflow's `pip install`
  commands (unchanged) read a wheelhouse through pip's environment, given as build ARGs (so not kept in
  the image config): PIP_NO_INDEX=1, PIP_FIND_LINKS=http://<docker0>:<port>/ (the host serves the
  wheelhouse for the build; nothing is copied into the image), PIP_TRUSTED_HOST for that plain-HTTP
  address, and PIP_NO_CACHE_DIR=1. The last one is the only departure from what a real MLflow build
  would leave behind: from PyPI, pip would also keep its download cache in /root/.cache/pip; leaving it
  out makes MLflow's image smaller, i.e. the comparison is conservative.
* The wheelhouse is downloaded on the host (`pip download --only-binary=:all:`) with every dependency of
  exactly what the Dockerfile installs: `mlflow==<version>` (RUN pip install mlflow==…), the model's
  python_env.yaml build dependencies (pip, setuptools, wheel pins) and requirements.txt pins, and
  `gunicorn[gevent]` (MLflow's `_install_pyfunc_deps` installs these three sets).
* Kept as generated: the apt-get install of nginx (from the Debian mirror, reachable), the model copy,
  `_install_pyfunc_deps`, the chmod, the apt lists removal, the ENTRYPOINT.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from images_docker import docker, parse_steps

VENV_BIN = Path(sys.executable).parent
GENERATED_FROM = "FROM python:"
ADDED = """# [mlci bench] python:*-slim has python + pip in /usr/local, first on PATH; the Debian base has
# python3 + venv: the same thing at /opt/venv.
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# [mlci bench] pip reads the host's wheelhouse for the build only (build args: not kept in the image).
ARG PIP_NO_INDEX=1
ARG PIP_FIND_LINKS
ARG PIP_TRUSTED_HOST
ARG PIP_NO_CACHE_DIR=1
"""


def generate(model_name: str, version: str, folder: Path, env: dict[str, str]) -> Path:
    done = subprocess.run(
        [
            str(VENV_BIN / "mlflow"),
            "models",
            "generate-dockerfile",
            "-m",
            f"models:/{model_name}/{version}",
            "-d",
            str(folder),
            "--env-manager",
            "local",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not (folder / "Dockerfile").is_file():
        raise SystemExit(f"mlflow models generate-dockerfile failed:\n{done.stderr[-3000:]}")
    (folder / "Dockerfile.generated").write_text((folder / "Dockerfile").read_text())
    return folder


def requirements(context: Path) -> list[str]:
    """What the generated Dockerfile pip-installs: mlflow, the model's env, gunicorn[gevent]."""
    text = (context / "Dockerfile").read_text()
    mlflow_pin = next(
        line.split("pip install ", 1)[1].strip()
        for line in text.splitlines()
        if line.startswith("RUN pip install mlflow")
    )
    model = context / "model_dir"
    python_env = yaml.safe_load((model / "python_env.yaml").read_text())
    pins = [
        line.strip()
        for line in (model / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return [mlflow_pin, *python_env.get("build_dependencies", []), *pins, "gunicorn[gevent]"]


def download_wheelhouse(context: Path, folder: Path) -> dict:
    wanted = requirements(context)
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "-d",
            str(folder),
            *wanted,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"pip download for MLflow's image failed:\n{done.stderr[-3000:]}")
    files = list(folder.iterdir())
    return {
        "requirements": wanted,
        "files": len(files),
        "bytes": sum(f.stat().st_size for f in files),
        "seconds": round(time.monotonic() - started, 2),
    }


def docker0_address() -> str:
    """The host's address on Docker's default bridge, where build containers run."""
    subnet = json.loads(docker("network", "inspect", "bridge").stdout)[0]["IPAM"]["Config"][0]
    return subnet.get("Gateway") or str(next(ipaddress.ip_network(subnet["Subnet"]).hosts()))


def serve_wheelhouse(folder: Path) -> tuple[ThreadingHTTPServer, str]:
    address = docker0_address()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer((address, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{address}:{server.server_address[1]}/"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def adapt(context: Path, base: str) -> list[str]:
    """Rewrite the generated Dockerfile in place (see the module doc); returns what was changed."""
    lines = (context / "Dockerfile").read_text().splitlines()
    froms = [i for i, line in enumerate(lines) if line.startswith(GENERATED_FROM)]
    if len(froms) != 1:
        raise SystemExit(f"unexpected generated Dockerfile (expected one '{GENERATED_FROM}…' line): {context}")
    original = lines[froms[0]]
    lines[froms[0] : froms[0] + 1] = [f"FROM {base}", *ADDED.rstrip().splitlines()]
    (context / "Dockerfile").write_text("\n".join(lines) + "\n")
    return [
        f"`{original}` -> `FROM {base}`",
        "added after FROM: `RUN python3 -m venv /opt/venv`, `ENV PATH=/opt/venv/bin:$PATH`",
        "added build args PIP_NO_INDEX=1, PIP_FIND_LINKS=<host wheelhouse over HTTP>, PIP_TRUSTED_HOST, "
        "PIP_NO_CACHE_DIR=1 (MLflow's pip commands unchanged)",
    ]


def build(context: Path, tag: str, find_links: str, build_log) -> tuple[float, list[dict]]:
    host = find_links.split("/")[2]
    started = time.monotonic()
    done = docker(
        "build",
        "-t",
        tag,
        "--build-arg",
        f"PIP_FIND_LINKS={find_links}",
        "--build-arg",
        f"PIP_TRUSTED_HOST={host.split(':')[0]}",
        str(context),
        check=False,
    )
    seconds = time.monotonic() - started
    build_log.append(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"docker build of MLflow's Dockerfile failed:\n{(done.stdout + done.stderr)[-4000:]}")
    return seconds, parse_steps(done.stdout)
