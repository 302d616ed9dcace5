"""`mlci deploy`, `mlci rollback`, `mlci down`: blue/green behind the environment's router.

deploy: lock the environment → network and router up → new image in the idle slot → /ready →
smoke test through the preview listener (reference rows, /version) → switch `live` (no reload) →
verify through the router → registry alias named after the environment → record. The previous
colour keeps running: a rollback is a switch back. Any failure before the switch leaves live
traffic untouched; a failed verification switches back and exits 1.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from filelock import FileLock, Timeout

from ml import console, history, polling, provenance, registry, reports, tracking
from ml.config import Config, Environment
from ml.docker import Docker
from ml.environment_status import DeployRecord, EnvironmentStatus, SlotStatus
from ml.errors import BadInput, CheckFailed, MlciError
from ml.router import COLOURS, LIVE, PREVIEW, Names, Router, other, render

PROBE_INTERVAL = 0.05
DEFAULT_LOCK_TIMEOUT = 300.0


@dataclass
class Target:
    image: str
    model_name: str
    model_version: str
    labels: dict[str, str]


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

    def record(self, kind: str, approver: str | None) -> dict[str, Any]:
        facts = provenance.collect_ci()
        return {
            **asdict(self),
            "kind": kind,
            "deployed_at": registry.now(),
            "deployed_by": registry.actor(),
            "approver": approver or None,
            **facts,
        }


# --- the environment's lock -------------------------------------------------------------------


class EnvironmentLock:
    """One deploy (or rollback, or down) per environment at a time; a second one waits, then fails
    naming the holder."""

    def __init__(self, config: Config, env_name: str, timeout: float):
        folder = config.state_dir / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{config.project}-{env_name}.lock"
        self.holder = self.path.with_suffix(".holder")
        self.lock = FileLock(str(self.path))
        self.env_name, self.timeout = env_name, timeout

    def __enter__(self) -> EnvironmentLock:
        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            who = self.holder.read_text(encoding="utf-8").strip() if self.holder.is_file() else "another process"
            console.info(f"waiting up to {self.timeout:.0f} s for {self.env_name}: locked by {who}")
            try:
                self.lock.acquire(timeout=self.timeout)
            except Timeout:
                raise CheckFailed(
                    f"environment {self.env_name} is locked by {who}; nothing was done",
                    hint="wait for that deploy to finish (or raise --lock-timeout), then run again",
                ) from None
        self.holder.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "by": registry.actor(),
                    "since": registry.now(),
                    "build": os.environ.get("BUILD_URL"),
                }
            ),
            encoding="utf-8",
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.holder.unlink(missing_ok=True)
        self.lock.release()


# --- what to deploy ---------------------------------------------------------------------------


def _target(docker: Docker, ref: str, config: Config) -> Target:
    info = docker.inspect("image", ref)
    if info is None:
        raise BadInput(f"image {ref} is not on {docker.where}", hint="run mlci build, or docker pull it first")
    labels = (info.get("Config") or {}).get("Labels") or {}
    name, version = labels.get("io.mlci.model.name"), labels.get("io.mlci.model.version")
    if not name or not version:
        raise BadInput(f"image {ref} is not an mlci API image (no io.mlci.model.* labels)")
    if name != config.model_name:
        raise BadInput(f"image {ref} holds model {name!r}, this project deploys {config.model_name!r}")
    return Target(ref, name, version, labels)


def resolve_target(config: Config, docker: Docker, version: str | None, image: str | None) -> Target:
    if version and image:
        raise BadInput("give --version or --image, not both")
    if image:
        return _target(docker, image, config)
    if version:
        if not version.isdigit():
            raise BadInput(f"--version must be a model version number, got {version!r}")
        from ml.images import image_name

        found = docker.run(
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "--filter",
            f"label=io.mlci.model.name={config.model_name}",
            "--filter",
            f"label=io.mlci.model.version={version}",
        ).stdout.split()
        # Only images mlci build named for this version (<name>-api:<version>-<commit>), newest first.
        found = [ref for ref in found if ref.startswith(f"{image_name(config, 'api')}:{version}-")]
        if not found:
            raise BadInput(
                f"no API image of {config.model_name} version {version} on {docker.where}",
                hint=f"run mlci build --version {version} first",
            )
        return _target(docker, found[0], config)  # newest first
    built = reports.read(config, "build")
    if not built or "api" not in built.get("images", {}):
        raise BadInput(
            "nothing to deploy: no reports/build.json with an API image",
            hint="run mlci build first, or pass --version N or --image REF",
        )
    return _target(docker, built["images"]["api"]["tag"], config)


def role_image(config: Config, role: str) -> str:
    """The router or dashboard image: MLCI_<ROLE>_IMAGE, else the last build's, else <name>:latest."""
    if image := os.environ.get(f"MLCI_{role.upper()}_IMAGE"):
        return image
    built = reports.read(config, "build") or {}
    if tag := (built.get("images", {}).get(role) or {}).get("tag"):
        return tag
    from ml.images import image_name

    return f"{image_name(config, role)}:latest"


def ensure_dashboard(config: Config, docker: Docker, names: Names, env_name: str, env: Environment) -> str | None:
    """The environment's dashboard, pointed at its router: created once, it follows every switch."""
    if env.dashboard_port is None:
        return None
    state = docker.inspect("container", names.dashboard)
    if state is not None and state["State"]["Running"]:
        return f"dashboard on http://{env.address}:{env.dashboard_port}: running"
    image = role_image(config, "dashboard")
    if docker.inspect("image", image) is None:
        return f"warning: no dashboard image {image} (run mlci build); the dashboard is not started"
    docker.run("rm", "-f", names.dashboard, check=False)
    docker.run(
        "run",
        "-d",
        "--name",
        names.dashboard,
        "--network",
        names.network,
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-e",
        "MLCI_API_URL=http://router:8080",
        "-e",
        f"MLCI_ENV={env_name}",
        "-p",
        f"{env.address}:{env.dashboard_port}:8501",
        "--restart",
        "unless-stopped",
        *names.labels("dashboard"),
        image,
    )
    return f"dashboard on http://{env.address}:{env.dashboard_port}: started ({image})"


# --- the slot ---------------------------------------------------------------------------------


def start_slot(docker: Docker, names: Names, env_name: str, env: Environment, colour: str, target: Target) -> None:
    docker.run("rm", "-f", names.slot(colour), check=False)
    # A warming slot gets a quarter of the CPU weight of the live one (restored at the switch):
    # on a busy host its start-up must not cost the live colour its latency.
    docker.run(
        "run",
        "-d",
        "--name",
        names.slot(colour),
        "--network",
        names.network,
        "--cpu-shares",
        "256",
        "-v",
        f"{names.volume}:/run/mlci",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-e",
        f"MLCI_UDS=/run/mlci/{colour}.sock",
        "-e",
        f"MLCI_COLOUR={colour}",
        "-e",
        f"MLCI_ENV={env_name}",
        "-e",
        f"MLCI_WORKERS={env.workers}",
        "--restart",
        "unless-stopped",
        *names.labels("slot", **{"io.mlci.colour": colour, "io.mlci.deployed_at": registry.now()}),
        target.image,
    )


def _logs(docker: Docker, container: str) -> list[str]:
    done = docker.run("logs", "--tail", "8", container, check=False)
    return [line for line in (done.stdout + done.stderr).strip().splitlines() if line][-8:]


def wait_ready(docker: Docker, names: Names, router: Router, colour: str, timeout: float) -> float:
    """Seconds until the new slot answers /ready through the preview listener; gives up at once if it exits."""
    started = time.monotonic()
    with httpx.Client(timeout=2) as client:

        def probe() -> float | None:
            try:
                if client.get(f"{router.preview_url}/ready").status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            state = docker.inspect("container", names.slot(colour))
            if state is None or not state["State"]["Running"] or state["State"]["Restarting"]:
                code = state["State"]["ExitCode"] if state else "?"
                raise CheckFailed(
                    f"the new container {names.slot(colour)} exited at start (exit code {code})",
                    details=_logs(docker, names.slot(colour)),
                )
            return None

        seconds = polling.poll(probe, timeout=timeout)
    if seconds is not None:
        return seconds
    raise CheckFailed(
        f"the new container {names.slot(colour)} did not become ready within {timeout:.0f} s",
        details=_logs(docker, names.slot(colour)),
        hint="see its log above; raise checks.ready_timeout if it is only slow",
    )


def smoke(docker: Docker, names: Names, router: Router, colour: str, target: Target, tolerance: float) -> int:
    """The bundle's reference rows through the preview listener must give their expected outputs."""
    with httpx.Client(timeout=10) as client:
        version = client.get(f"{router.preview_url}/version").json()
        if (version.get("name"), str(version.get("version")), version.get("colour")) != (
            target.model_name,
            target.model_version,
            colour,
        ):
            raise CheckFailed(
                f"smoke test: /version of the new slot names {version.get('name')} "
                f"v{version.get('version')} ({version.get('colour')}), expected "
                f"{target.model_name} v{target.model_version} ({colour})"
            )
        reference = json.loads(docker.run("exec", names.slot(colour), "cat", "/app/bundle/reference.json").stdout)
        answer = client.post(f"{router.preview_url}/predict", json={"records": reference["records"]})
    if answer.status_code != 200:
        raise CheckFailed(f"smoke test: /predict answered {answer.status_code}", details=[answer.text[:300]])
    problems = []
    for index, (got, expected) in enumerate(zip(answer.json()["predictions"], reference["expected"])):
        if got["label"] != expected["label"]:
            problems.append(f"reference row {index}: label {got['label']!r}, expected {expected['label']!r}")
            continue
        worst = max(abs(got["probabilities"][k] - v) for k, v in expected["probabilities"].items())
        if worst > tolerance:
            problems.append(f"reference row {index}: probabilities off by {worst:.2e} (tolerance {tolerance:g})")
    if problems:
        raise CheckFailed(
            f"smoke test: {len(problems)} of {len(reference['expected'])} reference rows differ", details=problems[:5]
        )
    return len(reference["expected"])


def verify(router: Router, target: Target, seconds: float, drain: float) -> dict[str, int]:
    """Error-free probes through the router for the window; once the drain is over, every answer
    must come from the new version."""
    counts = {"probes": 0, "errors": 0, "old_after_drain": 0}
    started = time.monotonic()
    last_error = ""
    with httpx.Client(timeout=2) as client:
        while (elapsed := time.monotonic() - started) < seconds or counts["probes"] == 0:
            counts["probes"] += 1
            try:
                response = client.get(f"{router.url}/version")
                if response.status_code != 200:
                    counts["errors"] += 1
                    last_error = f"HTTP {response.status_code}"
                elif elapsed > drain and str(response.json().get("version")) != target.model_version:
                    counts["old_after_drain"] += 1
            except httpx.HTTPError as error:
                counts["errors"] += 1
                last_error = f"{type(error).__name__}: {error}"
            time.sleep(PROBE_INTERVAL)
    if counts["errors"] or counts["old_after_drain"]:
        raise CheckFailed(
            f"verification through the router failed: {counts['errors']} error(s), "
            f"{counts['old_after_drain']} answer(s) from the old version after the drain, "
            f"in {counts['probes']} probes" + (f" (last error: {last_error})" if last_error else "")
        )
    return counts


# --- the commands -----------------------------------------------------------------------------


def _context(config: Config, env_name: str) -> tuple[Environment, Docker, Names, Router]:
    env = config.environment(env_name)
    docker = Docker(env.docker_host)
    docker.check()
    names = Names(config.project, env_name)
    return env, docker, names, Router(docker, names, env)


def _set_alias(config: Config, env_name: str, target: Target, colour: str, approver: str | None) -> str | None:
    client = tracking.connect(config)
    previous = registry.alias_map(client, config.model_name).get(env_name)
    registry.set_alias(
        client,
        config.model_name,
        env_name,
        target.model_version,
        colour=colour,
        image=target.image,
        approver=approver or "",
        build=os.environ.get("BUILD_URL", ""),
    )
    return previous


def deploy(
    config: Config,
    env_name: str,
    version: str | None = None,
    image: str | None = None,
    approver: str | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    step: Callable[[str], None] = console.info,
) -> Outcome:
    started = time.monotonic()
    env, docker, names, router = _context(config, env_name)
    target = resolve_target(config, docker, version, image)
    client = tracking.connect(config)  # unreachable MLflow fails now, before anything moves
    registry.resolve(client, config.model_name, version=target.model_version)
    with EnvironmentLock(config, env_name, lock_timeout):
        return _deploy_locked(
            config, env_name, env, docker, names, router, target, approver, step, started, kind="deploy"
        )


def _deploy_locked(config, env_name, env, docker, names, router, target, approver, step, started, kind) -> Outcome:
    outcome = Outcome(
        env=env_name,
        result="failed",
        colour=None,
        previous_colour=None,
        model_name=target.model_name,
        model_version=target.model_version,
        image=target.image,
        url=router.url,
    )

    def note(message: str) -> None:
        outcome.steps.append(message)
        step(message)

    try:
        did = router.ensure(role_image(config, "router"), render(config, env_name, env))
        note(f"router {names.router} on {router.url}: {did}")
        if dashboard := ensure_dashboard(config, docker, names, env_name, env):
            note(dashboard)
        live = router.colour(LIVE)
        idle = other(live) if live else COLOURS[0]
        outcome.previous_colour, outcome.colour = live, idle
        note(f"live colour: {live or 'none'}; starting {target.image} in the idle slot {idle}")
        start_slot(docker, names, env_name, env, idle, target)
        router.point(PREVIEW, idle)
        waited = wait_ready(docker, names, router, idle, env.checks.ready_timeout)
        note(f"{names.slot(idle)} ready in {waited:.1f} s")
        rows = smoke(docker, names, router, idle, target, env.checks.smoke_tolerance)
        note(
            f"smoke test passed on {router.preview_url}: {rows} reference rows, /version names v{target.model_version}"
        )
    except MlciError as error:
        outcome.reason = error.message
        _record(config, outcome, kind, approver, started)
        raise
    docker.run("update", "--cpu-shares", "1024", names.slot(idle))
    router.point(LIVE, idle)
    note(f"switched {names.router} live -> {idle} (no reload)")
    try:
        counts = verify(router, target, env.checks.verify_seconds, env.drain_seconds)
        note(f"verified through {router.url}: {counts['probes']} probes, 0 errors")
        _set_alias(config, env_name, target, idle, approver)
        note(f"registry alias @{env_name} -> {target.model_name} v{target.model_version}")
    except Exception as error:
        router.point(LIVE, live)
        if live:
            router.point(PREVIEW, idle)
        outcome.result = "rolled back"
        outcome.reason = getattr(error, "message", str(error))
        note(f"rolled back: live -> {live or 'none'}; {target.image} stays in {idle} for inspection")
        _record(config, outcome, kind, approver, started)
        if isinstance(error, MlciError):
            raise CheckFailed(f"deploy to {env_name} rolled back: {error.message}", details=error.details) from None
        raise
    outcome.result = "deployed" if kind == "deploy" else "rollback"
    if live:
        router.point(PREVIEW, live)  # the previous colour stays reachable for checks and rollback
    _record(config, outcome, kind, approver, started)
    return outcome


def _record(config: Config, outcome: Outcome, kind: str, approver: str | None, started: float) -> None:
    outcome.seconds = round(time.monotonic() - started, 2)
    history.append(config, outcome.env, outcome.record(kind, approver))


def rollback(
    config: Config,
    env_name: str,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    step: Callable[[str], None] = console.info,
) -> Outcome:
    """Switch back to the other colour when it runs and answers; otherwise redeploy the image of the
    record before the current one."""
    started = time.monotonic()
    env, docker, names, router = _context(config, env_name)
    tracking.connect(config)
    with EnvironmentLock(config, env_name, lock_timeout):
        if router.state() is None or (live := router.colour(LIVE)) is None:
            raise BadInput(
                f"nothing is deployed to {env_name}: there is nothing to roll back",
                hint=f"deploy first: mlci deploy --env {env_name}",
            )
        previous = other(live)
        life = history.since_down(history.records(config, env_name))
        current = history.serving(life)
        earlier = [
            r
            for r in life
            if r.get("result") in history.SERVES
            and r.get("image")
            and (current is None or r.get("image") != current.get("image"))
        ]
        slot = docker.inspect("container", names.slot(previous))
        # The idle slot is a rollback target only if it still holds what served before; after a
        # failed deploy it holds the failed image, kept for inspection.
        if (
            slot is not None
            and slot["State"]["Running"]
            and (not earlier or slot["Config"]["Image"] == earlier[-1]["image"])
        ):
            labels = slot["Config"]["Labels"]
            target = Target(
                slot["Config"]["Image"],
                labels.get("io.mlci.model.name", config.model_name),
                labels.get("io.mlci.model.version", "?"),
                labels,
            )
            step(f"previous colour {previous} runs {target.model_name} v{target.model_version}: checking it")
            router.point(PREVIEW, previous)
            try:
                wait_ready(docker, names, router, previous, min(env.checks.ready_timeout, 10))
            except CheckFailed as error:
                step(f"{names.slot(previous)} is not healthy ({error.message}); redeploying the previous image")
            else:
                return _switch_back(config, env_name, env, router, target, live, previous, step, started)
        if not earlier:
            raise BadInput(
                f"{env_name} has no previous colour running and no earlier deploy on record",
                hint="deploy a known-good version instead: mlci deploy --env ENV --version N",
            )
        target = _target(docker, earlier[-1]["image"], config)
        step(f"redeploying {target.image} (v{target.model_version}), the deploy before the current one")
        return _deploy_locked(
            config, env_name, env, docker, names, router, target, None, step, started, kind="rollback"
        )


def _switch_back(
    config: Config,
    env_name: str,
    env: Environment,
    router: Router,
    target: Target,
    live: str,
    previous: str,
    step: Callable[[str], None],
    started: float,
) -> Outcome:
    """The rollback that is only a switch: the previous colour still runs and answers."""
    outcome = Outcome(
        env=env_name,
        result="failed",
        colour=previous,
        previous_colour=live,
        model_name=target.model_name,
        model_version=target.model_version,
        image=target.image,
        url=router.url,
    )
    router.point(LIVE, previous)
    step(f"switched {router.names.router} live -> {previous} (no reload)")
    try:
        verify(router, target, env.checks.verify_seconds, env.drain_seconds)
        _set_alias(config, env_name, target, previous, None)
    except Exception as error:  # noqa: BLE001 - switch live traffic back first, then report
        router.point(LIVE, live)
        router.point(PREVIEW, previous)
        outcome.result, outcome.reason = "rolled back", getattr(error, "message", str(error))
        step(f"the previous colour failed verification: live is back on {live}")
        _record(config, outcome, "rollback", None, started)
        raise CheckFailed(f"rollback of {env_name} failed; live stays on {live}: {outcome.reason}") from None
    step(f"verified; registry alias @{env_name} -> v{target.model_version}")
    router.point(PREVIEW, live)
    outcome.result = "rollback"
    _record(config, outcome, "rollback", None, started)
    return outcome


def down(
    config: Config,
    env_name: str,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    step: Callable[[str], None] = console.info,
) -> list[str]:
    """Remove the environment's containers, network and socket volume, and its registry alias."""
    started = time.monotonic()
    _env, docker, names, router = _context(config, env_name)
    with EnvironmentLock(config, env_name, lock_timeout):
        removed = []
        for container in (names.dashboard, names.router, *(names.slot(c) for c in COLOURS)):
            if (
                docker.run("rm", "-f", container, check=False).returncode == 0
                and docker.inspect("container", container) is None
            ):
                removed.append(container)
        for kind, name in (("network", names.network), ("volume", names.volume)):
            if docker.inspect(kind, name) is not None:
                docker.run(kind, "rm", name)
                removed.append(f"{kind} {name}")
        try:
            client = tracking.connect(config)
            if env_name in registry.alias_map(client, config.model_name):
                registry.restore_alias(client, config.model_name, env_name, None)
                removed.append(f"alias @{env_name}")
        except MlciError as error:
            step(f"warning: could not remove alias @{env_name}: {error.message}")
        for item in removed:
            step(f"removed {item}")
        outcome = Outcome(
            env=env_name,
            result="down",
            colour=None,
            previous_colour=None,
            model_name=None,
            model_version=None,
            image=None,
            url=router.url,
            steps=[f"removed {r}" for r in removed],
        )
        _record(config, outcome, "down", None, started)
        return removed


def environment_status(config: Config, env_name: str) -> EnvironmentStatus:
    """Live colour, each slot's image, version and health, the router, the last deploys."""
    _env, docker, names, router = _context(config, env_name)
    router_state = router.state()
    live = router.colour(LIVE) if router_state and router_state["State"]["Running"] else None
    slots: dict[str, SlotStatus | None] = {}
    for colour in COLOURS:
        state = docker.inspect("container", names.slot(colour))
        if state is None:
            slots[colour] = None
            continue
        labels = state["Config"]["Labels"] or {}
        slots[colour] = SlotStatus(
            container=names.slot(colour),
            image=state["Config"]["Image"],
            model_version=labels.get("io.mlci.model.version"),
            deployed_at=labels.get("io.mlci.deployed_at"),
            state=state["State"]["Status"],
            health=(state["State"].get("Health") or {}).get("Status"),
            live=colour == live,
        )
    records = history.records(config, env_name)
    current = history.serving(records)
    return EnvironmentStatus(
        env=env_name,
        url=router.url,
        preview_url=router.preview_url,
        router=router_state["State"]["Status"] if router_state else "missing",
        live=live,
        slots=slots,
        current=DeployRecord.from_record(current) if current else None,
        last_deploys=[DeployRecord.from_record(r) for r in records[-5:]],
    )
