"""Shadow traffic: production's router copies a share of its live /predict requests to the version
waiting in staging; `mlci shadow report` compares, request by request, what each one answered.
This module switches the mirror and assembles the report; reading the answers is ml/deploy/shadow_answers.py,
comparing them ml/deploy/shadow_compare.py.

How it is wired (docs/deploy.md, "Shadow traffic"):
- the mirror itself is in production's router config (ml/templates/router.conf.j2), rendered only when
  `environments.<env>.shadow` is set; it stays inert until switched on;
- on/off is a file in the router's socket volume (`/run/mlci/shadow.on`), read by nginx on each
  sampled request, so toggling needs no reload — the same trick as the colour switch;
- the copy reaches the staging router over Docker's network: while the shadow is on, staging's
  router container is also attached to production's network (by name), and only then does its name
  resolve there. Staging's published port is on the host's loopback, out of a container's reach.
- both APIs keep (request id → answer) in a bounded ring (api/shadow.py); the report pages through
  both over their routers and joins on the id production's router gave the request. Each slot gets
  its own MLCI_SHADOW_TOKEN (ml/deploy/slots.py) and shows its ring only to a request that carries it:
  the report reads the token of the slot each router serves as live (`slot_token`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx

from mlci.core import reports
from mlci.core.config import Config
from mlci.core.errors import BadInput, MlciError
from mlci.deploy.router import ROUTER_CONFIG, SHADOW_INTAKE_PORT, SOCKET_DIR, Names
from mlci.deploy.shadow_answers import fetch, slot_token
from mlci.deploy.shadow_compare import ShadowReport, compare, summarize
from mlci.ship import containers
from mlci.ship.docker import Docker, DockerError

log = logging.getLogger(__name__)

SWITCH_FILE = f"{SOCKET_DIR}/shadow.on"
REPORT_NAME = "shadow-{env}"


# ---- switching ---------------------------------------------------------------------------------


def sources(config: Config, target: str) -> list[str]:
    """The environments whose router mirrors to `target` (normally production → staging)."""
    return [name for name, env in config.environments.items() if env.shadow is not None and env.shadow.env == target]


def _running(docker: Docker, container: str) -> dict | None:
    state = docker.inspect("container", container)
    return state if state is not None and state["State"]["Running"] else None


def turn_on(config: Config, source: str, step=log.info) -> bool:
    """Mirror `source`'s traffic to its shadow env: attach the shadow's router to `source`'s network,
    then create the switch file. False (and a line saying why) when either router is not running."""
    shadow = config.environments[source].shadow
    assert shadow is not None
    docker = Docker(config.environments[source].docker_host)
    mine, theirs = Names(config.project, source), Names(config.project, shadow.env)
    router, target = _running(docker, mine.router), _running(docker, theirs.router)
    if router is None or target is None:
        missing = source if router is None else shadow.env
        step(f"shadow traffic {source} -> {shadow.env}: off (no {missing} router running)")
        return False
    stale = stale_router(source, _router_config(docker, mine.router), shadow.env, _router_config(docker, theirs.router))
    if stale is not None:
        env_name, why = stale
        containers.execute(docker, mine.router, ["rm", "-f", SWITCH_FILE])
        step(
            f"shadow traffic {source} -> {shadow.env}: off ({why}; copies would be lost: "
            f"mlci deploy --env {env_name} re-renders it)"
        )
        return False
    if mine.network not in (target["NetworkSettings"]["Networks"] or {}):
        containers.connect(docker, mine.network, theirs.router)
    containers.execute(docker, mine.router, ["touch", SWITCH_FILE])
    step(f"shadow traffic {source} -> {shadow.env}: on, {shadow.share:.2%} of /predict mirrored")
    return True


def _router_config(docker: Docker, container: str) -> str:
    return containers.execute(docker, container, ["cat", ROUTER_CONFIG], check=False).stdout


def stale_router(source: str, source_config: str, target: str, target_config: str) -> tuple[str, str] | None:
    """Which router was rendered before this shadow setup, or None. A router is re-rendered only when its
    own environment deploys: production's may still send copies where staging's no longer takes them
    (its public port drops the mark), or staging's may have no intake for them. Either way every copy
    would be lost in silence, so the mirror stays off and says which environment to redeploy:
    (environment, why)."""
    if f"$mlci_shadow_host:{SHADOW_INTAKE_PORT}$request_uri" not in source_config:
        return source, f"{source}'s router was rendered before this shadow setup"
    if f"listen {SHADOW_INTAKE_PORT};" not in target_config:
        return target, f"{target}'s router has no shadow intake"
    return None


def turn_off(config: Config, source: str, step=log.info) -> None:
    """Stop mirroring first (the switch file), then detach the shadow's router from `source`'s network."""
    shadow = config.environments[source].shadow
    assert shadow is not None
    docker = Docker(config.environments[source].docker_host)
    mine, theirs = Names(config.project, source), Names(config.project, shadow.env)
    if _running(docker, mine.router) is not None:
        containers.execute(docker, mine.router, ["rm", "-f", SWITCH_FILE])
    target = docker.inspect("container", theirs.router)
    if target is not None and mine.network in (target["NetworkSettings"]["Networks"] or {}):
        try:
            containers.connect(docker, mine.network, theirs.router, connected=False)
        except DockerError as error:  # detached meanwhile, or the router is being removed: the mirror is off
            log.debug(f"network disconnect of {theirs.router}: {error.message}")
    step(f"shadow traffic {source} -> {shadow.env}: off")


def _served(config: Config, env_name: str) -> str | None:
    env = config.environments[env_name]
    try:
        response = httpx.get(f"http://{env.address}:{env.port}/version", timeout=3)
        return str(response.json()["version"]) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def refresh(config: Config, env_name: str, step=log.info) -> None:
    """After a deploy, rollback or down of `env_name`: every mirror it is part of is on exactly while
    both ends serve and the shadow serves another version than its source (a candidate is waiting)."""
    pairs = [(name, env_name) for name in sources(config, env_name)]
    shadow = config.environments[env_name].shadow
    if shadow is not None:
        pairs.append((env_name, shadow.env))
    for source, target in pairs:
        mine, theirs = _served(config, source), _served(config, target)
        try:
            if mine is not None and theirs is not None and mine != theirs:
                turn_on(config, source, step)
            else:
                turn_off(config, source, step)
        except MlciError as error:  # the deploy itself is done and recorded: say it, do not fail it
            step(f"warning: shadow traffic {source} -> {target} not switched: {error.message}")


def stop(config: Config, env_name: str, step=log.info) -> None:
    """Before `env_name` goes down: every mirror to or from it off (and its network free of the shadow)."""
    shadow = config.environments[env_name].shadow
    for source in sources(config, env_name) + ([env_name] if shadow is not None else []):
        turn_off(config, source, step)


def for_record(
    config: Config, env_name: str, version: str | None, step=log.info, about: str = "deployed"
) -> dict[str, Any] | None:
    """The shadow report to keep in the record of a deploy to `env_name` (production) of `version`, taken
    before its switch; a report that cannot be made, or that is about another version than `version`, is
    noted (`error`) and said in a warning line — never a reason to stop the deploy."""
    shadow = config.environments[env_name].shadow
    if shadow is None:
        return None
    try:
        result = report(config, shadow.env)
    except MlciError as error:
        step(f"shadow report unavailable: {error.message}")
        return {"error": error.message}
    except Exception as error:  # noqa: BLE001 - a bug in the report must not fail a production deploy: note it
        text = f"{type(error).__name__}: {error}"
        step(f"warning: shadow report unavailable (an mlci bug, please report it): {text}")
        return {"error": text}
    record = result.to_dict()
    mismatch = other_version(result, version, about)
    if mismatch is not None:
        step(f"warning: {mismatch}")
        record["error"] = mismatch
        return record
    step(result.summary)
    return record


def other_version(result: ShadowReport, version: str | None, about: str = "deployed") -> str | None:
    """Why the report's figures are not about `version` (the shadow serves another one), or None."""
    if version is None or result.candidate_version == str(version):
        return None
    served = "an unknown version" if result.candidate_version is None else f"v{result.candidate_version}"
    return f"{result.env} serves {served}, not v{version}: this report is not about the version {about}"


def _is_on(config: Config, source: str) -> bool:
    docker = Docker(config.environments[source].docker_host)
    done = containers.execute(docker, Names(config.project, source).router, ["test", "-f", SWITCH_FILE], check=False)
    return done.exit_code == 0


def report(config: Config, env_name: str) -> ShadowReport:
    """Compare the candidate in `env_name` with the environment that mirrors to it."""
    config.environment(env_name)  # an unknown name fails here with the known ones listed
    found = sources(config, env_name)
    if not found:
        raise BadInput(
            f"no environment mirrors its traffic to {env_name}",
            hint=f"set environments.production.shadow: {{env: {env_name}, share: 0.1}} in mlci.yaml (docs/deploy.md)",
        )
    source = found[0]
    source_env, target_env = config.environments[source], config.environments[env_name]
    assert source_env.shadow is not None
    # Each token just before its fetch: a switch in between is a 401, said as such (fetch).
    production_model, production = fetch(
        f"http://{source_env.address}:{source_env.port}", source, slot_token(config, source)
    )
    candidate_model, candidate = fetch(
        f"http://{target_env.address}:{target_env.port}", env_name, slot_token(config, env_name)
    )
    result = ShadowReport(
        env=env_name,
        source=source,
        share=source_env.shadow.share,
        on=_is_on(config, source),
        candidate_version=_version(candidate_model),
        production_version=_version(production_model),
        comparison=compare(production, candidate, source_env.shadow.tolerance, config.task),
    )
    result.summary = summarize(result)
    return result


def _version(model: dict[str, Any]) -> str | None:
    version = model.get("version")
    return None if version is None else str(version)


def write(config: Config, result: ShadowReport) -> Path:
    """reports/shadow-<env>.json: the approval step reads its `summary` line."""
    return reports.write(config, REPORT_NAME.format(env=result.env), result.to_dict())
