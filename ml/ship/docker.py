"""The Docker engine, through the Docker SDK (docker-py): one place that opens a client, names the
engine it talks to, and turns whatever goes wrong on the way into exit 3 with what to do (no engine,
an SSH host that is down or refuses the key, a call that does not finish) or, when the engine
refuses what was asked, DockerError (exit 2). No `docker` binary is needed on the agent.

`ssh://` engines go through paramiko (docker[ssh]): one SSH connection per engine and command, each
call a channel on it running `docker system dial-stdio` on the host. The key comes from an ssh-agent
(SSH_AUTH_SOCK) or ~/.ssh (IdentityFile, User, Port, HostName and ProxyCommand of ~/.ssh/config);
the host key must be in ~/.ssh/known_hosts (an unknown host is refused). docs/deploy.md has more.
Containers, exec and networks are mlci.ship.containers; builds, pushes and pulls mlci.ship.docker_images.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import docker.errors as sdk_errors
from docker.api.client import APIClient
from docker.utils import kwargs_from_env

from mlci.core.errors import BadInput, MlciError, Unreachable

DEFAULT_TIMEOUT = 120.0  # seconds one call may wait for the engine's answer
INFO_TIMEOUT = 15.0  # connecting and `version`
SSH_CONNECT_TIMEOUT = 5.0
LOCAL = "unix:///var/run/docker.sock"
INSPECT = {
    "container": "inspect_container",
    "image": "inspect_image",
    "network": "inspect_network",
    "volume": "inspect_volume",
}

# paramiko logs a failed connection with its traceback from its own thread (docker-py resets the
# logger's level on each connection): mlci says it once, mapped (engine_error), never as a traceback.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False

_clients: dict[str, Any] = {}  # engine URL -> docker.APIClient, for the rest of the command
_retired: list[Any] = []  # clients replaced after a failure: closed with the others (a lock may use one)
_guard = threading.Lock()


def close_clients() -> None:
    """Close every engine connection (SSH ones included): the end of a command (mlci.cli.run)."""
    with _guard:
        clients = [*_clients.values(), *_retired]
        _clients.clear()
        _retired.clear()
    for client in clients:
        with suppress(Exception):
            client.close()


atexit.register(close_clients)


@dataclass(frozen=True)
class Docker:
    """A Docker engine: the local one (DOCKER_HOST, else the default socket), or `host` (ssh://…, tcp://…)."""

    host: str | None = None
    # Registry credentials sent with this engine's pushes and pulls (mlci.ship.image_registry.session).
    auth: dict[str, str] | None = field(default=None, repr=False, compare=False)

    @property
    def url(self) -> str:
        return self.host or os.environ.get("DOCKER_HOST") or LOCAL

    @property
    def where(self) -> str:
        return self.host or os.environ.get("DOCKER_HOST") or f"the local engine ({LOCAL})"

    @contextmanager
    def api(self, what: str, timeout: float | None = None) -> Iterator[Any]:
        """The engine's low-level client (docker.APIClient) for one operation, `what` in messages, each
        request bounded by `timeout` seconds. Whatever fails on the way leaves as an MlciError naming the
        engine (`engine_error`); the engine's own "no such …" is the caller's to catch (docker.errors)."""
        seconds = timeout or DEFAULT_TIMEOUT
        try:
            client = self._client()
            previous, client.timeout = client.timeout, seconds
            try:
                yield client
            finally:
                client.timeout = previous
        except MlciError:
            raise
        except Exception as error:
            mapped = engine_error(error, self.url, self.where, what, seconds)
            if mapped is None:
                raise
            if isinstance(mapped, Unreachable):
                self._forget()  # the next call connects afresh: the engine or the host may be back
            raise mapped from None

    def check(self) -> str:
        """The engine's version, or Unreachable saying how to start one."""
        with self.api("version", INFO_TIMEOUT) as api:
            return str(api.version(api_version=False).get("Version") or "unknown")

    def inspect(self, kind: str, ref: str) -> dict[str, Any] | None:
        """`docker <kind> inspect <ref>`'s JSON (the same dict), None when there is no such object."""
        with self.api(f"{kind} inspect") as api:
            try:
                return dict(getattr(api, INSPECT[kind])(ref))
            except sdk_errors.NotFound:
                return None

    def _client(self) -> Any:
        url = self.url
        with _guard:
            if url in _clients:
                return _clients[url]
        self._ssh_port_open()
        options = kwargs_from_env()
        options.update(base_url=url, version="auto", timeout=INFO_TIMEOUT, use_ssh_client=False)
        if url.startswith("ssh://"):
            # docker-py keeps a connection pool per request URL, and over SSH each idle connection is a
            # session on the host: nine pools and the lock's attached stdin would pass sshd's default
            # MaxSessions (10). One pool: at most a few sessions at once.
            options.update(num_pools=1)
        client = APIClient(**options)  # connects (SSH) and asks the engine its API version
        with _guard:
            kept = _clients.setdefault(url, client)
        if kept is not client:
            client.close()
        return kept

    def _forget(self) -> None:
        """The next call connects afresh. The old client is not closed yet: over SSH that would close
        every channel of its connection, the lock container's attached stdin with them."""
        with _guard:
            client = _clients.pop(self.url, None)
            if client is not None:
                _retired.append(client)

    def _ssh_port_open(self) -> None:
        """For ssh://[user@]host[:port]: the port accepts a connection within seconds, before paramiko
        (whose own connect waits for the system's TCP timeout, minutes for a host that is down)."""
        if not self.url.startswith("ssh://"):
            return
        parsed = urlsplit(self.url)
        if not parsed.hostname:
            raise BadInput(f"docker host {self.url!r} names no host (ssh://user@host)")
        try:
            socket.create_connection((parsed.hostname, parsed.port or 22), timeout=SSH_CONNECT_TIMEOUT).close()
        except OSError as error:
            raise Unreachable(
                f"cannot reach the Docker host {self.url}: no SSH connection to {parsed.hostname}:{parsed.port or 22}"
                f" within {SSH_CONNECT_TIMEOUT:.0f} s ({error.strerror or type(error).__name__})",
                hint="is the host up and reachable from this agent? nothing was changed there",
            ) from None


class DockerError(BadInput):
    """Docker refused something we asked (a failing build step, a bad reference)."""


def _chain(error: BaseException) -> list[BaseException]:
    """The error and every error behind it: causes, contexts, and those wrapped in arguments
    (requests wraps urllib3's, which wraps the socket's) or in `reason` (urllib3's MaxRetryError)."""
    seen: list[BaseException] = []
    todo = [error]
    while todo and len(seen) < 20:
        current = todo.pop(0)
        if any(current is known for known in seen):
            continue
        seen.append(current)
        inner = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        todo += [e for e in inner if isinstance(e, BaseException)]
    return seen


def _line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[-1][:300] if text else type(error).__name__


AUTH_REFUSED = {"AuthenticationException", "BadAuthenticationType", "PasswordRequiredException"}
TIMEOUTS = {"ReadTimeout", "ReadTimeoutError", "ConnectTimeout", "ConnectTimeoutError", "Timeout"}
DROPPED = {"ConnectionError", "ProtocolError", "RemoteDisconnected", "MaxRetryError", "NewConnectionError"}


def engine_error(error: BaseException, url: str, where: str, what: str, timeout: float) -> MlciError | None:
    """What a failed call on the engine at `url` means for the user, as an MlciError (None: a bug).

    The engine's refusal (an HTTP error) is DockerError, with its own words; SSH refusing the key,
    an unknown host key, an SSH host that does not answer, a call that did not finish within `timeout`
    s and an engine that does not answer are Unreachable (exit 3), each with what to do."""
    chain = _chain(error)
    names = {type(e).__name__ for e in chain}
    refused = next((e for e in chain if isinstance(e, sdk_errors.APIError)), None)
    if refused is not None:
        said = str(refused.explanation or refused).strip() or "no message"
        return DockerError(f"docker {what} failed: {said.splitlines()[-1]}", details=said.splitlines()[:-1][-7:])
    ssh = url.startswith("ssh://")
    text = _line(error)
    if ssh and names & AUTH_REFUSED:
        return Unreachable(
            f"the SSH server of {url} refused mlci's key",
            details=[text],
            hint="add this agent's public key to that host's authorized_keys, or load the key into the ssh-agent "
            "(SSH_AUTH_SOCK); nothing was changed there",
        )
    if ssh and any("No authentication methods available" in str(e) for e in chain):
        return Unreachable(
            f"no SSH key to log in to {url} with",
            details=[text],
            hint="bind the deploy key with an ssh-agent (SSH_AUTH_SOCK; Jenkins: sshagent) or put it in ~/.ssh "
            "(IdentityFile in ~/.ssh/config); nothing was changed there",
        )
    if ssh and ("BadHostKeyException" in names or any("known_hosts" in str(e) for e in chain)):
        changed = "BadHostKeyException" in names
        return Unreachable(
            f"the SSH host key of {url} {'changed' if changed else 'is not known to this agent'}",
            details=[text],
            hint="check the host's key fingerprint, then put it in ~/.ssh/known_hosts of the agent's user "
            "(ssh-keyscan HOST); nothing was changed there",
        )
    if ssh and any(type(e).__module__.startswith("paramiko") for e in chain):
        return Unreachable(
            f"cannot reach the Docker host {url} over SSH",
            details=[text],
            hint="is the host up and its sshd reachable from this agent? nothing was changed there",
        )
    if any(isinstance(e, sdk_errors.DockerException) and "paramiko" in str(e) for e in chain):
        return Unreachable(
            f"cannot talk to {url}: paramiko is not installed",
            hint="install mlci with its dependencies (pip install 'docker[ssh]')",
        )
    if names & TIMEOUTS or any(isinstance(e, TimeoutError) for e in chain):
        return Unreachable(
            f"docker {what} did not finish within {timeout:.0f} s on {where}",
            hint="is the engine (or the host) overloaded? nothing more was changed there",
        )
    if any(isinstance(e, PermissionError) for e in chain):
        return Unreachable(
            f"no permission to use the Docker engine at {where}",
            details=[text],
            hint="add the agent's user to the docker group, or point DOCKER_HOST at an engine it may use",
        )
    if "SSLError" in names:
        return Unreachable(
            f"TLS with the Docker engine at {where} failed",
            details=[text],
            hint="check DOCKER_TLS_VERIFY, DOCKER_CERT_PATH and the engine's certificate",
        )
    if names & DROPPED or any(isinstance(e, (ConnectionError, EOFError, FileNotFoundError)) for e in chain):
        return Unreachable(
            f"no Docker engine answers at {where}",
            details=[text],
            hint=f"start the Docker engine on {urlsplit(url).hostname} (dockerd) and check that the SSH user "
            "may use it there (docker system dial-stdio); nothing was changed there"
            if ssh
            else "start it (sudo systemctl start docker, or sudo dockerd &) or set DOCKER_HOST",
        )
    if isinstance(error, sdk_errors.DockerException):
        return BadInput(
            f"cannot use the Docker engine at {where}: {text}",
            hint="a docker_host / DOCKER_HOST is unix:///path, tcp://host:port or ssh://user@host",
        )
    return None
