"""Containers, exec, networks and volumes on an engine (mlci.ship.docker): what `docker run`, `docker
exec -i`, `docker rm -f`, `docker logs` and `docker network …` did, through the engine's API.

Input for a process (`docker exec -i`, `docker run -i`) goes through the attach socket, never a
command line; so do secrets, as a container's environment. A call that the engine does not answer
in time is Unreachable (exit 3), like every other engine failure (mlci.ship.docker).
"""

from __future__ import annotations

import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import docker.errors as sdk_errors
from docker.types import LogConfig

from mlci.ship import attach
from mlci.ship.docker import DEFAULT_TIMEOUT, Docker, DockerError

EXEC_TIMEOUT = 60.0  # a command in a container (cat, readlink, a reload) must be done by then


@dataclass(frozen=True)
class ContainerSpec:
    """The `docker run` options mlci uses, typed: what becomes the create call's config and host config."""

    image: str
    name: str | None = None
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    network: str | None = None  # a network's name, or "none"
    aliases: list[str] = field(default_factory=list)  # the container's names on that network
    volumes: dict[str, str] = field(default_factory=dict)  # volume -> "/path" or "/path:ro"
    tmpfs: dict[str, str] = field(default_factory=dict)  # "/path" -> mount options ("" for none)
    ports: dict[int, tuple[str, int]] = field(default_factory=dict)  # container port -> (host address, port)
    read_only: bool = False
    user: str | None = None
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    restart: str | None = None  # a restart policy: "unless-stopped"
    cpu_shares: int | None = None
    extra_hosts: dict[str, str] = field(default_factory=dict)  # name -> address, or "host-gateway"
    auto_remove: bool = False  # --rm


class Ran(NamedTuple):
    """What a process in a container did: its exit code, standard output and error."""

    exit_code: int
    stdout: str
    stderr: str


@dataclass
class Held:
    """A running container whose standard input mlci holds open (the environment lock): it ends when
    the socket closes, whether mlci closes it or dies."""

    id: str
    sock: Any

    def release(self) -> None:
        attach.close(self.sock)


def _create(api: Any, spec: ContainerSpec, stdin: bool = False, readable_logs: bool = False) -> str:
    host_config = api.create_host_config(
        binds=[f"{volume}:{path}" for volume, path in spec.volumes.items()] or None,
        tmpfs=dict(spec.tmpfs) or None,
        port_bindings=dict(spec.ports) or None,
        network_mode=spec.network,
        read_only=spec.read_only or None,
        cap_drop=list(spec.cap_drop) or None,
        security_opt=list(spec.security_opt) or None,
        restart_policy={"Name": spec.restart} if spec.restart else None,
        cpu_shares=spec.cpu_shares,
        extra_hosts=dict(spec.extra_hosts) or None,
        auto_remove=spec.auto_remove,
        # Output read back after the container exits (run_once): a driver the engine can read, whatever its default.
        log_config=LogConfig(type=LogConfig.types.JSON) if readable_logs else None,
    )
    networking = None
    if spec.aliases and spec.network:
        networking = api.create_networking_config({spec.network: api.create_endpoint_config(aliases=spec.aliases)})
    created = api.create_container(
        spec.image,
        command=spec.command,
        entrypoint=spec.entrypoint,
        name=spec.name,
        user=spec.user,
        environment=dict(spec.environment) or None,
        labels=dict(spec.labels) or None,
        ports=list(spec.ports) or None,
        host_config=host_config,
        networking_config=networking,
        detach=not stdin,
        stdin_open=stdin,  # with detach=False: StdinOnce, the engine closes stdin when mlci's socket does
    )
    return str(created["Id"])


def _start(api: Any, container: str) -> None:
    """Start a created container; one that cannot start is removed (a `--rm` container would be too)."""
    try:
        api.start(container)
    except BaseException:
        with suppress(Exception):
            api.remove_container(container, force=True)
        raise


def run(docker: Docker, spec: ContainerSpec) -> str:
    """`docker run -d`: create and start; the container's id."""
    with docker.api("run") as api:
        container = _create(api, spec)
        _start(api, container)
        return container


def run_once(docker: Docker, spec: ContainerSpec, input: str | None = None, timeout: float = EXEC_TIMEOUT) -> Ran:
    """`docker run --rm [-i]`: run to its end (at most `timeout` s) with `input` on its standard input,
    then remove it; what it did."""
    with docker.api("run", timeout) as api:
        container = _create(api, spec, stdin=input is not None, readable_logs=True)
        try:
            sock = api.attach_socket(container, params={"stdin": 1, "stream": 1}) if input is not None else None
            _start(api, container)
            if sock is not None:
                attach.send(sock, input or "")
                attach.close(sock)  # end of input: the engine closes the container's stdin (StdinOnce)
            code = int(api.wait(container, timeout=timeout).get("StatusCode", -1))
            out = api.logs(container, stdout=True, stderr=False).decode(errors="replace")
            err = api.logs(container, stdout=False, stderr=True).decode(errors="replace")
            return Ran(code, out, err)
        finally:
            with suppress(Exception):
                api.remove_container(container, force=True)


def hold(docker: Docker, spec: ContainerSpec) -> Held | None:
    """`docker run -i` with mlci's end of stdin kept open: the running container, or None when another
    container has its name (the engine refuses a second one atomically)."""
    with docker.api("run") as api:
        try:
            container = _create(api, spec, stdin=True)
        except sdk_errors.APIError as error:
            if error.status_code == 409:  # Conflict: the name is in use
                return None
            raise
        try:
            sock = api.attach_socket(container, params={"stdin": 1, "stream": 1})
        except BaseException:
            with suppress(Exception):
                api.remove_container(container, force=True)
            raise
        try:
            _start(api, container)
        except BaseException:
            attach.close(sock)
            raise
        return Held(container, sock)


def execute(
    docker: Docker,
    container: str,
    command: list[str],
    input: str | None = None,
    check: bool = True,
    timeout: float = EXEC_TIMEOUT,
) -> Ran:
    """`docker exec [-i] CONTAINER COMMAND`: what the command did; with `check`, DockerError unless it
    exited 0 (without, a container that is missing or stopped is exit 1, as for the CLI). `input` is
    its standard input, then end of input."""
    with docker.api("exec", timeout) as api:
        try:
            exec_id = api.exec_create(container, command, stdout=True, stderr=True, stdin=input is not None)["Id"]
            sock = api.exec_start(exec_id, socket=True)
        except sdk_errors.APIError as error:  # no such container, or not running: what `docker exec` exits 1 for
            if check:
                raise
            return Ran(1, "", str(error.explanation or error))
        try:
            if input is not None:
                attach.send(sock, input)
                attach.close_write(sock)
            stdout, stderr = attach.demux(attach.read_all(sock, time.monotonic() + timeout))
        finally:
            attach.close(sock)
        code = _exit_code(api, exec_id)
    done = Ran(code, stdout.decode(errors="replace"), stderr.decode(errors="replace"))
    if check and code != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line]
        raise DockerError(
            f"docker exec {command[0]} in {container[:12] if len(container) == 64 else container} failed "
            f"(exit {code}): {lines[-1] if lines else 'no message'}",
            details=lines[-8:-1],
        )
    return done


def _exit_code(api: Any, exec_id: str) -> int:
    """The exec's exit code, once the engine has it (a moment after its output ends)."""
    deadline = time.monotonic() + 5
    while True:
        state = api.exec_inspect(exec_id)
        if not state.get("Running") or time.monotonic() > deadline:
            return int(state.get("ExitCode") if state.get("ExitCode") is not None else -1)
        time.sleep(0.02)


def start(docker: Docker, container: str) -> None:
    with docker.api("start") as api:
        api.start(container)


def remove(docker: Docker, container: str, force: bool = True) -> bool:
    """`docker rm [-f]`: True when it is gone, False when the engine refused (without `force`: a
    running container; with it, one being removed already)."""
    with docker.api("rm") as api:
        try:
            api.remove_container(container, force=force)
        except sdk_errors.NotFound:
            return True
        except sdk_errors.APIError:
            return False
        return True


def gone(docker: Docker, container: str, timeout: float) -> bool:
    """Wait up to `timeout` s for a container to be removed (`--rm` after its process ended)."""
    deadline = time.monotonic() + timeout
    while docker.inspect("container", container) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def logs(docker: Docker, container: str, tail: int) -> list[str]:
    """The last `tail` lines a container wrote (stdout and stderr), [] when it is gone."""
    with docker.api("logs") as api:
        try:
            text = api.logs(container, stdout=True, stderr=True, tail=tail).decode(errors="replace")
        except sdk_errors.NotFound:
            return []
    return [line for line in text.strip().splitlines() if line][-tail:]


def set_cpu_shares(docker: Docker, container: str, shares: int) -> None:
    with docker.api("update") as api:
        api.update_container(container, cpu_shares=shares)


def create_network(docker: Docker, name: str, labels: dict[str, str]) -> None:
    with docker.api("network create") as api:
        api.create_network(name, labels=labels)


def connect(docker: Docker, network: str, container: str, connected: bool = True) -> None:
    """Attach a container to a network (`docker network connect`), or detach it."""
    with docker.api("network connect" if connected else "network disconnect") as api:
        if connected:
            api.connect_container_to_network(container, network)
        else:
            api.disconnect_container_from_network(container, network)


def create_volume(docker: Docker, name: str, labels: dict[str, str]) -> None:
    """`docker volume create`: the volume (an existing one is kept as it is)."""
    with docker.api("volume create") as api:
        api.create_volume(name, labels=labels)


def remove_object(docker: Docker, kind: str, name: str) -> None:
    """`docker network rm` / `docker volume rm`."""
    with docker.api(f"{kind} rm", DEFAULT_TIMEOUT) as api:
        api.remove_network(name) if kind == "network" else api.remove_volume(name)
