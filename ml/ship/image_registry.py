"""The image registry: images go from the build engine to every environment's engine through it.

`mlci build` pushes each image and records its digest (`repo@sha256:…`); a deploy to another
engine pulls that digest, never a tag (a tag moves; a digest names exactly the bytes that were
built, and the engine checks them). Credentials (MLCI_REGISTRY_USERNAME/PASSWORD) go to a
throw-away DOCKER_CONFIG that lives for one push or pull: the password never lands in ~/.docker.
A registry that does not answer fails within seconds (exit 3, naming it): `docker push` alone
retries for minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from ml.config import Config
from ml.docker import Docker, DockerError
from ml.errors import BadInput, CheckFailed, Unreachable

CONNECT_TIMEOUT = 3.0
REACH_SECONDS = 6.0  # total time to wait for a registry that does not answer
PUSH_TIMEOUT = 1800.0
DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
DIGEST_REF = re.compile(r"^(?P<repo>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})$")


@dataclass(frozen=True)
class Registry:
    """Where images go: `host[:port]` (no scheme), over TLS unless `insecure` is configured."""

    address: str
    insecure: bool = False

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.address.partition(":")
        return host, int(port) if port else (80 if self.insecure else 443)


def configured(config: Config) -> Registry | None:
    """The registry of `images.registry` (MLCI_REGISTRY overrides it), or None."""
    address = (os.environ.get("MLCI_REGISTRY") or config.images.registry or "").rstrip("/")
    if not address:
        return None
    return Registry(address.split("/", 1)[0], insecure=config.images.insecure)


def repository(ref: str) -> str:
    """`registry/name` of `registry/name:tag` or `registry/name@sha256:…`."""
    if "@" in ref:
        return ref.split("@", 1)[0]
    head, _, tail = ref.rpartition(":")
    return head if head and "/" not in tail else ref


def parse_digest_ref(ref: str) -> tuple[str, str] | None:
    """(repository, sha256:…) of a digest reference, None for a tag."""
    found = DIGEST_REF.match(ref)
    return (found["repo"], found["digest"]) if found else None


def check_reachable(registry: Registry) -> None:
    """The registry accepts a connection within seconds, and speaks TLS unless configured insecure.
    Certificate trust is the engines' business (/etc/docker/certs.d); this only catches a registry
    that is down, or one that speaks plain HTTP without `images.insecure: true`."""
    host, port = registry.host_port

    @retry(
        retry=retry_if_exception_type(OSError), stop=stop_after_delay(REACH_SECONDS), wait=wait_fixed(0.5), reraise=True
    )
    def connect() -> socket.socket:
        return socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)

    try:
        sock = connect()
    except OSError as error:
        raise Unreachable(
            f"the image registry {registry.address} does not answer ({error.strerror or error})",
            details=[f"no TCP connection to {host}:{port} within {REACH_SECONDS:.0f} s"],
            hint="start the registry or fix images.registry / MLCI_REGISTRY; nothing was pushed",
        ) from None
    with sock:
        if registry.insecure:
            return
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # TLS spoken? (trust: the engine's)
        try:
            with context.wrap_socket(sock, server_hostname=host) as tls:
                tls.version()
        except (ssl.SSLError, OSError):
            raise BadInput(
                f"the image registry {registry.address} does not speak TLS",
                hint="serve it over TLS, or set images.insecure: true in mlci.yaml if plain HTTP is meant "
                "(the engines need it in insecure-registries too)",
            ) from None


@contextmanager
def session(docker: Docker, registry: Registry) -> Iterator[Docker]:
    """The same engine, logged in to the registry in a throw-away DOCKER_CONFIG (removed on exit)
    when MLCI_REGISTRY_USERNAME and MLCI_REGISTRY_PASSWORD are set."""
    user, password = os.environ.get("MLCI_REGISTRY_USERNAME"), os.environ.get("MLCI_REGISTRY_PASSWORD")
    if not (user and password):
        yield docker
        return
    folder = tempfile.mkdtemp(prefix="mlci-docker-config-")
    try:
        logged = Docker(docker.host, config_dir=folder)
        done = logged.run(
            "login", "--username", user, "--password-stdin", registry.address, input=password, check=False
        )
        if done.returncode != 0:
            text = done.stderr.strip()
            if "unauthorized" in text.lower() or "401" in text:
                raise BadInput(
                    f"the image registry {registry.address} refused the credentials of {user}",
                    hint="check MLCI_REGISTRY_USERNAME / MLCI_REGISTRY_PASSWORD "
                    "(Jenkins: MLCI_REGISTRY_CREDENTIALS_ID for mlciBuild, "
                    "MLCI_REGISTRY_PULL_CREDENTIALS_ID for mlciDeploy)",
                )
            raise Unreachable(
                f"cannot log in to the image registry {registry.address} from {docker.where}",
                details=text.splitlines()[-3:],
                hint="is the registry up, and does that engine trust its certificate (/etc/docker/certs.d)?",
            )
        yield logged
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def push(docker: Docker, registry: Registry, tag: str, on_line: Callable[[str], None]) -> str:
    """Push `tag`; its digest reference `repo@sha256:…`, read from the push itself."""
    check_reachable(registry)
    try:
        lines = docker.stream(["push", tag], on_line, timeout=PUSH_TIMEOUT)
    except DockerError as error:
        raise Unreachable(
            f"pushing {tag} to the image registry {registry.address} failed: {error.message}",
            details=error.details,
            hint="check the registry and its credentials; run mlci build again",
        ) from None
    for line in reversed(lines):
        if found := DIGEST.search(line):
            return f"{repository(tag)}@{found[1]}"
    raise CheckFailed(f"docker push {tag} did not report a digest", details=lines[-5:])


def pull(docker: Docker, registry: Registry, ref: str) -> None:
    """Pull a digest reference onto `docker`'s engine. Missing from the registry: CheckFailed (exit 1)
    naming the digest; registry or engine unreachable: Unreachable (exit 3)."""
    if parse_digest_ref(ref) is None:
        raise BadInput(f"{ref} is not a digest reference (repo@sha256:…): a deploy never pulls a mutable tag")
    check_reachable(registry)
    done = docker.run("pull", "--quiet", ref, check=False, timeout=PUSH_TIMEOUT)
    if done.returncode == 0:
        return
    text = done.stderr.strip()
    if any(s in text.lower() for s in ("manifest unknown", "not found", "does not exist", "name unknown")):
        raise CheckFailed(
            f"the image {ref} is not in the registry {registry.address}",
            details=text.splitlines()[-2:],
            hint="run mlci build (it pushes), or deploy a version whose image was pushed; nothing was switched",
        )
    if docker.unreachable(text):
        docker._raise(("pull", ref), text)  # engine down, ssh refused: Unreachable naming the host
    raise Unreachable(
        f"cannot pull {ref} from the image registry {registry.address} onto {docker.where}",
        details=text.splitlines()[-3:],
        hint="does that engine reach the registry and trust its certificate (/etc/docker/certs.d)?",
    )
