"""`mlci deploy`, `mlci rollback`, `mlci down`: blue/green behind the environment's router.

deploy: lock the environment (on its Docker host) → network and router up → new image in the idle
slot → /ready → smoke test through the preview listener → switch `live` (no reload) → verify
through the router → registry alias named after the environment → record in the host's history.
The previous colour keeps running: a rollback is a switch back. Any failure before the switch
leaves live traffic untouched; a failed verification switches back and exits 1.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from mlci.contract import mlflow_reads
from mlci.core.config import Config
from mlci.core.errors import BadInput, CheckFailed, MlciError
from mlci.deploy import checks, decisions, policy, pull, shadow, state
from mlci.deploy.lock import EnvironmentLock
from mlci.deploy.router import COLOURS, LIVE, PREVIEW, other, render
from mlci.deploy.slots import (
    Context,
    Target,
    ensure_dashboard,
    host_image,
    image_target,
    open_context,
    resolve_target,
    role_image,
    start_slot,
)
from mlci.deploy.switch import SwitchedBack, switch
from mlci.ship import containers, image_registry
from mlci.track import archive, provenance, registry, tracking

log = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT = 300.0


@dataclass
class Outcome:
    env: str
    result: str  # deployed | rollback | failed | rolled back | down
    colour: str | None
    previous_colour: str | None
    model_name: str | None
    model_version: str | None
    image: str | None
    url: str
    reason: str | None = None
    steps: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # The promotion policy's verdict on this deploy (requirements, and any override with its reason).
    policy: dict[str, Any] = field(default_factory=dict)
    host: str | None = None  # the environment's Docker host (None: the local engine)
    digest: str | None = None  # the API image's registry digest (repo@sha256:…) when it has one
    shadow: dict[str, Any] | None = None  # the shadow report just before the switch (ml/deploy/shadow.py)

    def record(self, kind: str, approver: str | None) -> dict[str, Any]:
        return {
            **asdict(self),
            "kind": kind,
            "deployed_at": registry.now(),
            "deployed_by": registry.actor(),
            "approver": approver or None,
            **provenance.collect_ci(),
        }


def _lock(ctx: Context, timeout: float, step: Callable[[str], None]) -> EnvironmentLock:
    image = host_image(ctx)
    if image is None:
        raise BadInput(
            f"no router image on {ctx.docker.where} to hold the lock of {ctx.env_name} with "
            f"({ctx.images.get('router') or role_image(ctx.config, 'router')})",
            hint="run mlci build (it builds the router image), or set MLCI_ROUTER_IMAGE",
        )
    return EnvironmentLock(ctx.docker, ctx.names, image, timeout, step)


def _record(
    ctx: Context, lock: EnvironmentLock, outcome: Outcome, kind: str, approver: str | None, started: float
) -> None:
    outcome.seconds = round(time.monotonic() - started, 2)
    report = state.append(ctx.config, lock, ctx.env_name, outcome.record(kind, approver))
    archive.deploy_record(ctx.config, report["last"])  # best effort, after the record (ml/track/archive.py)


def deploy(
    config: Config,
    env_name: str,
    version: str | None = None,
    image: str | None = None,
    approver: str | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    step: Callable[[str], None] = log.info,
    force: bool = False,
    reason: str | None = None,
) -> Outcome:
    started = time.monotonic()
    ctx = open_context(config, env_name)
    if pull.applies(config, ctx.env):
        # Another host: the registry's digests, pulled and checked before anything moves.
        client = tracking.connect(config)
        pulled = pull.pull_images(ctx.docker, config, ctx.env, client, version, image)
        target, ctx = pulled.target, dataclasses.replace(ctx, images=pulled.roles)
        step(f"pulled {target.image} (v{target.model_version}) onto {ctx.docker.where}")
    else:
        target = resolve_target(config, ctx.docker, version, image)
        client = tracking.connect(config)  # unreachable MLflow fails now, before anything moves
    registry.resolve(client, config.model_name, version=target.model_version)
    # The promotion policy, before the lock, the slot or the router move anything.
    verdict = policy.check(config, env_name, client, target.model_version, approver, force=force, reason=reason)
    if verdict.requirements:
        step(f"policy for {env_name}: requires {', '.join(verdict.requirements)}")
    if verdict.forced:
        _warn_forced(verdict, step)
    with _lock(ctx, lock_timeout, step) as lock:
        if verdict.requirements:  # a deploy that waited for the lock may face another production now
            verdict = policy.check(config, env_name, client, target.model_version, approver, force=force, reason=reason)
        return _deploy_locked(ctx, lock, target, approver, step, started, kind="deploy", verdict=verdict)


def _warn_forced(verdict: policy.Verdict, step: Callable[[str], None]) -> None:
    bar = "!" * 78
    step(bar)
    step(f"WARNING: v{verdict.version} goes to {verdict.env} WITHOUT meeting its policy (--force)")
    for unmet in verdict.unmet:
        step(f"  skipped {unmet.requirement}: {unmet.why}")
    step(f"  reason: {verdict.reason}; by {verdict.forced_by}; recorded on the version and in the history")
    step(bar)


def _deploy_locked(
    ctx: Context,
    lock: EnvironmentLock,
    target: Target,
    approver: str | None,
    step: Callable[[str], None],
    started: float,
    kind: str,
    verdict: policy.Verdict | None = None,
) -> Outcome:
    names, router, env = ctx.names, ctx.router, ctx.env
    outcome = Outcome(
        ctx.env_name, "failed", None, None, target.model_name, target.model_version, target.image, router.url
    )
    outcome.host, outcome.digest = ctx.env.docker_host, _digest(ctx, target)
    if verdict is not None:
        outcome.policy = verdict.record()

    def note(message: str) -> None:
        outcome.steps.append(message)
        step(message)

    try:
        router_image = ctx.images.get("router") or role_image(ctx.config, "router")
        did = router.ensure(router_image, render(ctx.config, ctx.env_name, env))
        note(f"router {names.router} on {router.url}: {did}")
        dashboard_image = ctx.images.get("dashboard")
        if dashboard := ensure_dashboard(ctx.config, ctx.docker, names, ctx.env_name, env, dashboard_image):
            note(dashboard)
        live = router.colour(LIVE)
        idle = other(live) if live else COLOURS[0]
        outcome.previous_colour, outcome.colour = live, idle
        note(f"live colour: {live or 'none'}; starting {target.image} in the idle slot {idle}")
        start_slot(ctx.docker, names, ctx.env_name, env, idle, target)
        router.point(PREVIEW, idle)
        waited = checks.wait_ready(ctx.docker, names, router, idle, env.checks.ready_timeout)
        note(f"{names.slot(idle)} ready in {waited:.1f} s")
        rows = checks.smoke(ctx.docker, names, router, idle, target, env.checks.smoke_tolerance)
        note(
            f"smoke test passed on {router.preview_url}: {rows} reference rows, /version names v{target.model_version}"
        )
    except MlciError as error:
        outcome.reason = error.message
        _record(ctx, lock, outcome, kind, approver, started)
        raise
    try:
        lock.ensure_held()  # the slow part is over: still ours before live traffic moves?
    except MlciError as error:
        outcome.reason = error.message
        raise
    if kind == "deploy":
        outcome.shadow = shadow.for_record(ctx.config, ctx.env_name, target.model_version, note)
    try:
        switch(ctx, target, live, idle, approver, note, forced=verdict.facts() if verdict else None)
    except SwitchedBack as back:
        outcome.result, outcome.reason = "rolled back", back.reason
        note(f"rolled back: live -> {live or 'none'}; {target.image} stays in {idle} for inspection")
        _record(ctx, lock, outcome, kind, approver, started)
        if isinstance(back.error, MlciError):
            raise CheckFailed(
                f"deploy to {ctx.env_name} rolled back: {back.error.message}", details=back.error.details
            ) from None
        raise back.error from None
    outcome.result = "deployed" if kind == "deploy" else "rollback"
    _record(ctx, lock, outcome, kind, approver, started)
    shadow.refresh(ctx.config, ctx.env_name, note)  # a candidate waiting in staging: mirror on, else off
    return outcome


def _digest(ctx: Context, target: Target) -> str | None:
    """The API image's registry digest: the reference itself when pulled by digest, else the first
    repo digest the engine knows for it (an image pushed from this engine)."""
    if image_registry.parse_digest_ref(target.image):
        return target.image
    info = ctx.docker.inspect("image", target.image) or {}
    digests = info.get("RepoDigests") or []
    return str(digests[0]) if digests else None


def rollback(
    config: Config,
    env_name: str,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    step: Callable[[str], None] = log.info,
) -> Outcome:
    """Switch back to the other colour when it runs, answers and held what served before;
    otherwise redeploy the image of the record before the current one (decisions.rollback_plan)."""
    started = time.monotonic()
    ctx = open_context(config, env_name)
    tracking.connect(config)
    with _lock(ctx, lock_timeout, step) as lock:
        if ctx.router.state() is None or (live := ctx.router.colour(LIVE)) is None:
            raise BadInput(
                f"nothing is deployed to {env_name}: there is nothing to roll back",
                hint=f"deploy first: mlci deploy --env {env_name}",
            )
        previous = other(live)
        slot = ctx.docker.inspect("container", ctx.names.slot(previous))
        idle = decisions.IdleSlot(previous, slot["Config"]["Image"], slot["State"]["Running"]) if slot else None
        plan = decisions.rollback_plan(state.read_held(lock), idle)
        if plan.switch_to and slot:
            labels = slot["Config"]["Labels"] or {}
            target = Target(
                slot["Config"]["Image"],
                labels.get("io.mlci.model.name", config.model_name),
                labels.get("io.mlci.model.version", "?"),
                labels,
            )
            step(f"previous colour {previous} runs {target.model_name} v{target.model_version}: checking it")
            ctx.router.point(PREVIEW, previous)
            try:
                checks.wait_ready(ctx.docker, ctx.names, ctx.router, previous, min(ctx.env.checks.ready_timeout, 10))
            except CheckFailed as error:
                step(f"{ctx.names.slot(previous)} is not healthy ({error.message}); redeploying the previous image")
            else:
                return _switch_back(ctx, lock, target, live, previous, step, started)
        if plan.redeploy_image is None:
            raise BadInput(
                f"{env_name} has no previous colour running and no earlier deploy on record",
                hint="deploy a known-good version instead: mlci deploy --env ENV --version N",
            )
        target = image_target(ctx.docker, plan.redeploy_image, config)
        step(f"redeploying {target.image} (v{target.model_version}), the deploy before the current one")
        return _deploy_locked(ctx, lock, target, None, step, started, kind="rollback")


def _switch_back(
    ctx: Context,
    lock: EnvironmentLock,
    target: Target,
    live: str,
    previous: str,
    step: Callable[[str], None],
    started: float,
) -> Outcome:
    """The rollback that is only a switch: the previous colour still runs and answers."""
    outcome = Outcome(
        ctx.env_name, "failed", previous, live, target.model_name, target.model_version, target.image, ctx.router.url
    )
    outcome.host, outcome.digest = ctx.env.docker_host, _digest(ctx, target)
    try:
        switch(ctx, target, live, previous, None, step)
    except SwitchedBack as back:
        outcome.result, outcome.reason = "rolled back", back.reason
        step(f"the previous colour failed verification: live is back on {live}")
        _record(ctx, lock, outcome, "rollback", None, started)
        raise CheckFailed(f"rollback of {ctx.env_name} failed; live stays on {live}: {outcome.reason}") from None
    outcome.result = "rollback"
    _record(ctx, lock, outcome, "rollback", None, started)
    shadow.refresh(ctx.config, ctx.env_name, step)
    return outcome


def down(
    config: Config,
    env_name: str,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    step: Callable[[str], None] = log.info,
) -> list[str]:
    """Remove the environment's containers, network and socket volume, and its registry alias. The
    state volume stays: its history keeps the "down" record."""
    started = time.monotonic()
    ctx = open_context(config, env_name)
    image = host_image(ctx)
    if image is None:
        # No router and no router image on the host: nothing was deployed from here, and there is
        # nothing to run a lock with. Leftovers (an alias, a network) are still removed.
        return _remove(ctx, step)
    with EnvironmentLock(ctx.docker, ctx.names, image, lock_timeout, step) as lock:
        removed = _remove(ctx, step)
        outcome = Outcome(
            env_name, "down", None, None, None, None, None, ctx.router.url, steps=[f"removed {r}" for r in removed]
        )
        _record(ctx, lock, outcome, "down", None, started)
        return removed


def _remove(ctx: Context, step: Callable[[str], None]) -> list[str]:
    docker, names = ctx.docker, ctx.names
    shadow.stop(ctx.config, ctx.env_name, step)  # frees the network of a shadow router attached to it
    removed = []
    for container in (names.dashboard, names.router, *(names.slot(c) for c in COLOURS)):
        if docker.inspect("container", container) is None:
            continue  # `docker rm -f` of a missing container succeeds: only report what was there
        containers.remove(docker, container)
        if docker.inspect("container", container) is None:
            removed.append(container)
    for kind, name in (("network", names.network), ("volume", names.volume)):
        if docker.inspect(kind, name) is not None:
            containers.remove_object(docker, kind, name)
            removed.append(f"{kind} {name}")
    try:
        client = tracking.connect(ctx.config)
        if ctx.env_name in mlflow_reads.alias_map(client, ctx.config.model_name):
            registry.restore_alias(client, ctx.config.model_name, ctx.env_name, None)
            removed.append(f"alias @{ctx.env_name}")
    except MlciError as error:
        step(f"warning: could not remove alias @{ctx.env_name}: {error.message}")
    for item in removed:
        step(f"removed {item}")
    return removed
