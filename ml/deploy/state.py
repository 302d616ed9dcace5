"""An environment's deploy history, kept on its Docker host: `history.jsonl` (one JSON record per
line) in the named volume `<project>-<env>-state`, which outlives `mlci down`.

Only the lock holder writes, through the lock container (ml/deploy/lock.py) that mounts the
volume; anyone reads, through a short-lived read-only container. Every checkout and agent that
talks to the engine therefore sees one history. `reports/deploy-<env>.json` is still written in
the workspace: the build's own report, which Jenkins archives.
"""

from __future__ import annotations

import json
from typing import Any

from ml import reports
from ml.config import Config
from ml.deploy import decisions
from ml.deploy.lock import EnvironmentLock
from ml.docker import Docker
from ml.router import Names

HISTORY = "/state/history.jsonl"
REPORTED = 20
# Append one record, then keep the last KEEP lines (write a copy, rename: never a torn file).
APPEND = (
    f'cat >> {HISTORY} && n=$(wc -l < {HISTORY}) && if [ "$n" -gt {decisions.KEEP} ]; then '
    f"tail -n {decisions.KEEP} {HISTORY} > {HISTORY}.tmp && mv -f {HISTORY}.tmp {HISTORY}; fi"
)
READ = f"cat {HISTORY} 2>/dev/null || true"


def read(docker: Docker, names: Names, image: str | None) -> list[dict[str, Any]]:
    """The history without taking the lock; empty when the environment never had one (or no image
    is on the host to read it with)."""
    if image is None or docker.inspect("volume", names.state) is None:
        return []
    done = docker.run(
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--user",
        "0:0",
        "-v",
        f"{names.state}:/state:ro",
        "--entrypoint",
        "sh",
        image,
        "-c",
        READ,
    )
    return decisions.parse_history(done.stdout)


def read_held(lock: EnvironmentLock) -> list[dict[str, Any]]:
    """The history through the lock container we hold: no extra container."""
    return decisions.parse_history(lock.exec(READ))


def append(config: Config, lock: EnvironmentLock, env: str, record: dict[str, Any]) -> dict[str, Any]:
    """Add a record to the host's history and write the workspace report from it."""
    lock.exec(APPEND, input=json.dumps(record, sort_keys=True) + "\n")
    everything = read_held(lock)
    report = {
        "env": env,
        "current": decisions.serving(everything),
        "last": record,
        "records": everything[-REPORTED:],
    }
    reports.write(config, f"deploy-{env}", report)
    return report
