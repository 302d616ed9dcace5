"""Issue 14, part 1: the topology the registry and remote-host tests run on works as advertised."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.helpers import topology as topo


def test_registry_answers_over_tls_with_auth_only(topology):
    assert topo.registry_answers(topology) == 200
    with httpx.Client(verify=str(topology.ca), timeout=5) as client:
        assert client.get(f"https://{topology.registry}/v2/").status_code == 401  # no credentials
        assert client.get(f"https://{topology.registry}/v2/", auth=("mlci-ci", "wrong")).status_code == 401
    with pytest.raises(httpx.ConnectError):  # TLS only: a client without the test CA refuses it
        httpx.get(f"https://{topology.registry}/v2/", timeout=5)


@pytest.mark.parametrize("env", ["staging", "production"])
def test_each_host_runs_its_own_engine_over_ssh(topology, env):
    host = topology.hosts[env]
    done = subprocess.run(
        ["docker", "-H", host.docker_host, "info", "--format", "{{.DockerRootDir}}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, **topology.env()},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(host.root / "data")  # that namespace's dockerd, not this host's
