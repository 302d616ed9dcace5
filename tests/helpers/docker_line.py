"""The `docker` CLI call and the demo line (a project with staging and production) driven through the
real `mlci` CLI, shared by the blue/green deploy and shadow-traffic suites, which add what they need."""

from __future__ import annotations

import subprocess

from click.testing import CliRunner

from mlci.cli.main import cli


def docker(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=300, input=input)


class Line:
    """A throw-away project (tests' project_factory) with its environments, driven by in-process `mlci`."""

    def __init__(self, project):
        self.project = project
        self.name = project.config["project"]

    def mlci(self, *args: str):
        return CliRunner().invoke(cli, ["--config", str(self.project.config_file), *args])

    def env(self, env: str) -> dict:
        return self.project.config["environments"][env]

    def url(self, env: str) -> str:
        return f"http://127.0.0.1:{self.env(env)['port']}"

    def live(self, env: str) -> str:
        """The socket the environment's router sends traffic to (blue.sock or green.sock)."""
        return docker("exec", f"{self.name}-{env}-router", "readlink", "/run/mlci/live.sock").stdout.strip()


def remove_environments(project: str) -> None:
    """Every container, network and volume of `project`'s environments, removed at once: a test's clean-up.
    (`mlci down` stops each container gracefully in turn, ~10 s per environment; its own behaviour is tested
    in test_deploy.py and test_team_line.py.)"""
    containers = docker("ps", "-aq", "--filter", f"name={project}-", check=False).stdout.split()
    if containers:
        docker("rm", "-f", *containers, check=False)
    for kind in ("network", "volume"):
        names = docker(kind, "ls", "-q", "--filter", f"name={project}-", check=False).stdout.split()
        if names:
            docker(kind, "rm", *names, check=False)
