"""Shadow traffic, the answers: each API's ring (api/shadow.py) read page by page over its router, with
the token of the slot that router serves as live, every failed read said in the user's terms."""

from __future__ import annotations

from typing import Any

import httpx

from mlci.core.config import Config
from mlci.core.errors import BadInput, Unreachable
from mlci.deploy.router import Names, Router
from mlci.ship.docker import Docker

PAGE = 2000
MAX_PAGES = 50  # 100 000 answers per side at most: the rings hold far fewer
TOKEN_VARIABLE = "MLCI_SHADOW_TOKEN"  # set on each API slot by ml/deploy/slots.py; /shadow/answers wants it


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
    """One ring entry as compare() reads it: id, status, latency; labels and probabilities side by side, or
    a regression's values."""
    if not isinstance(answer, dict) or not isinstance(answer.get("status"), int):
        return False
    if not isinstance(answer.get("ms"), int | float) or not isinstance(answer.get("id") or "", str):
        return False
    values = answer.get("values")
    if values is not None:
        return isinstance(values, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    labels, probabilities = answer.get("labels") or [], answer.get("probabilities") or []
    return (
        isinstance(labels, list)
        and isinstance(probabilities, list)
        and len(probabilities) >= len(labels)
        and all(isinstance(p, dict) and all(isinstance(v, int | float) for v in p.values()) for p in probabilities)
    )
