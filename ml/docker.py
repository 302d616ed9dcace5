"""The Docker engine, through the `docker` CLI (what Jenkins agents have): one place that runs it,
names the engine it talks to, and turns "no engine" into exit 3 with how to start one."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ml.errors import BadInput, Unreachable

INFO_TIMEOUT = 15


@dataclass(frozen=True)
class Docker:
    """A Docker engine: the local one, or `host` (e.g. ssh://deploy@prod, tcp://…)."""

    host: str | None = None

    @property
    def where(self) -> str:
        return self.host or os.environ.get("DOCKER_HOST") or "the local engine (unix:///var/run/docker.sock)"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.host:
            env["DOCKER_HOST"] = self.host
        env.setdefault("DOCKER_BUILDKIT", "0")  # the classic builder: no buildx plugin needed on agents
        return env

    def run(
        self, *args: str, check: bool = True, timeout: float | None = 120, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(
                ["docker", *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=self._env(),
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

    def _raise(self, args: Sequence[str], stderr: str) -> None:
        text = stderr.strip()
        if "Cannot connect to the Docker daemon" in text or "error during connect" in text:
            raise Unreachable(
                f"no Docker engine answers at {self.where}",
                details=[text.splitlines()[-1]],
                hint="start it (sudo systemctl start docker, or sudo dockerd &) or set DOCKER_HOST",
            )
        raise DockerError(
            f"docker {' '.join(args[:2])} failed: {text.splitlines()[-1] if text else 'no message'}",
            details=text.splitlines()[-8:-1],
        )

    def check(self) -> str:
        """The engine's version, or Unreachable saying how to start one."""
        done = self.run("version", "--format", "{{.Server.Version}}", check=False, timeout=INFO_TIMEOUT)
        if done.returncode != 0:
            self._raise(("version",), done.stderr or "Cannot connect to the Docker daemon")
        return done.stdout.strip()

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
