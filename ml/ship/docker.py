"""The Docker engine, through the `docker` CLI (what Jenkins agents have): one place that runs it,
names the engine it talks to, and turns "no engine" into exit 3 with how to start one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ml.errors import BadInput, Unreachable

INFO_TIMEOUT = 15
SSH_CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Docker:
    """A Docker engine: the local one, or `host` (e.g. ssh://deploy@prod, tcp://…)."""

    host: str | None = None
    # A DOCKER_CONFIG of its own (registry credentials for one push or pull; see ml/image_registry).
    config_dir: str | None = None

    @property
    def where(self) -> str:
        return self.host or os.environ.get("DOCKER_HOST") or "the local engine (unix:///var/run/docker.sock)"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.host:
            env["DOCKER_HOST"] = self.host
        if self.config_dir:
            env["DOCKER_CONFIG"] = self.config_dir
        env.setdefault("DOCKER_BUILDKIT", "0")  # the classic builder: no buildx plugin needed on agents
        return env

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float | None = 120,
        input: str | None = None,
        secrets: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`docker ARGS`. `secrets`: variables for the docker client's environment, which `-e NAME` (no
        value) passes on to a container: unlike `-e NAME=value`, never on a command line `ps` shows."""
        try:
            done = subprocess.run(
                ["docker", *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**self._env(), **(secrets or {})},
                input=input,
                check=False,
            )
        except FileNotFoundError:
            raise Unreachable(
                "the docker command is not installed on this machine",
                hint="install Docker (Debian: apt-get install docker.io)",
            ) from None
        except subprocess.TimeoutExpired:
            raise Unreachable(f"docker {args[0]} did not finish within {timeout:.0f} s on {self.where}") from None
        if check and done.returncode != 0:
            self._raise(args, done.stderr)
        return done

    @staticmethod
    def unreachable(text: str) -> bool:
        """The CLI's words for an engine it could not talk to (locally, or over SSH)."""
        return "Cannot connect to the Docker daemon" in text or "error during connect" in text

    def _raise(self, args: Sequence[str], stderr: str) -> None:
        text = stderr.strip()
        if self.host and self.host.startswith("ssh://") and "dial-stdio" in text:
            # The ssh client itself failed (`ssh … docker system dial-stdio` exited 255): name the
            # host and say whether it was the network or the key, not "start dockerd".
            refused = "Permission denied" in text
            raise Unreachable(
                f"the SSH server of {self.host} refused mlci's key"
                if refused
                else f"cannot reach the Docker host {self.host} over SSH",
                details=[line for line in text.split("stderr=")[-1].splitlines() if line][-2:],
                hint="add this agent's public key to that host's authorized_keys (and its host key to known_hosts)"
                if refused
                else "is the host up and its sshd reachable from this agent? nothing was changed there",
            )
        if self.unreachable(text):
            raise Unreachable(
                f"no Docker engine answers at {self.where}",
                details=[text.splitlines()[-1]],
                hint=f"start the Docker engine on {self.host} (dockerd); nothing was changed there"
                if self.host and self.host.startswith("ssh://")
                else "start it (sudo systemctl start docker, or sudo dockerd &) or set DOCKER_HOST",
            )
        raise DockerError(
            f"docker {' '.join(args[:2])} failed: {text.splitlines()[-1] if text else 'no message'}",
            details=text.splitlines()[-8:-1],
        )

    def check(self) -> str:
        """The engine's version, or Unreachable saying how to start one."""
        self._ssh_port_open()
        done = self.run("version", "--format", "{{.Server.Version}}", check=False, timeout=INFO_TIMEOUT)
        if done.returncode != 0:
            self._raise(("version",), done.stderr or "Cannot connect to the Docker daemon")
        return done.stdout.strip()

    def _ssh_port_open(self) -> None:
        """For ssh://[user@]host[:port]: the port accepts a connection within seconds. The docker CLI
        gives ssh ConnectTimeout=30 and may try twice: a host that is down would take a minute."""
        if not self.host or not self.host.startswith("ssh://"):
            return
        parsed = urlsplit(self.host)
        if not parsed.hostname:
            raise BadInput(f"docker host {self.host!r} names no host (ssh://user@host)")
        try:
            socket.create_connection((parsed.hostname, parsed.port or 22), timeout=SSH_CONNECT_TIMEOUT).close()
        except OSError as error:
            raise Unreachable(
                f"cannot reach the Docker host {self.host}: no SSH connection to {parsed.hostname}:{parsed.port or 22}"
                f" within {SSH_CONNECT_TIMEOUT:.0f} s ({error.strerror or type(error).__name__})",
                hint="is the host up and reachable from this agent? nothing was changed there",
            ) from None

    def stream(self, args: Sequence[str], on_line: Callable[[str], None], timeout: float = 1800) -> list[str]:
        """Run a long command (a build, a push), passing each output line on as it comes."""
        lines: list[str] = []
        try:
            process = subprocess.Popen(
                ["docker", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self._env()
            )
        except FileNotFoundError:
            raise Unreachable("the docker command is not installed on this machine") from None
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            lines.append(line)
            on_line(line)
        if process.wait(timeout=timeout) != 0:
            self._raise(args, "\n".join(lines[-20:]))
        return lines

    def inspect(self, kind: str, ref: str) -> dict[str, Any] | None:
        done = self.run(kind, "inspect", ref, check=False)
        if done.returncode != 0:
            # "No such container", "no such volume" (the engine's wording varies by kind), "not found".
            if "no such" in done.stderr.lower() or "not found" in done.stderr.lower():
                return None
            self._raise((kind, "inspect"), done.stderr)
        return json.loads(done.stdout)[0]


class DockerError(BadInput):
    """Docker refused something we asked (a failing build step, a bad reference)."""
