"""The slots' side of a deploy: what to deploy (a Target from an image's labels), the images of
the router and dashboard roles, starting a colour's container, the environment's dashboard, and the
context every command opens (engine, names, router)."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from mlci.core import env, reports
from mlci.core.config import Config, Environment, http_tracking_uri
from mlci.core.errors import BadInput
from mlci.deploy.router import Names, Router
from mlci.ship import containers, docker_images
from mlci.ship.containers import ContainerSpec
from mlci.ship.docker import Docker
from mlci.track import registry


@dataclass
class Target:
    image: str
    model_name: str
    model_version: str
    labels: dict[str, str]


@dataclass(frozen=True)
class Context:
    """One environment as the deploy commands see it."""

    config: Config
    env_name: str
    env: Environment
    docker: Docker
    names: Names
    router: Router
    # Router/dashboard images pulled by digest for this deploy (remote hosts; see ml/deploy/pull.py).
    images: dict[str, str] = field(default_factory=dict)


def open_context(config: Config, env_name: str) -> Context:
    env = config.environment(env_name)
    docker = Docker(env.docker_host)
    docker.check()
    names = Names(config.project, env_name)
    return Context(config, env_name, env, docker, names, Router(docker, names, env))


def host_image(ctx: Context) -> str | None:
    """An image on the environment's host to run the lock and state containers with (any image with
    sh and cat): the running router's, else the router image a deploy would use; None if neither is there."""
    state = ctx.router.state()
    if state is not None:
        return str(state["Image"])  # the image id: still there even if its tag moved
    image = ctx.images.get("router") or role_image(ctx.config, "router")
    return image if ctx.docker.inspect("image", image) is not None else None


def missing_image_hint(hint: str) -> str:
    """Under Jenkins the likeliest cause is another agent: each stage may run on a different one, and an
    environment with no docker_host is whichever engine the deploying agent has."""
    ci = env.ci()
    if not ci.under_jenkins:
        return hint
    agent = ci.node_name or "this agent"
    return (
        f"{hint}. Under Jenkins each stage may run on another agent ({agent} now): give the environment a "
        "docker_host and the project an images.registry, so every agent deploys the same images to the same "
        "host (docs/deploy.md), or run Build images and the deploys on one agent"
    )


def image_target(docker: Docker, ref: str, config: Config) -> Target:
    info = docker.inspect("image", ref)
    if info is None:
        raise BadInput(
            f"image {ref} is not on {docker.where}", hint=missing_image_hint("run mlci build, or docker pull it first")
        )
    labels = (info.get("Config") or {}).get("Labels") or {}
    name, version = labels.get("io.mlci.model.name"), labels.get("io.mlci.model.version")
    if not name or not version:
        raise BadInput(f"image {ref} is not an mlci API image (no io.mlci.model.* labels)")
    if name != config.model_name:
        raise BadInput(f"image {ref} holds model {name!r}, this project deploys {config.model_name!r}")
    return Target(ref, name, version, labels)


def resolve_target(config: Config, docker: Docker, version: str | None, image: str | None) -> Target:
    if version and image:
        raise BadInput("give --version or --image, not both")
    if image:
        return image_target(docker, image, config)
    if version:
        if not version.isdigit():
            raise BadInput(f"--version must be a model version number, got {version!r}")
        from mlci.ship.images import image_name

        found = docker_images.find(docker, {"io.mlci.model.name": config.model_name, "io.mlci.model.version": version})
        # Only images mlci build named for this version (<name>-api:<version>-<commit>), newest first.
        found = [ref for ref in found if ref.startswith(f"{image_name(config, 'api')}:{version}-")]
        if not found:
            raise BadInput(
                f"no API image of {config.model_name} version {version} on {docker.where}",
                hint=missing_image_hint(f"run mlci build --version {version} first"),
            )
        return image_target(docker, found[0], config)  # newest first
    built = reports.read(config, "build")
    if not built or "api" not in built.get("images", {}):
        raise BadInput(
            "nothing to deploy: no reports/build.json with an API image",
            hint="run mlci build first, or pass --version N or --image REF",
        )
    return image_target(docker, built["images"]["api"]["tag"], config)


def role_image(config: Config, role: str) -> str:
    """The router or dashboard image: MLCI_<ROLE>_IMAGE, else the last build's, else <name>:latest."""
    if image := env.role_image(role):
        return image
    built = reports.read(config, "build") or {}
    if tag := (built.get("images", {}).get(role) or {}).get("tag"):
        return tag
    from mlci.ship.images import image_name

    return f"{image_name(config, role)}:latest"


# A container reaches the host's gateway address by this name (--add-host …:host-gateway): the demo's
# MLflow server listens there (make mlflow-ui), never on 0.0.0.0.
HOST_ALIAS = "host.docker.internal"
SETTINGS_LABEL = "io.mlci.dashboard-settings"


def dashboard_tracking_uri(config: Config, env: Environment) -> str | None:
    """The http(s) MLflow URL the dashboard container gets: the environment's own setting, else the
    operator's tracking URI when it is a server. A file/sqlite store is never passed (the image cannot
    read it): the Models page then says what it needs."""
    if env.dashboard_tracking_uri:
        return env.dashboard_tracking_uri
    try:
        return http_tracking_uri(config.tracking_uri)
    except ValueError:
        return None


@dataclass(frozen=True)
class DashboardSettings:
    """What makes the dashboard container what it is: a change in any recreates it."""

    image: str
    environment: dict[str, str]
    extra_hosts: dict[str, str]  # name -> address ("host-gateway": the host's gateway address)
    address: str
    port: int | None

    def digest(self) -> str:
        """A digest, not the settings, goes on the container: the tracking URI may carry a password,
        and labels are public."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def dashboard_settings(config: Config, env_name: str, env: Environment, image: str) -> DashboardSettings:
    environment = {"MLCI_API_URL": "http://router:8080", "MLCI_ENV": env_name}
    extra_hosts: dict[str, str] = {}
    if uri := dashboard_tracking_uri(config, env):
        environment["MLFLOW_TRACKING_URI"] = uri
        if urlsplit(uri).hostname == HOST_ALIAS:
            extra_hosts[HOST_ALIAS] = "host-gateway"
    return DashboardSettings(image, environment, extra_hosts, env.address, env.dashboard_port)


def ensure_dashboard(
    config: Config, docker: Docker, names: Names, env_name: str, env: Environment, image: str | None = None
) -> str | None:
    """The environment's dashboard, pointed at its router: created once, it follows every switch, and
    is recreated when its settings (image, MLflow address, port) change."""
    if env.dashboard_port is None:
        return None
    image = image or role_image(config, "dashboard")
    settings = dashboard_settings(config, env_name, env, image)
    digest = settings.digest()
    state = docker.inspect("container", names.dashboard)
    labels = (state or {}).get("Config", {}).get("Labels") or {}
    if state is not None and state["State"]["Running"] and labels.get(SETTINGS_LABEL) == digest:
        return f"dashboard on http://{env.address}:{env.dashboard_port}: running"
    if docker.inspect("image", image) is None:
        return f"warning: no dashboard image {image} (run mlci build); the dashboard is not started"
    containers.remove(docker, names.dashboard)
    spec = ContainerSpec(
        image,
        name=names.dashboard,
        network=names.network,
        read_only=True,
        tmpfs={"/tmp": ""},
        restart="unless-stopped",
        labels=names.labels("dashboard", **{SETTINGS_LABEL: digest}),
        environment=settings.environment,
        extra_hosts=settings.extra_hosts,
        ports={8501: (env.address, env.dashboard_port)},
    )
    containers.run(docker, spec)
    registry_note = "" if dashboard_tracking_uri(config, env) else "; no MLflow server for its Models page"
    return f"dashboard on http://{env.address}:{env.dashboard_port}: started ({image}){registry_note}"


def start_slot(docker: Docker, names: Names, env_name: str, env: Environment, colour: str, target: Target) -> None:
    containers.remove(docker, names.slot(colour))
    # A warming slot gets a quarter of the CPU weight of the live one (restored at the switch):
    # on a busy host its start-up must not cost the live colour its latency.
    spec = ContainerSpec(
        target.image,
        name=names.slot(colour),
        network=names.network,
        cpu_shares=256,
        volumes={names.volume: "/run/mlci"},
        read_only=True,
        tmpfs={"/tmp": ""},
        environment={
            "MLCI_UDS": f"/run/mlci/{colour}.sock",
            "MLCI_COLOUR": colour,
            "MLCI_ENV": env_name,
            "MLCI_WORKERS": str(env.workers),
            # Who may read this slot's answers to sampled and mirrored requests (GET /shadow/answers, on
            # the router's public port): `mlci shadow report`, which reads the token back from the slot.
            # Through the engine's API, as the container's environment: never on a command line.
            "MLCI_SHADOW_TOKEN": secrets.token_urlsafe(32),
        },
        restart="unless-stopped",
        labels=names.labels("slot", **{"io.mlci.colour": colour, "io.mlci.deployed_at": registry.now()}),
    )
    containers.run(docker, spec)
