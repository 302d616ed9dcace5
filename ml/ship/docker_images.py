"""Images on an engine (mlci.ship.docker): build, push and pull with their progress streamed line by
line as it comes, tag, and find by label.

The engine streams JSON chunks: a build's `stream` text (part of a line, or several), a push's or
pull's `status` per layer with `progressDetail`, `aux` facts (the built image's ID, the pushed
digest) and, for a failure, `error`. `lines` turns them into output lines (the decision, testable
without an engine); builds use the classic builder (the engine's /build, no buildx), as
`DOCKER_BUILDKIT=0 docker build` did.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docker.utils import parse_repository_tag

from mlci.core.errors import Unreachable
from mlci.ship.docker import Docker, DockerError

log = logging.getLogger(__name__)

BUILD_SILENCE = 600.0  # seconds a build step may print nothing (a long RUN) before the build counts as hung
BUILD_TIMEOUT = 1800.0  # a whole build
TRANSFER_SILENCE = 300.0  # the same for a push or a pull
TRANSFER_TIMEOUT = 1800.0
DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


@dataclass
class Built:
    """A build's output lines and the image's ID."""

    lines: list[str]
    id: str | None


def lines(chunks: Iterable[dict[str, Any]], what: str, aux: dict[str, Any] | None = None) -> Iterator[str]:
    """The output lines of an engine's JSON stream: `stream` text cut at newlines, one line per `status`
    (layer progress ticks skipped), `aux` facts collected into `aux`. An `error` chunk raises
    DockerError (`docker <what> failed: …`) with the lines before it as details."""
    pending = ""
    recent: deque[str] = deque(maxlen=8)
    for chunk in chunks:
        if chunk.get("error") or chunk.get("errorDetail"):
            said = str(chunk.get("error") or (chunk.get("errorDetail") or {}).get("message") or "no message")
            said_lines = [line for line in said.strip().splitlines() if line] or ["no message"]
            raise DockerError(f"docker {what} failed: {said_lines[-1]}", details=[*recent, *said_lines[:-1]][-8:])
        if aux is not None and isinstance(chunk.get("aux"), dict):
            aux.update(chunk["aux"])
        if "stream" in chunk:
            pending += str(chunk["stream"])
            *complete, pending = pending.split("\n")
            found = [line.rstrip("\r") for line in complete]
        elif "status" in chunk and not (chunk.get("progressDetail") or {}).get("current"):
            found = [f"{chunk['id']}: {chunk['status']}" if chunk.get("id") else str(chunk["status"])]
        else:
            found = []
        for line in found:
            recent.append(line)
            yield line
    if pending.strip():
        yield pending.rstrip("\r")


def _bounded(chunks: Iterable[dict[str, Any]], docker: Docker, what: str, seconds: float) -> Iterator[dict[str, Any]]:
    """The chunks, as long as the whole stream takes less than `seconds` (each read is bounded too)."""
    deadline = time.monotonic() + seconds
    for chunk in chunks:
        if time.monotonic() > deadline:
            raise Unreachable(
                f"docker {what} did not finish within {seconds:.0f} s on {docker.where}",
                hint="is the engine (or the registry) overloaded? run the command again",
            )
        yield chunk


def build(
    docker: Docker, context: Path, dockerfile: Path, tag: str, buildargs: dict[str, str], on_line: Callable[[str], None]
) -> Built:
    """`docker build -f DOCKERFILE -t TAG --build-arg … CONTEXT` (classic builder, intermediate
    containers removed, no pull of the base): each output line goes to `on_line` as it comes."""
    output: list[str] = []
    aux: dict[str, Any] = {}
    with docker.api("build", BUILD_SILENCE) as api:
        chunks = api.build(
            path=str(context),
            dockerfile=str(dockerfile),
            tag=tag,
            buildargs=buildargs,
            rm=True,
            pull=False,
            decode=True,
            timeout=BUILD_SILENCE,
        )
        for line in lines(_bounded(chunks, docker, "build", BUILD_TIMEOUT), f"build of {tag}", aux):
            output.append(line)
            on_line(line)
    return Built(output, aux.get("ID"))


def push(docker: Docker, ref: str, on_line: Callable[[str], None]) -> tuple[str | None, list[str]]:
    """`docker push REF` with the engine's credentials for it (`docker.auth`, else its config):
    the pushed digest (sha256:…, None if the engine named none) and the output lines."""
    output: list[str] = []
    aux: dict[str, Any] = {}
    with docker.api("push", TRANSFER_SILENCE) as api:
        chunks = api.push(ref, stream=True, decode=True, auth_config=docker.auth)
        for line in lines(_bounded(chunks, docker, "push", TRANSFER_TIMEOUT), f"push {ref}", aux):
            output.append(line)
            on_line(line)
    if isinstance(aux.get("Digest"), str):
        return aux["Digest"], output
    found = next((m[1] for m in map(DIGEST.search, reversed(output)) if m), None)
    return found, output


def pull(docker: Docker, ref: str, on_line: Callable[[str], None] = log.debug) -> None:
    """`docker pull REF` (a tag or a digest reference) with `docker.auth`; each status line to `on_line`."""
    with docker.api("pull", TRANSFER_SILENCE) as api:
        chunks = api.pull(ref, stream=True, decode=True, auth_config=docker.auth)
        for line in lines(_bounded(chunks, docker, "pull", TRANSFER_TIMEOUT), f"pull {ref}"):
            on_line(line)


def tag(docker: Docker, image: str, ref: str) -> None:
    """`docker tag IMAGE REF`."""
    repository, name_tag = parse_repository_tag(ref)
    with docker.api("tag") as api:
        api.tag(image, repository, name_tag or "latest")


def find(docker: Docker, labels: dict[str, str]) -> list[str]:
    """`repo:tag` of every image carrying all `labels`, newest image first."""
    wanted = [f"{key}={value}" for key, value in labels.items()]
    with docker.api("images") as api:
        found = api.images(filters={"label": wanted})
    found.sort(key=lambda image: image.get("Created") or 0, reverse=True)
    return [ref for image in found for ref in image.get("RepoTags") or [] if ref != "<none>:<none>"]
