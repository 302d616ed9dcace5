"""`mlci pipeline run`: the Jenkinsfile's stages, in the same order, on a laptop.

Each stage calls the same function as its `mlci` command (and the Jenkinsfile's step), so the
local run and Jenkins cannot drift apart; a test holds STAGES equal to the Jenkinsfile's stage names.
Nothing here prints: the stage lines, the tables an approver reads and the approval question go to a
`Reporter` the caller gives (the CLI's prints and asks on the terminal); the stages' own progress lines
are log records (logger `mlci`), which the CLI shows.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlci.core import exits, reports
from mlci.core.config import Config
from mlci.core.errors import BadInput, CheckFailed

log = logging.getLogger(__name__)

STAGES = ("Setup", "Test", "Train", "Gate", "Build images", "Deploy staging", "Approve", "Deploy production")


def slug(name: str) -> str:
    return name.lower().replace(" images", "").replace(" ", "-")


def stage_named(value: str) -> str:
    for name in STAGES:
        if value.lower() in (name.lower(), slug(name)):
            return name
    raise BadInput(f"unknown stage {value!r}", hint="stages: " + ", ".join(slug(s) for s in STAGES))


class Reporter(Protocol):
    """Where the pipeline's progress goes, and who answers the approval question."""

    def stage(self, index: int, total: int, name: str, state: str, seconds: float | None) -> None:
        """A stage starts (seconds None) or ends (its state: ok: summary, FAILED, stopped)."""

    def block(self, text: str) -> None:
        """A preformatted block the approver reads (the gate table), as written."""

    def confirm(self, question: str) -> bool:
        """Ask the approval question on a terminal; True to go on."""


class Silent:
    """A Reporter that shows nothing and approves nothing (for callers that only want the Run)."""

    def stage(self, index: int, total: int, name: str, state: str, seconds: float | None) -> None:
        return None

    def block(self, text: str) -> None:
        return None

    def confirm(self, question: str) -> bool:
        return False


@dataclass
class Run:
    config: Config
    approve: bool | None
    interactive: bool
    reporter: Reporter = field(default_factory=Silent)
    approver: str | None = None
    facts: dict[str, str] = field(default_factory=dict)
    results: list[tuple[str, str, float]] = field(default_factory=list)


def _setup(run: Run) -> str:
    from mlci.ship.docker import Docker
    from mlci.track import tracking

    tracking.connect(run.config)
    engine = Docker().check()
    for name in ("staging", "production"):
        run.config.environment(name)
    return f"config valid, MLflow at {run.config.tracking_uri}, Docker engine {engine}"


def _test(run: Run) -> str:
    from mlci.learn import testing, verdicts

    result = testing.run(run.config)
    verdicts.require_tests_passed(result)
    return result.summary


def _train(run: Run) -> str:
    from mlci.learn import train

    result = train.train(run.config)
    run.facts["version"] = result.version
    return (
        f"{result.model_name} v{result.version} @{result.alias}, test {result.primary_metric} "
        f"{result.metrics[result.primary_metric]:.4f}"
    )


# One version per build: every stage after Train works on the version it registered, passed explicitly
# (a run started after Train reads it from reports/train.json, as the commands do).
def _gate(run: Run) -> str:
    from mlci.learn import gate, verdicts

    result = gate.gate(run.config, version=run.facts.get("version"))
    run.facts["version"] = str(result.candidate["version"])
    run.reporter.block(result.table)
    verdicts.require_gate_passed(result)
    against = verdicts.gate_reference(result)
    run.facts["gate"] = f"passed against {against}"
    return f"v{result.candidate['version']} passes against {against}"


def image_roles(config: Config) -> tuple[str, ...]:
    """The images the line deploys: the API and the router always, the dashboard only where an
    environment serves one (a dashboard image is the largest to build, push and pull)."""
    serves_dashboard = any(config.environment(name).dashboard_port for name in config.environments)
    return ("api", "router", "dashboard") if serves_dashboard else ("api", "router")


def _build(run: Run) -> str:
    from mlci.ship import images

    result = images.build(run.config, version=run.facts.get("version"), roles=image_roles(run.config))
    run.facts["version"] = result.version
    run.facts["image"] = result.images["api"].tag
    return ", ".join(i.tag for i in result.images.values())


def _deploy(env_name: str) -> Callable[[Run], str]:
    def deploy_stage(run: Run) -> str:
        from mlci.deploy import orchestrate

        outcome = orchestrate.deploy(
            run.config,
            env_name,
            image=run.facts.get("image"),
            approver=run.approver if env_name == "production" else None,
        )
        return f"v{outcome.model_version} live on {outcome.colour} at {outcome.url}"

    return deploy_stage


def _approve(run: Run) -> str:
    gate = reports.read(run.config, "gate") or {}
    staging = (reports.read(run.config, "deploy-staging") or {}).get("current") or {}
    version = run.facts.get("version") or (gate.get("candidate") or {}).get("version", "?")
    log.info(f"approval: {run.config.model_name} v{version} to production; staging: {staging.get('url', '-')}")
    if gate.get("table"):
        run.reporter.block(gate["table"])
    shadow_report = _shadow_for_approval(run.config, None if version == "?" else str(version))
    if run.approve is None:
        if not run.interactive:
            raise BadInput(
                "approval needed and no terminal to ask on",
                hint="pass --approve or --no-approve for a non-interactive run",
            )
        run.approve = run.reporter.confirm(f"Deploy v{version} to production?")
    if not run.approve:
        _record_approval(run, version, None, shadow_report)
        raise NotApproved(f"v{version} was not approved: production is untouched")
    from mlci.track.registry import actor

    run.approver = actor()
    _record_approval(run, version, run.approver, shadow_report)
    return f"approved by {run.approver}"


def _shadow_for_approval(config: Config, version: str | None) -> dict[str, Any] | None:
    """The shadow report of production's mirror, printed as one line before the question (its summary,
    why it is unavailable, or that staging serves another version than `version`, the one asked about:
    then its figures are not that version's); None when production mirrors nothing."""
    from mlci.deploy import shadow

    if config.environments.get("production") is None:
        return None
    return shadow.for_record(
        config, "production", version, step=lambda line: log.info(f"approval: {line}"), about="being approved"
    )


def _record_approval(run: Run, version: str, approver: str | None, shadow_report: dict[str, Any] | None) -> None:
    """reports/approval.json: who decided on which version, with what the approver saw of the shadow."""
    reports.write(
        run.config,
        "approval",
        {
            "model": run.config.model_name,
            "version": str(version),
            "approved": approver is not None,
            "approver": approver,
            "shadow": shadow_report,
        },
    )


class NotApproved(CheckFailed):
    pass


ACTIONS: dict[str, Callable[[Run], str]] = {
    "Setup": _setup,
    "Test": _test,
    "Train": _train,
    "Gate": _gate,
    "Build images": _build,
    "Deploy staging": _deploy("staging"),
    "Approve": _approve,
    "Deploy production": _deploy("production"),
}
assert tuple(ACTIONS) == STAGES


def run(
    config: Config,
    first: str | None = None,
    last: str | None = None,
    approve: bool | None = None,
    interactive: bool | None = None,
    reporter: Reporter | None = None,
) -> Run:
    """Run the stages from `first` to `last`; stop at the first failure, re-raising its error."""
    begin = STAGES.index(stage_named(first)) if first else 0
    end = STAGES.index(stage_named(last)) if last else len(STAGES) - 1
    if begin > end:
        raise BadInput(f"--from {STAGES[begin]} comes after --to {STAGES[end]}")
    selected = STAGES[begin : end + 1]
    state = Run(
        config=config,
        approve=approve,
        interactive=sys.stdin.isatty() if interactive is None else interactive,
        reporter=reporter or Silent(),
    )
    show = state.reporter.stage
    for index, name in enumerate(selected, start=1):
        show(index, len(selected), name, "running", None)
        started = time.monotonic()
        try:
            summary = ACTIONS[name](state)
        except Exception as raised:
            mapped = exits.classify(raised)
            if mapped is None:  # a bug: keep its traceback
                raise
            _code, error = mapped
            elapsed = time.monotonic() - started
            state.results.append((name, f"FAILED: {error.message}", elapsed))
            show(index, len(selected), name, "stopped" if isinstance(error, NotApproved) else "FAILED", elapsed)
            error.stage = name  # type: ignore[attr-defined]
            error.pipeline = state  # type: ignore[attr-defined]
            if error is raised:
                raise
            raise error from raised
        elapsed = time.monotonic() - started
        state.results.append((name, summary, elapsed))
        show(index, len(selected), name, f"ok: {summary}", elapsed)
    return state


def serving(config: Config) -> list[tuple[str, str]]:
    """What serves where, from the deploy reports: (environment, description)."""
    lines = []
    for env_name, env in config.environments.items():
        current = (reports.read(config, f"deploy-{env_name}") or {}).get("current")
        if current:
            dashboard = f", dashboard http://{env.address}:{env.dashboard_port}" if env.dashboard_port else ""
            lines.append(
                (env_name, f"v{current['model_version']} ({current['colour']}) at {current['url']}{dashboard}")
            )
        else:
            lines.append((env_name, "nothing deployed"))
    return lines
