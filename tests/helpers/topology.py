"""Issue 14's test topology: an image registry on this host and two Docker hosts reached over SSH.

    this host (build engine, mlci)                      netns mlcitest-staging
    ┌──────────────────────────────────┐  veth 10.231.1.0/30  ┌──────────────────────────────┐
    │ docker-registry 10.231.0.1:5443 ─┼── .1 ─────────── .2 ─┤ sshd :22 → dockerd (own root) │
    │   (TLS, test CA, htpasswd)       │                      └──────────────────────────────┘
    │ 10.231.0.1/32 on lo: the one     │  veth 10.231.2.0/30  ┌──────────────────────────────┐
    │   registry name every engine     ├── .1 ─────────── .2 ─┤ sshd :22 → dockerd (own root) │
    │   pushes to and pulls from       │                      └──────────────────────────────┘
    └──────────────────────────────────┘                      netns mlcitest-production

The registry address lives on the host's loopback so that one name (`10.231.0.1:5443`) is the
same for the build engine (which pushes) and for the namespaced engines (which reach it through
their default route over the veth). Each namespace runs its own dockerd (data root, exec root,
pidfile, socket) and its own sshd, whose sessions get `DOCKER_HOST` set to that dockerd's socket
(`SetEnv`), so `docker -H ssh://root@10.231.1.2 …` (the CLI runs `ssh … docker system dial-stdio`)
talks to the namespaced engine. The ssh client's options (test key, known hosts, connection
sharing) come from an `ssh` shim first on PATH that adds `-F <test ssh_config>`: the system ssh
reads ~/.ssh from the passwd entry, not $HOME, and root's must stay untouched.

Everything lives under BASE and carries the `mlcitest` prefix: a crashed run's leftovers are
removed before a new topology starts, and teardown removes all of it. Needs root (netns, dockerd).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

BASE = Path("/var/lib/mlcitest-topology")
PREFIX = "mlcitest"
REGISTRY_ADDRESS = "10.231.0.1"
REGISTRY_PORT = 5443
REGISTRY = f"{REGISTRY_ADDRESS}:{REGISTRY_PORT}"
REGISTRY_USER = "mlci-ci"
REGISTRY_PASSWORD = "test-only-registry-password"
CERTS_D = Path("/etc/docker/certs.d") / REGISTRY
LOCK = Path("/tmp/mlcitest-topology.lock")
HOSTS = {"staging": 1, "production": 2}  # environment -> third octet of its /30


@dataclass
class Host:
    """One namespaced Docker host."""

    env: str
    netns: str
    host_side: str  # this host's end of the veth, e.g. 10.231.1.1
    address: str  # the namespace's end, where its sshd listens and its routers publish
    socket: str  # its dockerd's socket (reachable from this host too, for the tests' own checks)
    root: Path
    dockerd: subprocess.Popen | None = None
    sshd: subprocess.Popen | None = None

    @property
    def docker_host(self) -> str:
        return f"ssh://root@{self.address}"

    @property
    def veth(self) -> str:
        return f"mlcit-{self.env[:4]}"  # interface names: 15 characters at most

    def docker(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The namespaced engine through its socket (not over SSH): the tests' own look at it."""
        return subprocess.run(
            ["docker", "-H", f"unix://{self.socket}", *args], capture_output=True, text=True, timeout=timeout
        )

    def stop_engine(self) -> None:
        """The fault of the issue: this host's dockerd stopped (its containers stop with it)."""
        _stop(self.dockerd, timeout=30)
        self.dockerd = None

    def start_engine(self) -> None:
        self.dockerd = _start_dockerd(self)


@dataclass
class Topology:
    root: Path
    registry: str
    username: str
    password: str
    ca: Path
    bin_dir: Path  # put first on PATH: the ssh shim
    ssh_config: Path
    hosts: dict[str, Host] = field(default_factory=dict)
    registry_process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        """What a test exports to use the topology: the ssh shim first on PATH (for the tests' own
        `docker -H ssh://` calls), and a HOME whose ~/.ssh holds the test key's config and known hosts:
        mlci talks to the hosts through the docker SDK's paramiko, which reads ~/.ssh, not the shim."""
        return {"PATH": f"{self.bin_dir}:{os.environ['PATH']}", "HOME": str(self.ssh_config.parent / "home")}


def _run(*args: str, check: bool = True, netns: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [*(["nsenter", f"--net=/var/run/netns/{netns}"] if netns else []), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-600:]}")
    return done


def _stop(process: subprocess.Popen | None, timeout: float = 20) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _ours(pid: int) -> bool:
    """A process of a previous topology (its command line names BASE or a test namespace socket)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return str(BASE) in command or f"/run/{PREFIX}-" in command


def clean_leftovers() -> None:
    """Remove whatever a previous (crashed) run left: processes, mounts, namespaces, links, files."""
    for pidfile in BASE.glob("**/*.pid") if BASE.exists() else []:
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
        if _ours(pid):
            os.kill(pid, signal.SIGTERM)
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        if pid != os.getpid() and _ours(pid):  # containerd shims and anything without a pidfile
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    time.sleep(0.5)
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith((str(BASE), f"/run/{PREFIX}-"))), reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)
    for name in _run("ip", "netns", "list").stdout.split():
        if name.startswith(f"{PREFIX}-"):
            _run("ip", "netns", "del", name, check=False)
    for line in _run("ip", "-o", "link", "show").stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith("mlcit-"):
            _run("ip", "link", "del", name, check=False)
    _run("ip", "addr", "del", f"{REGISTRY_ADDRESS}/32", "dev", "lo", check=False)
    shutil.rmtree(CERTS_D, ignore_errors=True)
    for path in Path("/run").glob(f"{PREFIX}-*"):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    shutil.rmtree(BASE, ignore_errors=True)


def _make_ca(root: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and the registry's certificate for REGISTRY_ADDRESS, made with openssl."""
    ca_key, ca, key, csr, cert = (
        root / n for n in ("ca.key", "ca.crt", "registry.key", "registry.csr", "registry.crt")
    )
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=mlci test CA",
         "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={REGISTRY_ADDRESS}",
         "-keyout", str(key), "-out", str(csr))  # fmt: skip
    extensions = root / "san.ext"
    extensions.write_text(f"subjectAltName=IP:{REGISTRY_ADDRESS}\nextendedKeyUsage=serverAuth\n")
    _run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
         "-days", "2", "-extfile", str(extensions), "-out", str(cert))  # fmt: skip
    return ca, cert, key


def _start_registry(root: Path, cert: Path, key: Path) -> subprocess.Popen:
    htpasswd = root / "htpasswd"
    htpasswd.write_text(_run("htpasswd", "-Bbn", REGISTRY_USER, REGISTRY_PASSWORD).stdout)
    config = root / "registry.yml"
    config.write_text(
        f"""version: 0.1
log: {{level: warn}}
storage:
  filesystem: {{rootdirectory: {root / "data"}}}
  delete: {{enabled: true}}
http:
  addr: {REGISTRY}
  tls: {{certificate: {cert}, key: {key}}}
auth:
  htpasswd: {{realm: mlci-test, path: {htpasswd}}}
"""
    )
    log = open(root / "registry.log", "w")  # noqa: SIM115 - the process keeps it until teardown
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    (root / "registry.pid").write_text(str(process.pid))
    return process


def _ssh_client(root: Path) -> tuple[Path, Path]:
    """The test key, the ssh_config the shim passes with -F, and the shim itself."""
    key = root / "id_ed25519"
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mlci-test", "-f", str(key))
    config = root / "ssh_config"
    config.write_text(
        f"""Host 10.231.*
  User root
  IdentityFile {key}
  IdentitiesOnly yes
  UserKnownHostsFile {root / "known_hosts"}
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 5
  ServerAliveInterval 5
  ServerAliveCountMax 2
  ControlMaster auto
  ControlPath {root}/cm-%C
  ControlPersist 60
"""
    )
    # What paramiko reads (the docker SDK's ssh:// transport): ~/.ssh/config's Host/User/IdentityFile and
    # ~/.ssh/known_hosts, under a HOME of the test's own.
    home_ssh = root / "home" / ".ssh"
    home_ssh.mkdir(parents=True)
    (home_ssh / "config").write_text(f"Host 10.231.*\n  User root\n  IdentityFile {key}\n")
    (home_ssh / "known_hosts").symlink_to(root / "known_hosts")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "ssh"
    shim.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {config} "$@"\n')
    shim.chmod(0o755)
    return bin_dir, config


def _start_dockerd(host: Host) -> subprocess.Popen:
    (host.root / "daemon.json").write_text("{}\n")  # not /etc/docker/daemon.json: the host engine's
    log = open(host.root / "dockerd.log", "a")  # noqa: SIM115 - the process keeps it until it stops
    process = subprocess.Popen(
        [
            "nsenter",
            f"--net=/var/run/netns/{host.netns}",
            "dockerd",
            "--config-file",
            str(host.root / "daemon.json"),
            "--data-root",
            str(host.root / "data"),
            "--exec-root",
            f"/run/{PREFIX}-{host.env[:4]}-x",
            "--pidfile",
            str(host.root / "dockerd.pid"),
            "--shutdown-timeout",  # containers get 2 s to stop (not 15): a fast teardown and fault
            "2",
            "-H",
            f"unix://{host.socket}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if host.docker("version", "--format", "{{.Server.Version}}", timeout=10).returncode == 0:
            return process
        if process.poll() is not None:
            break
        time.sleep(0.3)
    raise RuntimeError(f"dockerd in {host.netns} did not start: {(host.root / 'dockerd.log').read_text()[-1500:]}")


def _start_host(root: Path, env: str, octet: int, client_root: Path) -> Host:
    host = Host(
        env=env,
        netns=f"{PREFIX}-{env}",
        host_side=f"10.231.{octet}.1",
        address=f"10.231.{octet}.2",
        socket=f"/run/{PREFIX}-{env[:4]}.sock",
        root=root / env,
    )
    host.root.mkdir(parents=True)
    _run("ip", "netns", "add", host.netns)
    _run("ip", "link", "add", host.veth, "type", "veth", "peer", "name", f"{host.veth}-ns")
    _run("ip", "link", "set", f"{host.veth}-ns", "netns", host.netns)
    _run("ip", "addr", "add", f"{host.host_side}/30", "dev", host.veth)
    _run("ip", "link", "set", host.veth, "up")
    _run("ip", "link", "set", "lo", "up", netns=host.netns)
    _run("ip", "link", "set", f"{host.veth}-ns", "name", "eth0", netns=host.netns)
    _run("ip", "addr", "add", f"{host.address}/30", "dev", "eth0", netns=host.netns)
    _run("ip", "link", "set", "eth0", "up", netns=host.netns)
    _run("ip", "route", "add", "default", "via", host.host_side, netns=host.netns)
    host.dockerd = _start_dockerd(host)
    host.sshd = _start_sshd(host, client_root)
    return host


def _start_sshd(host: Host, client_root: Path) -> subprocess.Popen:
    key = host.root / "ssh_host_ed25519_key"
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    public = (client_root / "id_ed25519.pub").read_text()
    (host.root / "authorized_keys").write_text(public)
    with open(client_root / "known_hosts", "a") as known:
        known.write(f"{host.address} {(host.root / 'ssh_host_ed25519_key.pub').read_text().split(' ')[0]} "
                    f"{(host.root / 'ssh_host_ed25519_key.pub').read_text().split(' ')[1]}\n")  # fmt: skip
    config = host.root / "sshd_config"
    config.write_text(
        f"""Port 22
ListenAddress {host.address}
HostKey {key}
PidFile {host.root / "sshd.pid"}
AuthorizedKeysFile {host.root / "authorized_keys"}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 50:30:100
SetEnv DOCKER_HOST=unix://{host.socket}
"""
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    log = open(host.root / "sshd.log", "w")  # noqa: SIM115 - the process keeps it until teardown
    process = subprocess.Popen(
        ["nsenter", f"--net=/var/run/netns/{host.netns}", "/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host.address, 22), timeout=1).close()
            return process
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"sshd in {host.netns} did not start: {(host.root / 'sshd.log').read_text()[-800:]}")


def load_image(host: Host, image: str) -> None:
    """Copy an image from the build engine to a namespaced one (the lock and state containers need an
    image with sh and cat before the first pull; tests that check the real pull path do not use this)."""
    saved = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    loaded = subprocess.run(
        ["docker", "-H", f"unix://{host.socket}", "load", "-q"], stdin=saved.stdout, capture_output=True, text=True
    )
    saved.wait()
    assert loaded.returncode == 0, loaded.stderr


def registry_answers(topology: Topology, timeout: float = 5) -> int:
    """The registry's /v2/ over TLS with the test CA and the test credentials: the HTTP status."""
    with httpx.Client(verify=str(topology.ca), timeout=timeout) as client:
        return client.get(f"https://{topology.registry}/v2/", auth=(topology.username, topology.password)).status_code


def start() -> Topology:
    clean_leftovers()
    BASE.mkdir(parents=True)
    registry_root = BASE / "registry"
    registry_root.mkdir()
    ca, cert, key = _make_ca(registry_root)
    CERTS_D.mkdir(parents=True, exist_ok=True)
    shutil.copy(ca, CERTS_D / "ca.crt")  # every engine on this machine (the namespaced ones share /etc)
    _run("ip", "addr", "add", f"{REGISTRY_ADDRESS}/32", "dev", "lo")
    client_root = BASE / "client"
    client_root.mkdir()
    bin_dir, ssh_config = _ssh_client(client_root)
    topology = Topology(BASE, REGISTRY, REGISTRY_USER, REGISTRY_PASSWORD, ca, bin_dir, ssh_config)
    try:
        topology.registry_process = _start_registry(registry_root, cert, key)
        for env, octet in HOSTS.items():
            topology.hosts[env] = _start_host(BASE, env, octet, client_root)
        deadline = time.monotonic() + 15
        while True:
            try:
                if registry_answers(topology, timeout=2) == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
    except BaseException:
        stop(topology)
        raise
    return topology


def stop(topology: Topology) -> None:
    for host in topology.hosts.values():
        subprocess.run(["ssh", "-F", str(topology.ssh_config), "-O", "exit", host.address], capture_output=True)
        _stop(host.sshd)
        _stop(host.dockerd, timeout=60)
    _stop(topology.registry_process)
    clean_leftovers()


@pytest.fixture(scope="session")
def topology(docker_engine) -> Iterator[Topology]:
    """The registry and the two namespaced hosts, once per session; one session at a time per
    machine (a file lock), since the names and addresses are fixed so that leftovers can be found."""
    if os.geteuid() != 0:
        pytest.fail("the registry/remote-host topology needs root (network namespaces, dockerd, sshd)")
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = start()
        try:
            yield started
        finally:
            stop(started)
