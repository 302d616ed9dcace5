"""An environment's Nginx router and its two slots, as Docker objects.

The live colour is a symlink in the environment's socket volume: `live.sock -> blue.sock`. Nginx
connects through it for every new upstream connection, so switching is an atomic rename inside
the router container — no reload, no dropped keep-alive request (docs/deploy.md has the
measurement). `preview.sock` points at the idle slot: the router's second listener reaches it
directly for readiness and smoke checks before any user traffic does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
import jinja2

from mlci.core import polling
from mlci.core.config import Config, Environment
from mlci.core.errors import BadInput, CheckFailed, MlciError
from mlci.ship import containers
from mlci.ship.containers import ContainerSpec
from mlci.ship.docker import Docker

COLOURS = ("blue", "green")
SOCKET_DIR = "/run/mlci"
ROUTER_CONFIG = "/etc/mlci/router.conf"  # in the router container, included by docker/router/nginx.conf
LIVE, PREVIEW = "live", "preview"
TEMPLATES = Path(__file__).resolve().parent / "templates"
# Shadow traffic: the bound on a copy's hand-off to the router's local listener (which acknowledges it in
# well under a millisecond), and how many copies may be in flight to the shadow.
SHADOW_HANDOFF_MS = 100
SHADOW_IN_FLIGHT = 64
# The shadow's intake: mirrored copies reach the shadow environment's router on this port, over Docker's
# network only (never published), the one listener that passes X-Mlci-Shadow on to the slot.
SHADOW_INTAKE_PORT = 8082


@dataclass(frozen=True)
class Names:
    """Docker names of one environment: containers <project>-<env>-<blue|green|router>, network <project>-<env>."""

    project: str
    env: str

    @property
    def network(self) -> str:
        return f"{self.project}-{self.env}"

    @property
    def volume(self) -> str:
        return f"{self.project}-{self.env}-sockets"

    @property
    def state(self) -> str:
        """The environment's state volume (deploy history): it outlives `mlci down`."""
        return f"{self.project}-{self.env}-state"

    @property
    def lock(self) -> str:
        """The lock container: it exists while one mlci process holds the environment."""
        return f"{self.project}-{self.env}-lock"

    @property
    def router(self) -> str:
        return f"{self.project}-{self.env}-router"

    @property
    def dashboard(self) -> str:
        return f"{self.project}-{self.env}-dashboard"

    def slot(self, colour: str) -> str:
        return f"{self.project}-{self.env}-{colour}"

    def labels(self, role: str, **extra: str) -> dict[str, str]:
        return {"io.mlci.project": self.project, "io.mlci.env": self.env, "io.mlci.role": role, **extra}


def other(colour: str) -> str:
    return COLOURS[1 - COLOURS.index(colour)]


def pool_milliseconds(drain_seconds: float) -> int:
    """keepalive_time and keepalive_timeout of the upstream pools. A pooled connection to the previous
    colour takes its last request at most their sum after the switch (nginx checks the first when a
    request ends, the second while the connection idles): 45 % each keeps that sum inside the drain,
    with a tenth of it for nginx's cached clock and timer resolution."""
    return max(1, int(drain_seconds * 1000 * 0.45))


def render(config: Config, env_name: str, env: Environment) -> str:
    jinja = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return jinja.get_template("router.conf.j2").render(
        project=config.project,
        env=env_name,
        drain_seconds=f"{env.drain_seconds:g}",
        pool_ms=pool_milliseconds(env.drain_seconds),
        max_body="2m",
        read_timeout=30,
        shadow=_shadow_values(config.project, env),
        handoff_ms=SHADOW_HANDOFF_MS,
        # An environment another one mirrors to takes the copies on its intake listener.
        intake=SHADOW_INTAKE_PORT
        if any(other.shadow is not None and other.shadow.env == env_name for other in config.environments.values())
        else None,
    )


def _shadow_values(project: str, env: Environment) -> dict | None:
    """The mirror's target and sampling, or None: no mirror in the config at all (the default)."""
    if env.shadow is None:
        return None
    return {
        "env": env.shadow.env,
        "host": Names(project, env.shadow.env).router,
        "intake": SHADOW_INTAKE_PORT,
        "percent": f"{round(env.shadow.share * 100, 2):g}",
        "timeout_ms": env.shadow.timeout_ms,
        "max_in_flight": SHADOW_IN_FLIGHT,
    }


def validate(docker: Docker, image: str, text: str) -> None:
    """`nginx -t` on the rendered config, in a throw-away router container, before anything uses it."""
    if docker.inspect("image", image) is None:
        raise BadInput(
            f"router image {image} is not on {docker.where}",
            hint="run mlci build (it builds the router image), or set MLCI_ROUTER_IMAGE",
        )
    done = containers.run_once(docker, ContainerSpec(image, command=["check"], network="none"), input=text)
    if done.exit_code != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line][-3:]
        raise CheckFailed(
            "the rendered router config is invalid (nginx -t); nothing was changed",
            details=lines,
            hint="this is a bug in the router template or its values: report it",
        )


class Router:
    """The router container of one environment, and the symlinks that pick the colours."""

    def __init__(self, docker: Docker, names: Names, env: Environment):
        self.docker, self.names, self.env = docker, names, env

    @property
    def url(self) -> str:
        return f"http://{self.env.address}:{self.env.port}"

    @property
    def preview_url(self) -> str:
        return f"http://{self.env.address}:{self.env.preview}"

    def state(self) -> dict | None:
        return self.docker.inspect("container", self.names.router)

    def ensure(self, image: str, text: str) -> str:
        """Make sure the router runs with `text` as its config; say what was done."""
        names = self.names
        if self.docker.inspect("network", names.network) is None:
            owner = {"io.mlci.project": names.project, "io.mlci.env": names.env}
            containers.create_network(self.docker, names.network, owner)
        state = self.state()
        if state is None:
            validate(self.docker, image, text)
            spec = ContainerSpec(
                image,
                name=names.router,
                network=names.network,
                aliases=["router"],
                volumes={names.volume: SOCKET_DIR},
                read_only=True,
                tmpfs={"/tmp": "", "/etc/mlci": "uid=10001,gid=10001,mode=0755"},
                ports={8080: (self.env.address, self.env.port), 8081: (self.env.address, self.env.preview)},
                environment={"MLCI_ROUTER_CONF": text},
                restart="unless-stopped",
                labels=names.labels("router"),
            )
            containers.run(self.docker, spec)
            self.wait_up()
            return "created"
        if not state["State"]["Running"]:
            containers.start(self.docker, names.router)
            self.wait_up()
            return "started"
        current = containers.execute(self.docker, names.router, ["cat", ROUTER_CONFIG]).stdout
        if current.strip() != text.strip():
            # A structural change (ports, drain): validated first, then the one kind of reload we allow.
            validate(self.docker, image, text)
            done = containers.execute(
                self.docker, names.router, ["/usr/local/bin/mlci-router", "reload"], input=text, check=False
            )
            if done.exit_code != 0:
                raise CheckFailed(
                    "the router refused its new config; the running one is unchanged",
                    details=done.stderr.strip().splitlines()[-3:],
                )
            return "reloaded (structural change)"
        return "unchanged"

    def wait_up(self, timeout: float = 20) -> None:
        def probe() -> bool | None:
            try:
                if httpx.get(f"{self.url}/router/health", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            state = self.state()
            if state is not None and not state["State"]["Running"]:
                raise CheckFailed(
                    f"router {self.names.router} exited at start",
                    details=containers.logs(self.docker, self.names.router, tail=5),
                )
            return None

        if polling.poll(probe, timeout=timeout):
            return
        raise CheckFailed(
            f"router {self.names.router} did not answer on {self.url} within {timeout:.0f} s",
            hint=f"is port {self.env.port} free on {self.env.address}?",
        )

    def colour(self, which: str = LIVE) -> str | None:
        """The colour `live` (or `preview`) points at, None when unset."""
        done = containers.execute(
            self.docker, self.names.router, ["readlink", f"{SOCKET_DIR}/{which}.sock"], check=False
        )
        target = done.stdout.strip().removesuffix(".sock")
        return target if done.exit_code == 0 and target in COLOURS else None

    def point(self, which: str, colour: str | None) -> None:
        """Atomically repoint `live`/`preview` at a colour (rename of a fresh symlink), or remove it."""
        link = f"{SOCKET_DIR}/{which}.sock"
        if colour is None:
            containers.execute(self.docker, self.names.router, ["rm", "-f", link])
            return
        if colour not in COLOURS:
            raise MlciError(f"unknown colour {colour!r}")
        tmp = f"{SOCKET_DIR}/.{which}.sock.tmp"
        containers.execute(
            self.docker,
            self.names.router,
            ["sh", "-c", 'ln -sfn "$1" "$2" && mv -fT "$2" "$3"', "sh", f"{colour}.sock", tmp, link],
        )

    def remove_socket(self, colour: str) -> None:
        containers.execute(self.docker, self.names.router, ["rm", "-f", f"{SOCKET_DIR}/{colour}.sock"])
