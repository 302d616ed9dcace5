"""The image registry: images go from the build engine to every environment's engine through it.

`mlci build` pushes each image and records its digest (`repo@sha256:…`); a deploy to another
engine pulls that digest, never a tag (a tag moves; a digest names exactly the bytes that were
built, and the engine checks them). Credentials (MLCI_REGISTRY_USERNAME/PASSWORD) are checked by
the engine (its /auth) and sent with each push or pull request (X-Registry-Auth), for one session:
nothing is written to disk, the password never lands in ~/.docker. A registry that does not answer
fails within seconds (exit 3, naming it): a push alone retries for minutes.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import docker.errors as sdk_errors
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from mlci.core import env
from mlci.core.config import Config
from mlci.core.errors import BadInput, CheckFailed, Unreachable
from mlci.ship import docker_images
from mlci.ship.docker import Docker, DockerError

CONNECT_TIMEOUT = 3.0
REACH_SECONDS = 6.0  # total time to wait for a registry that does not answer
LOGIN_TIMEOUT = 60.0
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
    address = (env.REGISTRY.get() or config.images.registry or "").rstrip("/")
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
    """The same engine, with the registry credentials for its pushes and pulls (checked by the engine
    first) when MLCI_REGISTRY_USERNAME and MLCI_REGISTRY_PASSWORD are set; they live for the session."""
    user, password = env.REGISTRY_USERNAME.get(), env.REGISTRY_PASSWORD.get()
    if not (user and password):
        yield docker
        return
    with docker.api("login", LOGIN_TIMEOUT) as api:
        try:
            api.login(username=user, password=password, registry=registry.address, reauth=True)
        except sdk_errors.APIError as error:
            text = str(error.explanation or error).strip()
            if error.status_code == 401 or "unauthorized" in text.lower() or "401" in text:
                raise BadInput(
                    f"the image registry {registry.address} refused the credentials of {user}",
                    hint="check MLCI_REGISTRY_USERNAME / MLCI_REGISTRY_PASSWORD "
                    "(Jenkins: MLCI_REGISTRY_CREDENTIALS_ID for mlciBuild, "
                    "MLCI_REGISTRY_PULL_CREDENTIALS_ID for mlciDeploy)",
                ) from None
            raise Unreachable(
                f"cannot log in to the image registry {registry.address} from {docker.where}",
                details=text.splitlines()[-3:],
                hint="is the registry up, and does that engine trust its certificate (/etc/docker/certs.d)?",
            ) from None
    yield dataclasses.replace(docker, auth={"username": user, "password": password, "serveraddress": registry.address})


def push(docker: Docker, registry: Registry, tag: str, on_line: Callable[[str], None]) -> str:
    """Push `tag`; its digest reference `repo@sha256:…`, read from the push itself."""
    check_reachable(registry)
    try:
        digest, lines = docker_images.push(docker, tag, on_line)
    except DockerError as error:
        raise Unreachable(
            f"pushing {tag} to the image registry {registry.address} failed: {error.message}",
            details=error.details,
            hint="check the registry and its credentials; run mlci build again",
        ) from None
    if digest is None:
        raise CheckFailed(f"docker push {tag} did not report a digest", details=lines[-5:])
    return f"{repository(tag)}@{digest}"


def pull(docker: Docker, registry: Registry, ref: str) -> None:
    """Pull a digest reference onto `docker`'s engine. Missing from the registry: CheckFailed (exit 1)
    naming the digest; registry or engine unreachable: Unreachable (exit 3)."""
    if parse_digest_ref(ref) is None:
        raise BadInput(f"{ref} is not a digest reference (repo@sha256:…): a deploy never pulls a mutable tag")
    check_reachable(registry)
    try:
        docker_images.pull(docker, ref)  # an engine that is down or an SSH host that refuses: Unreachable
    except DockerError as error:
        said = [error.message, *error.details]
        text = " ".join(said).lower()
        if any(s in text for s in ("manifest unknown", "not found", "does not exist", "name unknown")):
            raise CheckFailed(
                f"the image {ref} is not in the registry {registry.address}",
                details=said[-2:],
                hint="run mlci build (it pushes), or deploy a version whose image was pushed; nothing was switched",
            ) from None
        raise Unreachable(
            f"cannot pull {ref} from the image registry {registry.address} onto {docker.where}",
            details=said[-3:],
            hint="does that engine reach the registry and trust its certificate (/etc/docker/certs.d)?",
        ) from None
