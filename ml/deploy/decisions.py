"""Pure decisions of the deploy: what the history says serves, what a rollback goes back to, who
holds the lock. No Docker, no MLflow: every input is data, so each rule is unit-tested on its own
(tests/unit/deploy/test_decisions.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# What each record's result means for what serves afterwards.
SERVES = ("deployed", "rollback")  # this record's colour now serves
STOPS = ("down",)  # nothing serves
# "failed" (stopped before the switch) and "rolled back" (switched back after a failed
# verification) leave the previous record serving.

KEEP = 500  # records kept in the state volume's history.jsonl: enough for status, rollback and audit
MAX_LINE = 64_000  # a longer line is not one mlci wrote: skipped, never parsed
MAX_FIELD = 200  # the lock holder's fields are shown to users: bounded


def parse_history(text: str) -> list[dict[str, Any]]:
    """history.jsonl as records; a line that is not a JSON object (a torn write, a hand edit) is
    skipped rather than making the environment unreadable."""
    records = []
    for line in text.splitlines()[-KEEP:]:
        if not line.strip() or len(line) > MAX_LINE:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


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


@dataclass(frozen=True)
class IdleSlot:
    """What the idle colour's container is, as Docker reports it."""

    colour: str
    image: str
    running: bool


@dataclass(frozen=True)
class RollbackPlan:
    """Where a rollback goes: switch to the idle colour (after a health check), else redeploy the
    image that served before the current one; both None: there is nothing to go back to."""

    switch_to: str | None
    redeploy_image: str | None


def rollback_plan(history: list[dict[str, Any]], idle: IdleSlot | None) -> RollbackPlan:
    """The idle slot is a rollback target only if it runs and still holds what served before the
    current record; after a failed deploy it holds the failed image, kept for inspection, and the
    previous image is redeployed instead."""
    life = since_down(history)
    current = serving(life)
    earlier = [
        record
        for record in life
        if record.get("result") in SERVES
        and record.get("image")
        and (current is None or record.get("image") != current.get("image"))
    ]
    previous_image = str(earlier[-1]["image"]) if earlier else None
    switch = idle is not None and idle.running and (previous_image is None or idle.image == previous_image)
    return RollbackPlan(switch_to=idle.colour if switch and idle else None, redeploy_image=previous_image)


@dataclass(frozen=True)
class Holder:
    """Who holds an environment's lock, from the lock container's label."""

    by: str = "another process"
    build: str | None = None
    host: str | None = None
    pid: int | None = None
    since: str | None = None
    token: str | None = None

    def describe(self) -> str:
        facts = [f"build {self.build}" if self.build else None, f"host {self.host}" if self.host else None]
        facts += [f"pid {self.pid}" if self.pid else None, f"since {self.since}" if self.since else None]
        shown = ", ".join(fact for fact in facts if fact)
        return f"{self.by} ({shown})" if shown else self.by


def parse_holder(label: str | None) -> Holder:
    """The holder label (JSON written by mlci; anyone with access to the engine could write another):
    known keys only, strings bounded, anything unreadable is "another process"."""
    try:
        data = json.loads(label or "")
    except ValueError:
        return Holder()
    if not isinstance(data, dict):
        return Holder()

    def text(key: str) -> str | None:
        value = data.get(key)
        return str(value)[:MAX_FIELD] if isinstance(value, str | int) and str(value) else None

    pid = data.get("pid")
    return Holder(
        by=text("by") or "another process",
        build=text("build"),
        host=text("host"),
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        since=text("since"),
        token=text("token"),
    )


def holder_label(holder: Holder) -> str:
    return json.dumps({k: v for k, v in vars(holder).items() if v is not None}, sort_keys=True, separators=(",", ":"))
