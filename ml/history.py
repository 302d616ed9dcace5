"""Deploy records: an append-only history per environment (`.mlci/deploys/<env>.jsonl`) and the
report Jenkins archives (`reports/deploy-<env>.json`: the current record and the recent ones)."""

from __future__ import annotations

import json
from typing import Any

from ml import reports
from ml.config import Config

REPORTED = 20


def _file(config: Config, env: str):
    return config.state_dir / "deploys" / f"{env}.jsonl"


def records(config: Config, env: str) -> list[dict[str, Any]]:
    path = _file(config, env)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# What each record's result means for what serves afterwards.
SERVES = ("deployed", "rollback")  # this record's colour now serves
STOPS = ("down",)  # nothing serves
# "failed" (stopped before the switch) and "rolled back" (switched back after a failed
# verification) leave the previous record serving.


def serving(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The record of what serves now, replaying the history."""
    current = None
    for record in history:
        if record.get("result") in SERVES:
            current = record
        elif record.get("result") in STOPS:
            current = None
    return current


def since_down(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of the environment's current life (after its last `mlci down`)."""
    for index in range(len(history) - 1, -1, -1):
        if history[index].get("result") in STOPS:
            return history[index + 1 :]
    return history


def append(config: Config, env: str, record: dict[str, Any]) -> dict[str, Any]:
    path = _file(config, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
    everything = records(config, env)
    report = {"env": env, "current": serving(everything), "last": record, "records": everything[-REPORTED:]}
    reports.write(config, f"deploy-{env}", report)
    return report
