"""The environment lock, held on the environment's Docker host so every checkout and agent sees it.

A lock is a container named `<project>-<env>-lock`, run by mlci as `docker run -i --rm … sh -c
'cat >/dev/null'` does (mlci.ship.containers.hold): its stdin attached to a socket mlci keeps open
while it holds the lock. Docker refuses a second container of the same name atomically, so a second
deploy waits (bounded by --lock-timeout) and then fails naming the holder (the container's
`io.mlci.lock.holder` label). If the holder dies (crash, SIGKILL, lost agent) its socket closes
(over SSH: the connection, and with it `docker system dial-stdio` on the host), the engine closes
the container's stdin, `cat` ends, and auto-remove (`--rm`) removes the container: no lock outlives
its process. The lock container also mounts the environment's state volume, so the history is
appended through it (ml/deploy/state.py) only by the holder.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable

from mlci.core import env
from mlci.core.errors import CheckFailed, MlciError, Unreachable
from mlci.deploy.decisions import Holder, holder_label, parse_holder
from mlci.deploy.router import Names
from mlci.ship import containers
from mlci.ship.containers import ContainerSpec, Held
from mlci.ship.docker import Docker, DockerError
from mlci.track import registry

log = logging.getLogger(__name__)

LABEL = "io.mlci.lock.holder"
POLL = 0.25  # seconds between two looks at a held lock
START_TIMEOUT = 60.0  # seconds a lock container may take to start on a slow or remote host
CREATED_GRACE = 3.0  # a lock container seen "created" but not running this long was orphaned at start


def _container_spec(names: Names, image: str, holder: Holder) -> ContainerSpec:
    """The lock container: nothing but `cat` on a pipe, with no network, no capabilities, a read-only
    root; root inside only so it can write the root-owned state volume. Never pulled: created from
    the image on the host, or refused."""
    return ContainerSpec(
        image,
        name=names.lock,
        labels={LABEL: holder_label(holder), **names.labels("lock")},
        network="none",
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        user="0:0",
        volumes={names.state: "/state"},
        entrypoint=["sh"],
        command=["-c", "cat >/dev/null"],
        auto_remove=True,
    )


class EnvironmentLock:
    """One deploy (or rollback, or down) per environment at a time, across every machine that talks
    to its Docker engine; a second one waits, then fails naming the holder."""

    def __init__(
        self,
        docker: Docker,
        names: Names,
        image: str,
        timeout: float,
        step: Callable[[str], None] = log.info,
    ):
        self.docker, self.names, self.image, self.timeout, self.step = docker, names, image, timeout, step
        self.holder = Holder(
            by=registry.actor(),
            build=env.ci().build_url,
            host=socket.gethostname(),
            pid=os.getpid(),
            since=registry.now(),
            token=uuid.uuid4().hex,
        )
        self.held: Held | None = None  # mlci's end of the lock container's stdin, while held
        self.container: str | None = None  # the lock container's id while held

    # --- acquiring -----------------------------------------------------------------------------

    def __enter__(self) -> EnvironmentLock:
        deadline = time.monotonic() + self.timeout
        told: str | None = None
        not_running_since: dict[str, float] = {}
        owner = {"io.mlci.project": self.names.project, "io.mlci.env": self.names.env}
        containers.create_volume(self.docker, self.names.state, owner)
        quick_retries = 3  # a lock released between our attempt and our look: try again at once, boundedly
        while not self._try():
            state = self.docker.inspect("container", self.names.lock)
            if state is None and quick_retries:
                quick_retries -= 1
                continue
            if state is not None and self._removed_stale(state, not_running_since):
                continue
            labels = (state or {}).get("Config", {}).get("Labels") or {}
            who = parse_holder(labels.get(LABEL)).describe()
            if time.monotonic() >= deadline:
                raise CheckFailed(
                    f"environment {self.names.env} is locked by {who}; nothing was done",
                    details=[f"lock container {self.names.lock} on {self.docker.where}"],
                    hint="wait for that deploy to finish (or raise --lock-timeout), then run again",
                )
            if told != who:
                self.step(f"waiting up to {self.timeout:.0f} s for {self.names.env}: locked by {who}")
                told = who
            time.sleep(POLL)
        return self

    def _removed_stale(self, state: dict, seen: dict[str, float]) -> bool:
        """Remove a lock container that does not run: it holds nothing (engine restarted, holder
        killed between create and start). One just created may be about to start: it gets a grace
        period. Removed without force: the engine refuses a running container, so a lock that
        started meanwhile is never removed."""
        if state["State"]["Running"]:
            return False
        if state["State"]["Status"] == "created":
            first = seen.setdefault(state["Id"], time.monotonic())
            if time.monotonic() - first < CREATED_GRACE:
                return False
        return containers.remove(self.docker, state["Id"], force=False)

    def _try(self) -> bool:
        """Start the lock container; True once it runs with our token, False if the name is taken."""
        try:
            held = containers.hold(self.docker, _container_spec(self.names, self.image, self.holder))
        except DockerError as error:  # no such image, a volume that cannot be mounted, …
            raise DockerError(
                f"could not start the lock container {self.names.lock} on {self.docker.where}",
                details=[error.message, *error.details][-3:],
                hint="check the engine (docker info) and that the router image is on it",
            ) from None
        if held is None:
            return False
        started = time.monotonic()
        while time.monotonic() - started < START_TIMEOUT:
            state = self.docker.inspect("container", held.id)
            labels = (state or {}).get("Config", {}).get("Labels") or {}
            if state and state["State"]["Running"] and parse_holder(labels.get(LABEL)).token == self.holder.token:
                self.held, self.container = held, state["Id"]
                return True
            if state is None or state["State"]["Status"] in ("exited", "dead"):
                held.release()
                raise DockerError(
                    f"could not start the lock container {self.names.lock} on {self.docker.where}: it exited "
                    f"(code {(state or {}).get('State', {}).get('ExitCode', '?')})",
                    hint="check the engine (docker info) and that the router image has sh and cat",
                )
            time.sleep(0.05)
        held.release()
        containers.remove(self.docker, held.id)
        raise Unreachable(f"the lock container {self.names.lock} did not start within {START_TIMEOUT:.0f} s")

    # --- while held ----------------------------------------------------------------------------

    def ensure_held(self) -> None:
        """Raise Unreachable if the lock was lost (its container stopped or was removed: an ssh drop,
        an engine restart, a `docker rm -f`): another deploy may hold the environment now, so nothing
        may be switched on the strength of it."""
        state = self.docker.inspect("container", self.container) if self.container else None
        if not (self.held is not None and state and state["State"]["Running"]):
            raise Unreachable(
                f"lost the lock of {self.names.env} on {self.docker.where} (its container {self.names.lock} "
                "stopped); live traffic was not switched",
                hint="check the Docker engine, then run the deploy again",
            )

    def exec(self, script: str, input: str | None = None) -> str:
        """Run a shell script in the lock container (it sees the state volume at /state)."""
        if self.container is None:
            raise RuntimeError("the environment lock is not held")
        return containers.execute(self.docker, self.container, ["sh", "-c", script], input=input).stdout

    # --- releasing -----------------------------------------------------------------------------

    def __exit__(self, *exc: object) -> None:
        held, container = self.held, self.container
        self.held = self.container = None
        if held is None:
            return
        held.release()  # cat sees end of input: the container exits and auto-remove removes it
        try:
            if container and not containers.gone(self.docker, container, timeout=10):
                containers.remove(self.docker, container)  # by id: never someone else's lock
        except MlciError as error:  # the engine went away meanwhile: its own error is the one to show
            log.debug(f"lock container {self.names.lock} not released: {error.message}")
