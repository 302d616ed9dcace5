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

from mlci.core import reports
from mlci.core.config import Config
from mlci.deploy import decisions
from mlci.deploy.lock import EnvironmentLock
from mlci.deploy.router import Names
from mlci.ship import containers
from mlci.ship.containers import ContainerSpec
from mlci.ship.docker import Docker, DockerError

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
    spec = ContainerSpec(
        image,
        network="none",
        read_only=True,
        cap_drop=["ALL"],
        user="0:0",
        volumes={names.state: "/state:ro"},
        entrypoint=["sh"],
        command=["-c", READ],
    )
    done = containers.run_once(docker, spec)  # never pulled: the image on the host, or refused
    if done.exit_code != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line]
        raise DockerError(f"cannot read the history in {names.state}: {lines[-1] if lines else 'no message'}")
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
