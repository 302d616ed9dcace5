"""The environment lock, held on the environment's Docker host so every checkout and agent sees it.

A lock is a container named `<project>-<env>-lock`, run by mlci as `docker run -i --rm … sh -c
'cat >/dev/null'` with its stdin kept open while mlci holds the lock. Docker refuses a second
container of the same name atomically, so a second deploy waits (bounded by --lock-timeout) and
then fails naming the holder (the container's `io.mlci.lock.holder` label). If the holder dies
(crash, SIGKILL, lost agent) its end of the pipe closes, `cat` ends, and `--rm` removes the
container: no lock outlives its process. The lock container also mounts the environment's state
volume, so the history is appended through it (ml/deploy/state.py) only by the holder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable

from ml import console, registry
from ml.deploy.decisions import Holder, holder_label, parse_holder
from ml.docker import Docker, DockerError
from ml.errors import CheckFailed, Unreachable
from ml.router import Names

LABEL = "io.mlci.lock.holder"
POLL = 0.25  # seconds between two looks at a held lock
START_TIMEOUT = 60.0  # seconds a lock container may take to start on a slow or remote host
CREATED_GRACE = 3.0  # a lock container seen "created" but not running this long was orphaned at start


def _container_args(names: Names, image: str, holder: Holder) -> list[str]:
    """The lock container: nothing but `cat` on a pipe, with no network, no capabilities, a read-only
    root; root inside only so it can write the root-owned state volume."""
    return [
        "run",
        "-i",
        "--rm",
        "--pull",
        "never",
        "--name",
        names.lock,
        "--label",
        f"{LABEL}={holder_label(holder)}",
        *names.labels("lock"),
        "--network",
        "none",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--user",
        "0:0",
        "-v",
        f"{names.state}:/state",
        "--entrypoint",
        "sh",
        image,
        "-c",
        "cat >/dev/null",
    ]


class EnvironmentLock:
    """One deploy (or rollback, or down) per environment at a time, across every machine that talks
    to its Docker engine; a second one waits, then fails naming the holder."""

    def __init__(
        self,
        docker: Docker,
        names: Names,
        image: str,
        timeout: float,
        step: Callable[[str], None] = console.info,
    ):
        self.docker, self.names, self.image, self.timeout, self.step = docker, names, image, timeout, step
        self.holder = Holder(
            by=registry.actor(),
            build=os.environ.get("BUILD_URL") or None,
            host=socket.gethostname(),
            pid=os.getpid(),
            since=registry.now(),
            token=uuid.uuid4().hex,
        )
        self.process: subprocess.Popen[str] | None = None
        self.container: str | None = None  # the lock container's id while held

    # --- acquiring -----------------------------------------------------------------------------

    def __enter__(self) -> EnvironmentLock:
        deadline = time.monotonic() + self.timeout
        told: str | None = None
        not_running_since: dict[str, float] = {}
        self.docker.run("volume", "create", *self.names.labels("state")[:4], self.names.state)
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
        period. `docker rm` without -f: the engine refuses a running container, so a lock that
        started meanwhile is never removed."""
        if state["State"]["Running"]:
            return False
        if state["State"]["Status"] == "created":
            first = seen.setdefault(state["Id"], time.monotonic())
            if time.monotonic() - first < CREATED_GRACE:
                return False
        return self.docker.run("rm", state["Id"], check=False).returncode == 0

    def _try(self) -> bool:
        """Start the lock container; True once it runs with our token, False if the name is taken."""
        env = {**os.environ, **({"DOCKER_HOST": self.docker.host} if self.docker.host else {})}
        try:
            process = subprocess.Popen(
                ["docker", *_container_args(self.names, self.image, self.holder)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        except FileNotFoundError:
            raise Unreachable("the docker command is not installed on this machine") from None
        started = time.monotonic()
        while time.monotonic() - started < START_TIMEOUT:
            if process.poll() is not None:
                stderr = process.stderr.read() if process.stderr else ""
                if "already in use" in stderr:
                    return False
                raise DockerError(
                    f"could not start the lock container {self.names.lock} on {self.docker.where}",
                    details=[line for line in stderr.strip().splitlines() if line][-3:],
                    hint="check the engine (docker info) and that the router image is on it",
                )
            state = self.docker.inspect("container", self.names.lock)
            labels = (state or {}).get("Config", {}).get("Labels") or {}
            if state and state["State"]["Running"] and parse_holder(labels.get(LABEL)).token == self.holder.token:
                self.process, self.container = process, state["Id"]
                return True
            time.sleep(0.05)
        process.kill()
        raise Unreachable(f"the lock container {self.names.lock} did not start within {START_TIMEOUT:.0f} s")

    # --- while held ----------------------------------------------------------------------------

    def ensure_held(self) -> None:
        """Raise Unreachable if the lock was lost (its container stopped or was removed: an ssh drop,
        an engine restart, a `docker rm -f`): another deploy may hold the environment now, so nothing
        may be switched on the strength of it."""
        state = self.docker.inspect("container", self.container) if self.container else None
        alive = self.process is not None and self.process.poll() is None
        if not (alive and state and state["State"]["Running"]):
            raise Unreachable(
                f"lost the lock of {self.names.env} on {self.docker.where} (its container {self.names.lock} "
                "stopped); live traffic was not switched",
                hint="check the Docker engine, then run the deploy again",
            )

    def exec(self, script: str, input: str | None = None) -> str:
        """Run a shell script in the lock container (it sees the state volume at /state)."""
        if self.container is None:
            raise RuntimeError("the environment lock is not held")
        return self.docker.run("exec", "-i", self.container, "sh", "-c", script, input=input).stdout

    # --- releasing -----------------------------------------------------------------------------

    def __exit__(self, *exc: object) -> None:
        process, container = self.process, self.container
        self.process = self.container = None
        if process is None:
            return
        if process.stdin:
            process.stdin.close()  # cat sees end of input: the container exits and --rm removes it
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.returncode != 0 and container:
            self.docker.run("rm", "-f", container, check=False)  # by id: never someone else's lock
