"""Shadow traffic: production's router copies a share of its live /predict requests to the version
waiting in staging; `mlci shadow report` compares, request by request, what each one answered.

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

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ml import console, reports
from ml.config import Config
from ml.docker import Docker
from ml.errors import BadInput, MlciError, Unreachable
from ml.router import ROUTER_CONFIG, SHADOW_INTAKE_PORT, SOCKET_DIR, Names, Router

SWITCH_FILE = f"{SOCKET_DIR}/shadow.on"
PAGE = 2000
MAX_PAGES = 50  # 100 000 answers per side at most: the rings hold far fewer
REPORT_NAME = "shadow-{env}"
TOKEN_VARIABLE = "MLCI_SHADOW_TOKEN"  # set on each API slot by ml/deploy/slots.py; /shadow/answers wants it
P99_MIN_ANSWERS = 100  # below this, a p99 is the slowest answer or two: noise, not a percentile


# ---- switching ---------------------------------------------------------------------------------


def sources(config: Config, target: str) -> list[str]:
    """The environments whose router mirrors to `target` (normally production → staging)."""
    return [name for name, env in config.environments.items() if env.shadow is not None and env.shadow.env == target]


def _running(docker: Docker, container: str) -> dict | None:
    state = docker.inspect("container", container)
    return state if state is not None and state["State"]["Running"] else None


def turn_on(config: Config, source: str, step=console.info) -> bool:
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
        docker.run("exec", mine.router, "rm", "-f", SWITCH_FILE)
        step(
            f"shadow traffic {source} -> {shadow.env}: off ({why}; copies would be lost: "
            f"mlci deploy --env {env_name} re-renders it)"
        )
        return False
    if mine.network not in (target["NetworkSettings"]["Networks"] or {}):
        docker.run("network", "connect", mine.network, theirs.router)
    docker.run("exec", mine.router, "touch", SWITCH_FILE)
    step(f"shadow traffic {source} -> {shadow.env}: on, {shadow.share:.2%} of /predict mirrored")
    return True


def _router_config(docker: Docker, container: str) -> str:
    return docker.run("exec", container, "cat", ROUTER_CONFIG, check=False).stdout


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


def turn_off(config: Config, source: str, step=console.info) -> None:
    """Stop mirroring first (the switch file), then detach the shadow's router from `source`'s network."""
    shadow = config.environments[source].shadow
    assert shadow is not None
    docker = Docker(config.environments[source].docker_host)
    mine, theirs = Names(config.project, source), Names(config.project, shadow.env)
    if _running(docker, mine.router) is not None:
        docker.run("exec", mine.router, "rm", "-f", SWITCH_FILE)
    target = docker.inspect("container", theirs.router)
    if target is not None and mine.network in (target["NetworkSettings"]["Networks"] or {}):
        docker.run("network", "disconnect", mine.network, theirs.router, check=False)
    step(f"shadow traffic {source} -> {shadow.env}: off")


def _served(config: Config, env_name: str) -> str | None:
    env = config.environments[env_name]
    try:
        response = httpx.get(f"http://{env.address}:{env.port}/version", timeout=3)
        return str(response.json()["version"]) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def refresh(config: Config, env_name: str, step=console.info) -> None:
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


def stop(config: Config, env_name: str, step=console.info) -> None:
    """Before `env_name` goes down: every mirror to or from it off (and its network free of the shadow)."""
    shadow = config.environments[env_name].shadow
    for source in sources(config, env_name) + ([env_name] if shadow is not None else []):
        turn_off(config, source, step)


def for_record(
    config: Config, env_name: str, version: str | None, step=console.info, about: str = "deployed"
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


# ---- the comparison ----------------------------------------------------------------------------


@dataclass
class Comparison:
    """Per request id: the candidate's answer next to production's. Rows of a batch count one by one;
    a request id counts once (the first answer each ring holds for it: a replayed id adds nothing)."""

    mirrored: int = 0  # requests the candidate answered as mirrored copies
    compared: int = 0  # mirrored requests both sides answered 200, joined by request id
    unmatched: int = 0  # mirrored requests production's ring no longer (or never) held
    rows: int = 0  # prediction rows compared
    agreement: float | None = None  # share of rows with the same label
    mean_probability_diff: float | None = None  # mean over rows of the largest per-class difference
    max_probability_diff: float | None = None
    candidate_p50_ms: float | None = None
    candidate_p99_ms: float | None = None  # over all mirrored answers; the summary shows it from 100 on
    candidate_errors: int = 0  # a 5xx, or a refusal (non-200) of a request production answered 200
    production_errors: int = 0  # production's own 5xx on the mirrored requests: not the candidate's fault
    production_p50_ms: float | None = None


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: a p99 is a latency someone actually had)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)], 3)


def _row_diff(a: dict[str, float], b: dict[str, float]) -> float:
    return max(abs(a.get(c, 0.0) - b.get(c, 0.0)) for c in set(a) | set(b)) if a or b else 0.0


def _once(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first answer per request id (pages come oldest first); an answer without an id is its own."""
    seen: set[str] = set()
    kept = []
    for answer in answers:
        request_id = answer.get("id")
        if request_id:
            if request_id in seen:
                continue
            seen.add(request_id)
        kept.append(answer)
    return kept


def _candidate_error(status: int, production_status: int | None) -> bool:
    """A 5xx is always the candidate's error; another refusal only where production answered 200 (both
    refusing a malformed request is agreement, and production failing is production's error)."""
    return status >= 500 or (status != 200 and production_status == 200)


def compare(production: list[dict[str, Any]], candidate: list[dict[str, Any]]) -> Comparison:
    """Join the two rings' answers on request id; only the candidate's mirrored answers count."""
    by_id = {a["id"]: a for a in _once(production) if a.get("id")}
    mirrored = _once([a for a in candidate if a.get("shadow")])
    result = Comparison(mirrored=len(mirrored))
    agree, diffs, latencies, production_ms = 0, [], [], []
    for answer in mirrored:
        latencies.append(float(answer["ms"]))
        theirs = by_id.get(answer["id"]) if answer.get("id") else None
        result.candidate_errors += _candidate_error(answer["status"], None if theirs is None else theirs["status"])
        if theirs is None:
            result.unmatched += 1
            continue
        production_ms.append(float(theirs["ms"]))
        result.production_errors += theirs["status"] >= 500
        if answer["status"] != 200 or theirs["status"] != 200:
            continue
        ours, their_labels = answer.get("labels") or [], theirs.get("labels") or []
        if not ours or len(ours) != len(their_labels):
            continue  # a body too big to keep on one side: nothing to compare row by row
        result.compared += 1
        for label, p, their_label, q in zip(ours, answer["probabilities"], their_labels, theirs["probabilities"]):
            agree += label == their_label
            diffs.append(_row_diff(p, q))
    result.rows = len(diffs)
    if diffs:
        result.agreement = round(agree / len(diffs), 6)
        result.mean_probability_diff = round(sum(diffs) / len(diffs), 6)
        result.max_probability_diff = round(max(diffs), 6)
    result.candidate_p50_ms, result.candidate_p99_ms = percentile(latencies, 50), percentile(latencies, 99)
    result.production_p50_ms = percentile(production_ms, 50)
    return result


# ---- the report --------------------------------------------------------------------------------


@dataclass
class ShadowReport:
    env: str  # where the candidate runs (the shadow)
    source: str  # whose traffic is mirrored
    share: float
    on: bool  # the switch file is present on the source's router
    candidate_version: str | None
    production_version: str | None
    comparison: Comparison = field(default_factory=Comparison)
    summary: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(report: ShadowReport) -> str:
    """One line for the approval message and build logs: whether the mirror is on, how many requests
    the figures rest on, and a p99 only where there are enough answers for one."""
    c = report.comparison
    head = f"shadow {report.source} -> {report.env} (v{report.candidate_version} vs v{report.production_version})"
    if not report.on:
        head = f"mirror OFF: {head}"
    errors = f"{c.candidate_errors} candidate errors, {c.production_errors} production errors"
    if not c.compared:
        return f"{head}: no compared request yet ({c.mirrored} mirrored, {c.unmatched} unmatched, {errors})"
    return (
        f"{head}: {c.compared} requests compared of {c.mirrored} mirrored, {c.unmatched} unmatched, "
        f"agreement {c.agreement:.2%}, "
        f"probability diff mean {c.mean_probability_diff:.4f} max {c.max_probability_diff:.4f}, "
        f"candidate p50 {c.candidate_p50_ms} ms {p99_text(c)}, {errors}"
    )


def p99_text(c: Comparison) -> str:
    """The candidate's p99, or why there is none: it rests on every mirrored answer, and needs 100."""
    if c.candidate_p99_ms is None or c.mirrored < P99_MIN_ANSWERS:
        return f"p99 n/a (<{P99_MIN_ANSWERS} answers)"
    return f"p99 {c.candidate_p99_ms} ms"


def token_in(variables: list[str] | None) -> str | None:
    """MLCI_SHADOW_TOKEN's value in a container's `Config.Env` ("NAME=value" strings), None when absent."""
    for variable in variables or []:
        name, _, value = variable.partition("=")
        if name == TOKEN_VARIABLE:
            return value or None
    return None


def slot_token(config: Config, env_name: str) -> str | None:
    """The shadow token of the slot `env_name`'s router serves as live; None when no slot is live or the
    slot has none (then its API, if it answers at all, does not ask for one)."""
    env = config.environments[env_name]
    docker, names = Docker(env.docker_host), Names(config.project, env_name)
    colour = Router(docker, names, env).colour()
    if colour is None:
        return None
    state = docker.inspect("container", names.slot(colour))
    return None if state is None else token_in((state.get("Config") or {}).get("Env"))


def fetch(url: str, what: str, token: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every answer an API's ring holds, page by page: (model, answers). `token`: the live slot's
    MLCI_SHADOW_TOKEN, sent as a bearer token (an API started without one answers without it)."""
    answers: list[dict[str, Any]] = []
    since = 0
    model: dict[str, Any] = {}
    endpoint = f"{url}/shadow/answers"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(timeout=10) as client:
        for _ in range(MAX_PAGES):
            try:
                response = client.get(endpoint, params={"since": since, "limit": PAGE}, headers=headers)
            except httpx.HTTPError as error:
                raise Unreachable(
                    f"{what} did not answer on {endpoint}: {error}",
                    hint=f"is {what} deployed and its router running? (mlci status)",
                ) from None
            _check_status(response.status_code, endpoint, what, had_token=bool(token))
            page = _page(response, endpoint, what)
            model = page["model"] if isinstance(page.get("model"), dict) else {}
            answers.extend(page["answers"])
            if not page["more"]:
                break
            since = page["next"]
    return model, answers


def _check_status(status: int, endpoint: str, what: str, had_token: bool = True) -> None:
    """What a status other than 200 means for the report, said in the user's terms."""
    if status == 200:
        return
    if status == 401 and not had_token:
        raise BadInput(
            f"{what} wants a shadow token (401 on {endpoint}) and none could be read from its live slot",
            hint=f"the report reads MLCI_SHADOW_TOKEN with docker inspect on {what}'s live slot: check that this "
            f"user reaches {what}'s Docker engine (mlci status --env {what}) and run it again",
        )
    if status == 401:
        raise BadInput(
            f"{what} refused the shadow token (401 on {endpoint}): its live slot switched while the report was "
            "read: run it again",
            hint=f"if it stays 401, {what}'s live slot was not started by this mlci: redeploy {what}",
        )
    if status == 404:
        raise BadInput(
            f"{what} answered 404 on {endpoint}",
            hint="its API predates shadow traffic: deploy a version built with this mlci",
        )
    if status in (502, 503, 504):
        raise Unreachable(
            f"{what} is not serving (status {status}): check mlci status",
            details=[f"GET {endpoint} answered {status}: its router is up, no live slot answered it"],
            hint=f"mlci status --env {what}; deploy {what} if nothing is live there",
        )
    raise BadInput(
        f"{what} answered {status} on {endpoint}",
        hint=f"run the report again; if it persists, read the logs of {what}'s live slot (docker logs)",
    )


def _page(response: httpx.Response, endpoint: str, what: str) -> dict[str, Any]:
    """The page a 200 carries, its shape checked before compare() reads it: a proxy's error page or
    another service on that port is a clear error, not a traceback."""
    try:
        page = response.json()
    except ValueError:
        page = None
    if not (
        isinstance(page, dict)
        and isinstance(page.get("answers"), list)
        and isinstance(page.get("more"), bool)
        and isinstance(page.get("next"), int)
        and all(_is_answer(a) for a in page["answers"])
    ):
        raise BadInput(
            f"{what} answered {endpoint} with something other than a page of shadow answers",
            details=[f"expected JSON with answers, more and next; got: {response.text[:120]!r}"],
            hint=f"is {what}'s port in mlci.yaml its router's, and its API built with this mlci?",
        )
    return page


def _is_answer(answer: Any) -> bool:
    """One ring entry as compare() reads it: id, status, latency; labels and probabilities side by side."""
    if not isinstance(answer, dict) or not isinstance(answer.get("status"), int):
        return False
    if not isinstance(answer.get("ms"), int | float) or not isinstance(answer.get("id") or "", str):
        return False
    labels, probabilities = answer.get("labels") or [], answer.get("probabilities") or []
    return (
        isinstance(labels, list)
        and isinstance(probabilities, list)
        and len(probabilities) >= len(labels)
        and all(isinstance(p, dict) and all(isinstance(v, int | float) for v in p.values()) for p in probabilities)
    )


def _is_on(config: Config, source: str) -> bool:
    docker = Docker(config.environments[source].docker_host)
    done = docker.run("exec", Names(config.project, source).router, "test", "-f", SWITCH_FILE, check=False)
    return done.returncode == 0


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
        comparison=compare(production, candidate),
    )
    result.summary = summarize(result)
    return result


def _version(model: dict[str, Any]) -> str | None:
    version = model.get("version")
    return None if version is None else str(version)


def write(config: Config, result: ShadowReport) -> Path:
    """reports/shadow-<env>.json: the approval step reads its `summary` line."""
    return reports.write(config, REPORT_NAME.format(env=result.env), result.to_dict())
