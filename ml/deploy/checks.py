"""The checks a new slot passes before and after it takes traffic: ready (through the preview
listener), smoke (the bundle's reference rows), verify (error-free probes through the router)."""

from __future__ import annotations

import json
import time

import httpx

from mlci.contract import answers
from mlci.core import polling
from mlci.core.errors import CheckFailed
from mlci.deploy.router import Names, Router
from mlci.deploy.slots import Target
from mlci.ship import containers
from mlci.ship.docker import Docker

PROBE_INTERVAL = 0.05


def logs(docker: Docker, container: str) -> list[str]:
    return containers.logs(docker, container, tail=8)


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
                    details=logs(docker, names.slot(colour)),
                )
            return None

        seconds = polling.poll(probe, timeout=timeout)
    if seconds is not None:
        return seconds
    raise CheckFailed(
        f"the new container {names.slot(colour)} did not become ready within {timeout:.0f} s",
        details=logs(docker, names.slot(colour)),
        hint="see its log above; raise checks.ready_timeout if it is only slow",
    )


def smoke(docker: Docker, names: Names, router: Router, colour: str, target: Target, tolerance: float) -> int:
    """The bundle's reference rows through the preview listener must give their expected outputs; a
    slot that stops answering (or answers garbage) fails the smoke test, it is not an MLflow outage."""
    try:
        return _smoke(docker, names, router, colour, target, tolerance)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
        raise CheckFailed(
            f"smoke test: the new slot {names.slot(colour)} did not answer through {router.preview_url} "
            f"({type(error).__name__}: {str(error)[:200]})",
            details=logs(docker, names.slot(colour)),
            hint="see the slot's log; live traffic is untouched",
        ) from None


def _smoke(docker: Docker, names: Names, router: Router, colour: str, target: Target, tolerance: float) -> int:
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
        shown = containers.execute(docker, names.slot(colour), ["cat", "/app/bundle/reference.json"])
        reference = json.loads(shown.stdout)
        answer = client.post(f"{router.preview_url}/predict", json={"records": reference["records"]})
    if answer.status_code != 200:
        raise CheckFailed(f"smoke test: /predict answered {answer.status_code}", details=[answer.text[:300]])
    problems = []
    task = str(version.get("task") or "classification")  # the bundle's own metadata, as /version serves it
    for index, (got, expected) in enumerate(zip(answer.json()["predictions"], reference["expected"])):
        if problem := answers.difference(task, got, expected, tolerance):
            problems.append(f"reference row {index}: {problem}")
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
